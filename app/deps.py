"""What every route depends on: the server's shared state (`StateDep`) and the request plan.

    async def route(params: GenerateParams, state: StateDep) -> Response:
        job = Job.start(state, plan(state, params.model, [params.prompt], sampling, max_chars=...))

`plan` is the validation that needs the server's settings or a loaded model (MAX_CHARS,
MAX_PROMPT_CHARS, MAX_ACTIVE, the model's vocabulary); everything static is checked by the
pydantic schemas before a route runs.  Both happen before any work is admitted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.admission import Admission
from app.errors import ApiError, unavailable
from app.metrics import Metrics
from app.registry import LoadedModel, ModelRegistry
from app.settings import Settings
from model.generate import GenerationRequest
from model.limits import DEFAULT_MAX_CHARS, MAX_SEED
from model.sampling import SamplingParams


@dataclass
class ServerState:
    """Everything the routes share; `registry` is None until the lifespan has loaded the models."""

    settings: Settings
    metrics: Metrics
    admission: Admission
    registry: ModelRegistry | None = None
    startup_error: str | None = None  # set when the lifespan refuses to start

    @property
    def ready(self) -> bool:
        return self.registry is not None and not self.admission.draining

    def loaded(self) -> ModelRegistry:
        """The registry; 503 before the models are loaded."""
        if self.registry is None:
            raise unavailable()
        return self.registry

    def serving(self) -> ModelRegistry:
        """The registry of a server taking work; 503 before the models load and while shutting down."""
        registry = self.loaded()
        if self.admission.draining:
            raise unavailable(shutting_down=True)
        return registry

    def model(self, name: str | None) -> LoadedModel:
        """A model of a server taking work; 503 (see `serving`), 404 for an unknown name."""
        return self.serving().get(name)


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.server
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


@dataclass(frozen=True)
class Plan:
    """A request checked against the server: the model and one engine request per sequence."""

    model: LoadedModel
    requests: list[GenerationRequest]


def plan(
    state: ServerState,
    model: str | None,
    prompts: Sequence[str],
    sampling: SamplingParams,
    *,
    n: int = 1,
    max_chars: int | None = None,
    max_param: str = "max_chars",
    stop: tuple[str, ...] = (),
    logprobs: int = 0,
    seed: int | None = None,
) -> Plan:
    """`n` sequences per prompt; 503/404/422 before any work.  Sequence i gets `seed + i`, so
    n > 1 gives n different texts, each reproducible.  `max_chars` None: the default, capped by MAX_CHARS."""
    loaded = state.model(model)
    settings = state.settings
    if len(prompts) * n > settings.max_active:
        raise ApiError(422, f"n: n × prompts must be ≤ {settings.max_active} (MAX_ACTIVE)", param="n")
    max_chars = min(DEFAULT_MAX_CHARS, settings.max_chars) if max_chars is None else max_chars
    if max_chars > settings.max_chars:
        raise ApiError(422, f"{max_param}: at most {settings.max_chars} (MAX_CHARS)", param=max_param, code="max_chars")
    for prompt in prompts:
        check_prompt(loaded, prompt, settings)
    requests = [
        GenerationRequest(
            prompts[i // n], max_chars, sampling, stop, logprobs, None if seed is None else (seed + i) % MAX_SEED
        )
        for i in range(len(prompts) * n)
    ]
    return Plan(loaded, requests)


def check_prompt(model: LoadedModel, prompt: str, settings: Settings, param: str = "prompt") -> None:
    if len(prompt) > settings.max_prompt_chars:
        raise ApiError(
            422,
            f"{param}: at most {settings.max_prompt_chars} chars (MAX_PROMPT_CHARS)",
            param=param,
            code="prompt_too_long",
        )
    unknown = model.vocab.unknown(prompt)
    if unknown:
        raise ApiError(
            422,
            f"{param}: chars not in the vocabulary of model {model.name!r}: {describe_chars(unknown)}",
            param=param,
            code="unknown_chars",
        )


def describe_chars(chars: list[str], limit: int = 20) -> str:
    """Name chars unambiguously (repr and code point), never more than `limit` of them."""
    named = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in chars[:limit])
    return named + (f" and {len(chars) - limit} more" if len(chars) > limit else "")
