"""Request and response bodies of the LSTM-made-visible routes (app/routes/gates.py), pydantic v2.

Strict like app/schemas.py: unknown fields, `"3"`, `3.0` or `true` for an int → 422.  The text's
length limit is the scoring setting (MAX_SCORE_CHARS), checked in the route; the layer and unit
ranges depend on the model, checked by model/reading/gates.py (422 naming the field).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import INTEGRAL, Text
from model.reading import MAX_CONTEXT, MAX_UNITS

# Bounds for the published schema; the served model's own layers and cells are patched into
# /openapi.json (app/docs.py) and checked per request (model/reading/gates.py).
MAX_LAYERS, MAX_CELLS, MAX_POSITION = 1024, 1_000_000, 10_000_000


class GatesParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    text: Text = Field(
        description="at most MAX_SCORE_CHARS chars; chars outside the vocab get null rows"
    )
    model: Text | None = Field(
        None, description="a name from GET /api/models; null: the default model"
    )
    layer: Annotated[int, Field(ge=0, le=MAX_LAYERS), INTEGRAL] = Field(
        0, description="0-based recurrent layer"
    )
    units: list[Annotated[int, Field(ge=0, le=MAX_CELLS), INTEGRAL]] = Field(
        min_length=1,
        max_length=MAX_UNITS,
        description="0-based cells of that layer (a repeated one is shown twice)",
    )


class GatesResponse(BaseModel):
    model: str
    cell: str = Field(description="lstm, gru or rnn")
    layer: int
    units: list[int]
    gates: list[str] = Field(
        description="the cell's gates: i, f, g, o (LSTM); z, r, n (GRU); none (RNN)"
    )
    chars: list[str]
    values: dict[str, list[list[float] | None]] = Field(
        description="per name (each gate, then c for an LSTM, then h): per char, one value per unit"
        " after that char; null for a char outside the vocab"
    )


class InfluenceParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    text: Text = Field(description="the text; the char at `position` is the one predicted")
    model: Text | None = None
    position: Annotated[int, Field(ge=1, le=MAX_POSITION), INTEGRAL] = Field(
        description="0-based index of the char whose prediction is explained; "
        f"at most {MAX_CONTEXT} chars before it are used"
    )


class InfluenceResponse(BaseModel):
    model: str
    position: int
    char: str
    logprob: float = Field(description="log p(text[position] | the context), nats")
    start: int = Field(description="index of the first context char used")
    influence: list[float] = Field(
        description="‖∂ log p / ∂ e(x_{t−k})‖ for k = 1, 2, …: the nearest char first"
    )
    span: int = Field(description="the first k where influence falls below 1% of k = 1's")
