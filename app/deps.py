"""What every route depends on: the server's shared state (`StateDep`) and the prompt checks.

    async def route(params: GenerateParams, state: StateDep) -> Response:
        model = state.model(params.model)  # 503 not ready / shutting down, 404 unknown model
        check_prompt(model, params.prompt, state.settings)   # 422: too long, chars not in the vocab

Checks that need the server's settings or a loaded model live here and in app/job.py's `plan`;
everything static is checked by the pydantic schemas before a route runs.  Both happen before any
work is admitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.admission import Admission
from app.errors import ApiError, unavailable
from app.metrics import Metrics
from app.registry import LoadedModel, ModelRegistry
from app.settings import Settings


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
        """The registry of a server taking work; 503 before the models load and while shutting
        down."""
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


def check_prompt(
    model: LoadedModel, prompt: str, settings: Settings, param: str = "prompt"
) -> None:
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
            f"{param}: chars not in the vocabulary of model {model.name!r}: "
            f"{describe_chars(unknown)}",
            param=param,
            code="unknown_chars",
        )


def describe_chars(chars: list[str], limit: int = 20) -> str:
    """Name chars unambiguously (repr and code point), never more than `limit` of them."""
    named = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in chars[:limit])
    return named + (f" and {len(chars) - limit} more" if len(chars) > limit else "")
