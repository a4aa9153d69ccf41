"""Run one admitted request on a model's engine: limits, admission, submission, clean-up, metrics.

Shared by the `/api` and `/v1` routes:

    job = Job.start(state, model, [GenerationRequest(...)], stream=True)   # 429 / 503 / 422 here
    try:
        async for batches in job.collector.coalesced(interval): job.note(batch) ...
    finally:
        job.close()       # cancels what still runs (client gone) and frees the slots at once
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from app.errors import SERVER_ERROR, UNAVAILABLE, ApiError
from app.metrics import Metrics
from app.registry import LoadedModel, ModelRegistry
from app.settings import Settings
from app.streaming import Admission, Batch, Collector, Lease
from model.generate import GenerationRequest
from model.vocab import VocabError

log = logging.getLogger("app.generation")


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

    def model(self, name: str | None) -> LoadedModel:
        if self.registry is None:
            raise ApiError(503, "models are not loaded yet", UNAVAILABLE, code="not_ready")
        if self.admission.draining:
            raise ApiError(503, "the server is shutting down", UNAVAILABLE, code="shutting_down")
        return self.registry.get(name)


def get_state(request: Request) -> ServerState:
    """FastAPI dependency: the app's shared state."""
    state: ServerState = request.app.state.server
    return state


State = Annotated[ServerState, Depends(get_state)]


def describe_chars(chars: list[str], limit: int = 20) -> str:
    """Name chars unambiguously (repr and code point), never more than `limit` of them."""
    named = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in chars[:limit])
    return named + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


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


def check_max_chars(value: int, settings: Settings, param: str = "max_chars") -> None:
    if value > settings.max_chars:
        raise ApiError(422, f"{param}: at most {settings.max_chars} (MAX_CHARS)", param=param, code="max_chars")


class Job:
    """One request's `n` sequences on one model, from admission to the freed slots."""

    def __init__(self, state: ServerState, model: LoadedModel, lease: Lease, collector: Collector, stream: bool):
        self.state, self.model, self.lease, self.collector, self.stream = state, model, lease, collector, stream
        n = len(collector.sinks)
        self.started = time.perf_counter()
        self.first_sent: float | None = None
        self.sent = [0] * n
        self.ended: list[str | None] = [None] * n
        self.seeds: list[int] = []

    @classmethod
    def start(cls, state: ServerState, model: LoadedModel, requests: list[GenerationRequest], stream: bool) -> Job:
        lease = state.admission.acquire(len(requests))  # 429 at once, before any work
        collector = Collector(asyncio.get_running_loop(), len(requests), wake_on_chunk=stream)
        job = cls(state, model, lease, collector, stream)
        try:
            for request, sink in zip(requests, collector.sinks, strict=True):
                ticket = model.engine.submit(request, sink)
                lease.tickets.append(ticket)
                job.seeds.append(int(ticket.seed))
        except VocabError as exc:  # checked before; kept so a race can never become a 500
            job.close()
            raise ApiError(422, "prompt: chars not in the vocabulary", param="prompt", code="unknown_chars") from exc
        except BaseException:
            job.close()
            raise
        return job

    def note(self, batch: Batch) -> None:
        """Account for a batch the route is about to send."""
        if batch.text and self.first_sent is None:
            self.first_sent = time.perf_counter()
        self.sent[batch.index] += len(batch.text)
        if batch.end is not None and self.ended[batch.index] is None:
            reason = finish_reason(batch.end)
            self.ended[batch.index] = reason
            self._record(batch.index, reason)

    def _record(self, index: int, reason: str) -> None:
        first, last = self.collector.timing(index)
        sent_first = self.first_sent if self.stream else first
        ttfc = None if sent_first is None else sent_first - self.started
        span = None if first is None or last is None else last - first
        self.state.metrics.finished(self.model.name, reason, self.sent[index], ttfc, span)

    def close(self) -> None:
        """Idempotent: cancel sequences still running (the client left), free the slots, log."""
        if self.lease.released:
            return
        unfinished = [i for i, reason in enumerate(self.ended) if reason is None]
        if unfinished:
            self.lease.cancel()  # each takes effect within one engine step
            for i in unfinished:
                self.ended[i] = "cancelled"
                self._record(i, "cancelled")
        self.lease.release()
        log.info(
            "generated model=%s n=%d chars=%d finish=%s in %.0f ms",
            self.model.name,
            len(self.sent),
            sum(self.sent),
            ",".join(str(r) for r in self.ended),
            1000 * (time.perf_counter() - self.started),
        )


def finish_reason(end: Any) -> str:
    return "error" if isinstance(end, BaseException) else str(end.finish_reason)


def generation_failed(end: Any) -> ApiError:
    """The error a client gets for a sequence that failed inside the engine (details only in the log)."""
    log.error("generation failed", exc_info=end if isinstance(end, BaseException) else None)
    return ApiError(500, "generation failed inside the server", SERVER_ERROR, code="generation_failed")


async def until_disconnect(request: Request) -> None:
    """Return when the client has gone (the body was read already, so this only sees the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def collect_or_abandon(job: Job, request: Request) -> list[Batch] | None:
    """Wait for every sequence of a non-streamed job; None if the client left first."""
    collect = asyncio.ensure_future(job.collector.collect())
    gone = asyncio.ensure_future(until_disconnect(request))
    try:
        await asyncio.wait({collect, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (collect, gone):
            task.cancel()
    return collect.result() if collect.done() and not collect.cancelled() else None
