"""Bodies of the OpenAI-compatible routes (`/v1/completions`, `/v1/models`); one token = one char.

Unknown fields are ignored (OpenAI clients send extras such as `user`), except the generation
parameters in UNSUPPORTED when they ask for something (see `unsupported`); the fields we read
are as strict as on `/api/*`.  `temperature` defaults to 1.0, as in OpenAI's API.  `logprobs`
answers in the legacy completions shape: `tokens`, `token_logprobs`, `top_logprobs`, `text_offset`.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidatorFunctionWrapHandler,
    model_validator,
)

from app.errors import ApiError
from app.schemas import (
    INTEGRAL,
    BiasValue,
    Logprobs,
    MinP,
    Penalty,
    RepetitionPenalty,
    Seed,
    StopText,
    Temperature,
    Text,
    TopK,
    TopP,
)
from model.event import Finished
from model.limits import MAX_COMPLETIONS, MAX_LOGIT_BIAS_ENTRIES, MAX_PROMPTS, MAX_STOPS

CharId = Annotated[
    str, Field(pattern=r"^[0-9]{1,6}$")
]  # OpenAI's token-id keys: a char's index in the vocab
DEFAULT_TEMPERATURE = 1.0  # OpenAI's (the /api default is model.limits.DEFAULT_TEMPERATURE)

# OpenAI (and vLLM) generation parameters this server does not implement, with the values that
# mean "off".  Any other value is refused with a 400 naming it: a request is never silently served
# differently from what it asked.  Implementing one = a field in CompletionParams and its row gone.
UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "suffix": (None, ""),
    "best_of": (None, 1),
    "min_tokens": (None, 0),
    "use_beam_search": (None, False),
    "length_penalty": (None, 1),
    "ignore_eos": (None, False),
}


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    include_usage: bool = False


class CompletionParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    model: Text | None = Field(
        None, description="a name from GET /v1/models; null: the default model"
    )
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=MAX_PROMPTS)] = Field(
        "", description=f"one prompt, or up to {MAX_PROMPTS} (each gets `n` completions)"
    )
    max_tokens: Annotated[int, Field(ge=0), INTEGRAL] | None = Field(
        None,
        description="chars to generate; null: 500; at most MAX_CHARS; 0: none "
        "(with echo: score the prompt)",
    )
    temperature: Temperature | None = Field(DEFAULT_TEMPERATURE, description="null: 1.0, as OpenAI")
    top_p: TopP | None = None
    top_k: TopK | None = None
    n: Annotated[int, Field(ge=1, le=MAX_COMPLETIONS), INTEGRAL] = 1
    stop: StopText | Annotated[list[StopText], Field(max_length=MAX_STOPS)] | None = None
    seed: Seed | None = Field(None, description="completion i uses seed + i")
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: Logprobs | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[CharId, BiasValue] | None = Field(
        None,
        max_length=MAX_LOGIT_BIAS_ENTRIES,
        description="by char id (the index in /api/models' `chars`)",
    )
    repetition_penalty: RepetitionPenalty | None = Field(
        None, description="as vLLM's extension; 1 = off"
    )
    min_p: MinP | None = Field(None, description="as vLLM's extension")
    echo: bool = Field(
        False,
        description="with max_tokens 0: the prompt itself, and its per-char logprobs when asked",
    )
    # UNSUPPORTED names the body has
    _unsupported: dict[str, object] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _note_unsupported(
        cls, data: object, handler: ValidatorFunctionWrapHandler
    ) -> CompletionParams:
        params = handler(data)
        if isinstance(data, dict):
            params._unsupported = {name: data[name] for name in UNSUPPORTED if name in data}
        return params


def _neutral(value: object, neutral: tuple[object, ...]) -> bool:
    # true is not 1, false is not 0 here: a boolean is neutral only where the table says False.
    return any(value == n and isinstance(value, bool) == isinstance(n, bool) for n in neutral)


def unsupported(params: CompletionParams) -> ApiError | None:
    """The error for the first parameter in UNSUPPORTED set to anything but its neutral value."""
    for name, value in params._unsupported.items():
        if not _neutral(value, UNSUPPORTED[name]):
            allowed = " or ".join("null" if n is None else json.dumps(n) for n in UNSUPPORTED[name])
            # 422 here, answered as 400 on /v1 like every validation error (ApiError.for_path).
            return ApiError(
                422,
                f"This server does not implement {name}: leave it out, or send {allowed}.",
                param=name,
                code="unsupported_parameter",
            )
    return None


class LegacyLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float | None] = Field(description="null for an echoed prompt's first char")
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: LegacyLogprobs | None
    finish_reason: Finished | None
    seed: int | None = Field(
        None, description="the seed this completion used (an extension; in the last chunk)"
    )


class CompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
