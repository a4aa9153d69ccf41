"""Request and response bodies of `/api/*` and the error envelope (pydantic v2).

Validation lives here and happens once, at the edge: strict types (`2.5`, `"10"` or `true`
for an int → 422; a whole float such as `1e3` is that int, as JSON Schema reads it), finite
floats (NaN, Infinity, 1e999 → 422), no lone surrogates, and on `/api/*` no unknown fields.
Every number has both bounds.  The fixed limits and defaults come from model/limits.py; limits
that are settings (MAX_CHARS, MAX_PROMPT_CHARS) are checked by `app.job.plan`, so the schema
stays static.  app/errors.py turns a refusal into a message in the user's words.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from model.event import Finished
from model.limits import (
    DEFAULT_MAX_CHARS,
    DEFAULT_REPETITION_WINDOW,
    DEFAULT_TEMPERATURE,
    MAX_LOGIT_BIAS,
    MAX_LOGIT_BIAS_ENTRIES,
    MAX_LOGPROBS,
    MAX_PENALTY,
    MAX_REPETITION_PENALTY,
    MAX_REPETITION_WINDOW,
    MAX_SEED,
    MAX_STOP_CHARS,
    MAX_STOPS,
    MAX_TEMPERATURE,
    MAX_TOP_K,
    MIN_REPETITION_PENALTY,
)


def _no_lone_surrogates(value: str) -> str:
    # JSON can spell "\ud800"; such a string cannot be encoded, shown or tokenised.
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            raise ValueError(
                f"Remove the lone surrogate U+{ord(ch):04X}: half of a UTF-16 pair is not a char."
            )
    return value


EXACT_FLOATS = 2**53  # up to here a float holds every whole number; 2^53 + 1 reads as 2^53


def _whole_float(value: Any) -> Any:
    # JSON Schema counts 1e3 and 3.0 as integers (schemathesis sends them), so they are 1000 and 3.
    # 2.5, "3" and true are not, nor is a float past 2^53: it may not be the number that was
    # written.
    if isinstance(value, float) and value.is_integer() and abs(value) <= EXACT_FLOATS:
        return int(value)
    return value


# Constraints go before a validator, or pydantic cannot put them in the JSON schema; on a string,
# they then check the string itself (pydantic's "string_too_long", not a generic "too_long").
INTEGRAL = BeforeValidator(_whole_float)
NO_LONE_SURROGATES = AfterValidator(_no_lone_surrogates)
Text = Annotated[str, NO_LONE_SURROGATES]
StopText = Annotated[str, Field(min_length=1, max_length=MAX_STOP_CHARS), NO_LONE_SURROGATES]
Temperature = Annotated[
    float, Field(ge=0, le=MAX_TEMPERATURE, allow_inf_nan=False, description="0 = greedy (argmax)")
]
TopK = Annotated[
    int,
    Field(
        ge=1, le=MAX_TOP_K, description="keep the k most likely chars (more than the vocab: all)"
    ),
    INTEGRAL,
]
TopP = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, description="nucleus sampling")]
Seed = Annotated[
    int, Field(ge=0, lt=MAX_SEED, description="same seed and inputs → the same text"), INTEGRAL
]
Logprobs = Annotated[
    int, Field(ge=0, le=MAX_LOGPROBS, description="top-N alternatives per generated char"), INTEGRAL
]
Count = Annotated[int, Field(ge=1), INTEGRAL]
MinP = Annotated[
    float,
    Field(
        ge=0,
        le=1,
        allow_inf_nan=False,
        description="keep chars ≥ min_p × the top char's probability",
    ),
]
RepetitionPenalty = Annotated[
    float,
    Field(
        ge=MIN_REPETITION_PENALTY,
        le=MAX_REPETITION_PENALTY,
        allow_inf_nan=False,
        description="CTRL: a char seen in the window has its logit divided (if > 0) or multiplied "
        "by this; 1 = off",
    ),
]
RepetitionWindow = Annotated[
    int,
    Field(
        ge=1, le=MAX_REPETITION_WINDOW, description="the last chars (prompt and output) it looks at"
    ),
    INTEGRAL,
]
Penalty = Annotated[float, Field(ge=-MAX_PENALTY, le=MAX_PENALTY, allow_inf_nan=False)]
BiasValue = Annotated[float, Field(ge=-MAX_LOGIT_BIAS, le=MAX_LOGIT_BIAS, allow_inf_nan=False)]
OneChar = Annotated[str, Field(min_length=1, max_length=1), NO_LONE_SURROGATES]


class GenerateParams(BaseModel):
    """The generation parameters shared by `/api/generate` and `/api/generate/stream`."""

    model_config = ConfigDict(strict=True, extra="forbid")

    prompt: Text = Field(
        "", description="at most MAX_PROMPT_CHARS chars, all in the model's vocabulary"
    )
    max_chars: Count = Field(
        DEFAULT_MAX_CHARS, description="1 ≤ n ≤ MAX_CHARS (setting, default 5000)"
    )
    temperature: Temperature = DEFAULT_TEMPERATURE
    top_k: TopK | None = None
    top_p: TopP | None = None
    seed: Seed | None = None
    stop: list[StopText] | None = Field(
        None, max_length=MAX_STOPS, description="generation ends before the first one"
    )
    logprobs: Logprobs = 0
    model: Text | None = Field(
        None, description="a name from GET /api/models; null: the default model"
    )
    min_p: MinP | None = None
    repetition_penalty: RepetitionPenalty = 1.0
    repetition_window: RepetitionWindow = DEFAULT_REPETITION_WINDOW
    presence_penalty: Penalty = Field(
        0.0, description="OpenAI's: minus this from each char generated at least once"
    )
    frequency_penalty: Penalty = Field(
        0.0, description="OpenAI's: minus this × the times a char was generated"
    )
    logit_bias: dict[OneChar, BiasValue] | None = Field(
        None,
        max_length=MAX_LOGIT_BIAS_ENTRIES,
        description='added to a char\'s logit: {"\\n": -5}; ±100 bans/forces',
    )


class LogprobEntry(BaseModel):
    char: str
    logprob: float
    top: list[tuple[str, float]]


class StreamStart(BaseModel):
    """The data of a stream's first event, `event: start`, before any text: a client that stops
    early
    still knows the seed."""

    seed: int
    model: str


class StreamChunk(BaseModel):
    """The data of a stream's `message` events."""

    text: str
    logprobs: list[LogprobEntry] | None = Field(None, description="present only when asked for")


