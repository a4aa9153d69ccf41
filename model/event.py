"""What a generating sequence produces, typed for whoever consumes it (the engine's sinks, the
server).

    Chunk(text, logprobs)             text that may be shown now, any number of times
    Done(finish_reason, seed, usage)  then exactly one of these: it ended without a failure,
    Failed(error)                     or this one: it failed (the exception, for the log only)

`FinishReason` is the one spelling of why a sequence ended; the HTTP schemas (app/schemas.py,
app/openai_schemas.py) publish `Finished`, the two reasons a client sees in a 200 response.
model/sampling/generate.py makes these; app/job.py hands them to the routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

Finished = Literal["length", "stop"]  # ended on its own: max_chars reached, or a stop string
FinishReason = Literal[Finished, "cancelled", "error"]  # cancelled: ticket, disconnect or shutdown


class CharLogprob(TypedDict):
    """One generated char's log-probability and the top-N alternatives, most likely first."""

    char: str
    logprob: float
    top: list[tuple[str, float]]


@dataclass
class Chunk:
    """Text that may be shown now; `logprobs` has one entry per char, and is None when not asked
    for."""

    text: str
    logprobs: list[CharLogprob] | None = None


@dataclass(frozen=True)
class Usage:
    prompt_chars: int
    generated_chars: (
        int  # chars released in chunks (held-back chars dropped at a cancel do not count)
    )


class Ended(Protocol):
    """What `Done.of` reads from an ended generation (model/sampling/generate.py's Generation)."""

    @property
    def finish_reason(self) -> FinishReason | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def prompt_chars(self) -> int: ...
    @property
    def emitted(self) -> int: ...


@dataclass(frozen=True)
class Done:
    """A sequence's last event when it ended without a failure."""

    finish_reason: FinishReason
    seed: int
    usage: Usage

    @classmethod
    def of(cls, gen: Ended) -> Done:
        assert gen.finish_reason is not None, "only an ended generation is done"
        return cls(gen.finish_reason, gen.seed, Usage(gen.prompt_chars, gen.emitted))


@dataclass(frozen=True)
class Failed:
    """A sequence's last event when generation failed (the exception, for the log only)."""

    error: BaseException


Event = Chunk | Done | Failed
