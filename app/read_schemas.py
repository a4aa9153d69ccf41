"""Request and response bodies of the "read the model" routes (app/routes/read.py), pydantic v2.

Strict like app/schemas.py: unknown fields, `"3"` or `true` for an int, lone surrogates → 422.
The text's length limit is a setting (MAX_SCORE_CHARS), checked in the route.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import INTEGRAL, Text
from model.reading import MAX_TOP

MAX_INSPECT_UNITS = 16  # cells per inspect request: a page colours one or compares a few
DEFAULT_MIN_COPIED = 24  # shorter verbatim runs are common phrases, not copying
MAX_RESULT_SPANS = 200


class ScoreParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    text: Text = Field(
        description="at most MAX_SCORE_CHARS chars; chars outside the vocab are reported unscored"
    )
    model: Text | None = Field(
        None, description="a name from GET /api/models; null: the default model"
    )
    top: Annotated[int, Field(ge=0, le=MAX_TOP), INTEGRAL] = Field(
        0, description="the N most likely chars per char"
    )


class ScoredChar(BaseModel):
    char: str
    logprob: float | None = Field(
        description="nats; null: not in the vocab, skipped (the state carries on)"
    )
    top: list[tuple[str, float]] | None = Field(None, description="present when `top` > 0")


class ScoreSummary(BaseModel):
    total_nats: float
    nats_per_char: float | None
    bits_per_char: float | None
    perplexity: float | None
    scored_chars: int
    unscored_chars: int
    held_out_bits_per_char: float | None = Field(
        description="the model's own held-out text, from its card"
    )


class ScoreResponse(BaseModel):
    model: str
    chars: list[ScoredChar]
    summary: ScoreSummary


class InspectParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    text: Text = Field(description="at most MAX_SCORE_CHARS chars")
    model: Text | None = None
    layer: Annotated[int, Field(ge=0), INTEGRAL] = Field(description="0-based LSTM layer")
    units: list[Annotated[int, Field(ge=0), INTEGRAL]] = Field(
        min_length=1, max_length=MAX_INSPECT_UNITS, description="0-based cells of that layer"
    )
    what: Literal["h", "c"] = Field("h", description="h: the layer's output; c: the cell state")


class InspectResponse(BaseModel):
    model: str
    layer: int
    units: list[int]
    what: Literal["h", "c"]
    chars: list[str]
    activations: list[list[float]] = Field(
        description="per char, one value per unit, after that char"
    )


class CopiedParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    text: Text = Field(description="at most MAX_SCORE_CHARS chars")
    model: Text | None = None
    min_chars: Annotated[int, INTEGRAL] = Field(
        DEFAULT_MIN_COPIED, ge=8, le=1000, description="shortest verbatim run reported"
    )


class Source(BaseModel):
    offset: int = Field(description="char offset in the training text")
    line: int = Field(description="1-based line number there")
    line_text: str = Field(description="that whole line (at most 300 chars)")


class CopiedSpan(BaseModel):
    start: int = Field(description="char offset in `text`, inclusive")
    end: int = Field(description="exclusive")
    source: Source


class CopiedResponse(BaseModel):
    model: str
    indexed: bool = Field(
        description="false: the model directory has no index of its training text"
    )
    message: str | None = None
    min_chars: int
    spans: list[CopiedSpan]
    copied_chars: int = Field(description="chars of `text` inside at least one span")