class Usage(BaseModel):
    prompt_chars: int
    generated_chars: int


class GenerateResponse(BaseModel):
    text: str
    finish_reason: Finished
    usage: Usage
    seed: int
    model: str
    logprobs: list[LogprobEntry] | None = Field(None, description="present only when asked for")


class StreamDone(BaseModel):
    """The data of the last stream event, `event: done`."""

    finish_reason: Literal[Finished, "cancelled"]
    usage: Usage
    seed: int
    model: str


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")  # the rest of the model card

    name: str
    default: bool
    vocab_size: int
    params: int | None = None
    chars: list[str] = Field(
        default_factory=list, description="the vocabulary; a char's index is its id"
    )


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Status(BaseModel):
    status: str


def error_responses(*statuses: int, by_ref: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries saying that these statuses carry the error envelope (JSON).

    `by_ref` for routes whose own response class is not JSON (FastAPI would document a `model` under
    that media type); the ErrorResponse component then comes from other routes. Without 422 in
    `statuses` (the /v1 routes), validation errors are described under 400.
    """
    described = {
        400: "the body is not valid UTF-8",
        404: "unknown model",
        413: "body over MAX_BODY_BYTES",
        422: "invalid parameters, malformed JSON or wrong content type",
        429: "MAX_ACTIVE sequences already running; see Retry-After",
        500: "a failure inside generation",
        503: "models not loaded yet, or shutting down",
    }
    if 422 not in statuses:
        described[400] = f"{described[422]}, or a body that is not valid UTF-8"
    if by_ref:
        content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        return {s: {"content": content, "description": described.get(s, "error")} for s in statuses}
    return {s: {"model": ErrorResponse, "description": described.get(s, "error")} for s in statuses}
