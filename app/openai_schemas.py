"""Bodies of the OpenAI-compatible routes (`/v1/completions`, `/v1/models`); one token = one char.

Unknown fields are ignored (OpenAI clients send extras such as `user` or `best_of`), but the
fields we read are as strict as on `/api/*`.  `logprobs` answers in the legacy completions
shape: `tokens`, `token_logprobs`, `top_logprobs`, `text_offset`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

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
from model.generate import Finished
from model.limits import MAX_LOGIT_BIAS_ENTRIES, MAX_STOPS

CharId = Annotated[str, Field(pattern=r"^[0-9]{1,6}$")]  # OpenAI's token-id keys: a char's index in the vocab


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    include_usage: bool = False


class CompletionParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    model: Text | None = Field(None, description="a name from GET /v1/models; null: the default model")
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=16)] = Field(
        "", description="one prompt, or up to 16 (each gets `n` completions)"
    )
    max_tokens: Annotated[int, Field(ge=0), INTEGRAL] | None = Field(
        None, description="chars to generate; null: 500; at most MAX_CHARS; 0: none (with echo: score the prompt)"
    )
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    n: Annotated[int, Field(ge=1, le=16), INTEGRAL] = 1
    stop: StopText | Annotated[list[StopText], Field(max_length=MAX_STOPS)] | None = None
    seed: Seed | None = Field(None, description="completion i uses seed + i")
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: Logprobs | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[CharId, BiasValue] | None = Field(
        None, max_length=MAX_LOGIT_BIAS_ENTRIES, description="by char id (the index in /api/models' `chars`)"
    )
    repetition_penalty: RepetitionPenalty | None = Field(None, description="as vLLM's extension; 1 = off")
    min_p: MinP | None = Field(None, description="as vLLM's extension")
    echo: bool = Field(False, description="with max_tokens 0: the prompt itself, and its per-char logprobs when asked")


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
    seed: int | None = Field(None, description="the seed this completion used (an extension; in the last chunk)")


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
