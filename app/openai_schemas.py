"""Bodies of the OpenAI-compatible routes (`/v1/completions`, `/v1/models`); one token = one char.

Unknown fields are ignored (OpenAI clients send extras such as `user` or `best_of`), but the
fields we read are as strict as on `/api/*`.  `logprobs` answers in the legacy completions
shape: `tokens`, `token_logprobs`, `top_logprobs`, `text_offset`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import Seed, StopText, Temperature, Text, TopK, TopP


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    include_usage: bool = False


class CompletionParams(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    model: Text | None = Field(None, description="a name from GET /v1/models; null: the default model")
    prompt: Text | list[Text] = Field("", description="one prompt, or up to 16 (each gets `n` completions)")
    max_tokens: int | None = Field(None, ge=1, description="chars to generate; null: 500; at most MAX_CHARS")
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    n: int = Field(1, ge=1, le=16)
    stop: StopText | list[StopText] | None = None
    seed: Seed | None = Field(None, description="completion i uses seed + i")
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool = Field(False, description="not supported: true → 422")


class LegacyLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    text: str
    index: int
    logprobs: LegacyLogprobs | None
    finish_reason: Literal["length", "stop"] | None
    seed: int = Field(description="the seed this completion used (an extension)")


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
