"""One request's life in the server: its plan, admission, the engine, its events, cancellation.

    # 503/404/422/429, before any work
    job = Job.start(state, plan(state, model, [prompt], sampling, ...))
    # streamed: Chunk, then Done or Failed, per sequence
    async for index, event in job.events(): ...
    wholes = await job.result(request)               # or every whole text (None: the client left)

Step two of a request's path: a route (app/routes/api.py, app/routes/openai.py) calls `plan` and
`Job.start`, which refuses a request the queue would keep waiting too long, takes slots from the
admission (app/admission.py) and submits each sequence to its model's engine (model/engine/loop.py),
with a sink from app/collector.py.  The engine's events come back through that collector: `events()`
reads them, the first at once, then at most one read per tick, and the route formats each one.
`close()` (by `result()`, and by the EventStream however a stream ends) cancels what still runs,
within one engine step, and gives the slots back at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from fastapi import Request

from app.admission import Lease, check_wait
from app.collector import Collector, Output, Ticks
from app.deps import ServerState, check_prompt
from app.errors import ApiError, generation_failed, unavailable
from app.registry import LoadedModel
from model.engine import EngineClosed
from model.event import CharLogprob, Chunk, Done, Event, Failed, FinishReason
from model.limits import DEFAULT_MAX_CHARS, MAX_SEED
from model.sampling import GenerationRequest, SamplingParams
from model.vocab import VocabError

log = logging.getLogger("app.job")


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
    n > 1 gives n different texts, each reproducible.  `max_chars` None: the default, capped by
    MAX_CHARS."""
    loaded = state.model(model)
    settings = state.settings
    if len(prompts) * n > settings.max_active:
        raise ApiError(
            422, f"n: n × prompts must be ≤ {settings.max_active} (MAX_ACTIVE)", param="n"
        )
    max_chars = min(DEFAULT_MAX_CHARS, settings.max_chars) if max_chars is None else max_chars
    if max_chars > settings.max_chars:
        raise ApiError(
            422,
            f"{max_param}: at most {settings.max_chars} (MAX_CHARS)",
            param=max_param,
            code="max_chars",
        )
    for prompt in prompts:
        check_prompt(loaded, prompt, settings)
    requests = [
        GenerationRequest(
            prompts[i // n],
            max_chars,
            sampling,
            stop,
            logprobs,
            None if seed is None else (seed + i) % MAX_SEED,
        )
        for i in range(len(prompts) * n)
    ]
    return Plan(loaded, requests)


@dataclass
class Whole:
    """One sequence's whole text, for a non-streamed request."""

    text: str
    logprobs: list[CharLogprob] | None  # [] when asked for and no char came
    done: Done


def end_error(end: Done | Failed) -> ApiError | None:
    """The error for a sequence that did not end on its own (failed, or cancelled by the shutdown
    drain)."""
    if isinstance(end, Failed):
        return generation_failed(end.error)
    return unavailable(shutting_down=True) if end.finish_reason == "cancelled" else None


class Job:
    def __init__(self, state: ServerState, plan: Plan, lease: Lease):
        self.state, self.model, self.requests, self.lease = state, plan.model, plan.requests, lease
        self.seeds: list[int] = []
        self.started = time.perf_counter()
        self.first_sent: float | None = None
        self._loop = asyncio.get_running_loop()
        self.collector = Collector(len(plan.requests), self._loop)

    @classmethod
    def start(cls, state: ServerState, plan: Plan) -> Job:
        wait = plan.model.engine.predicted_wait([len(r.prompt) for r in plan.requests])
        check_wait(wait, state.settings.max_queue_s)  # 429 at once when the queue is too long
        # 429 at once, before any work
        job = cls(state, plan, state.admission.acquire(len(plan.requests)))
        try:
            for request, out in zip(plan.requests, job.collector.outputs, strict=True):
                ticket = plan.model.engine.submit(request, out)
                # paused while its client reads nothing
                out.bind(ticket, state.settings.stream_buffer_bytes)
                job.lease.tickets.append(ticket)
                job.seeds.append(int(ticket.seed))
        except VocabError as exc:  # checked by plan(); kept so a race can never become a 500
            job.close()
            raise ApiError(
                422, "prompt: chars not in the vocabulary", param="prompt", code="unknown_chars"
            ) from exc
        except EngineClosed:
            job.close()
            raise unavailable(shutting_down=True) from None
        except BaseException:
            job.close()
            raise
        return job

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        """(sequence index, event) as they come: the first at once, then at most one read per tick.

        Ticks are aligned on the loop's clock, so every stream of the server wakes in the same loop
        iteration, and while a stream sleeps the engine does not wake the loop for it.
        """
        interval = self.state.settings.coalesce_ms / 1000
        ticks, collector, first = Ticks(self._loop, interval), self.collector, True
        while not collector.finished:
            while not (events := self._take()):
                await collector.wait()
                if not first:  # after a stall too, the next read waits for its tick
                    await ticks.next()
            first = False
            for item in events:
                yield item
            if interval > 0 and not collector.finished:
                collector.hush()
                await ticks.next()

    async def result(self, request: Request) -> list[Whole] | None:
        """Every sequence's whole text, in order; None if the client left first (then it is
        cancelled).
        Raises the 500 for a failed sequence, the 503 for one the shutdown drain cancelled."""
        self.collector.stream = False
        ended = asyncio.ensure_future(self.collector.all_ended())
        gone = asyncio.ensure_future(until_disconnect(request))
        try:
            await asyncio.wait({ended, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not ended.done():
                return None
            taken = self._take()  # every sequence has ended: all its text, then its end
        finally:
            for task in (ended, gone):
                task.cancel()
            self.close()
        chunks = {index: event for index, event in taken if isinstance(event, Chunk)}
        wholes = []
        for index, end in taken:
            if isinstance(end, Chunk):
                continue
            if (error := end_error(end)) is not None:
                raise error
            assert isinstance(end, Done)
            chunk = chunks.get(index) or Chunk("", [] if self.requests[index].logprobs else None)
            wholes.append(Whole(chunk.text, chunk.logprobs, end))
        return wholes

    def _take(self) -> list[tuple[int, Event]]:
        events = self.collector.take()
        for index, event in events:  # the caller hands these on at once
            out = self.collector.outputs[index]
            if isinstance(event, Chunk):
                self.first_sent = self.first_sent or time.perf_counter()
                out.sent += len(event.text)
            elif out.finish is None:
                self._record(out, "error" if isinstance(event, Failed) else event.finish_reason)
        return events

    def _record(self, out: Output, reason: FinishReason) -> None:
        out.finish = reason
        first = self.first_sent if self.collector.stream else out.first_at
        ttfc = None if first is None else first - self.started
        span = None if out.first_at is None or out.last_at is None else out.last_at - out.first_at
        self.state.metrics.finished(self.model.name, reason, out.sent, ttfc, span)

    def close(self) -> None:
        """Idempotent: cancel sequences still running (the client left), free the slots, log."""
        if self.lease.released:
            return
        outputs = self.collector.outputs
        unfinished = [out for out in outputs if out.finish is None]
        if unfinished:
            self.lease.cancel()  # each takes effect within one engine step
            for out in unfinished:
                self._record(out, "cancelled")
        self.lease.release()
        log.info(
            "generated model=%s n=%d chars=%d finish=%s in %.0f ms",
            self.model.name,
            len(outputs),
            sum(out.sent for out in outputs),
            ",".join(str(out.finish) for out in outputs),
            1000 * (time.perf_counter() - self.started),
        )


async def until_disconnect(request: Request) -> None:
    """Return when the client has gone (the body was read already, so this only sees the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
