"""One request's life in the server: admission, the engine, its events, cancellation, the freed slots.

    job = Job.start(state, plan(state, ...))         # 429 / 503 / 422 here, before any work
    async for index, event in job.events(): ...      # streamed: Chunk, then Done or Failed, per sequence
    wholes = await job.result(request)               # or every whole text (None: the client left)

The routes (app/routes/api.py, app/routes/openai.py) format these events.  The engine thread
calls each sequence's sink (`_Sequence`), which appends under the job's lock and wakes the event
loop at most once between two reads (non-streamed: only when a sequence ends): one wake-up per
event, not per char.  `close()` (by `result()`, and by the EventStream however a stream ends)
cancels what still runs, within one engine step, and gives the slots back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request

from app.admission import Lease
from app.deps import Plan, ServerState
from app.errors import ApiError, generation_failed, unavailable
from model.engine import EngineClosed
from model.generate import CharLogprob, Chunk, Done, Event, Failed, FinishReason, Generation
from model.vocab import VocabError

log = logging.getLogger("app.job")


@dataclass
class Whole:
    """One sequence's whole text, for a non-streamed request."""

    text: str
    logprobs: list[CharLogprob] | None  # [] when asked for and no char came
    done: Done


def end_error(end: Done | Failed) -> ApiError | None:
    """The error for a sequence that did not end on its own (failed, or cancelled by the shutdown drain)."""
    if isinstance(end, Failed):
        return generation_failed(end.error)
    return unavailable(shutting_down=True) if end.finish_reason == "cancelled" else None


class _Sequence:
    """One sequence's output since the last read, and the engine's Sink for it (engine thread)."""

    def __init__(self, job: Job):
        self.job = job
        self.text: list[str] = []
        self.logprobs: list[CharLogprob] | None = None
        self.end: Done | Failed | None = None
        self.end_taken = False
        self.first_at: float | None = None  # perf_counter() of its first and last chars, engine thread
        self.last_at: float | None = None
        self.sent = 0  # chars handed to the route
        self.finish: FinishReason | None = None  # as recorded in the metrics

    def on_chunk(self, chunk: Chunk) -> None:
        self.job._arrived(self, chunk)

    def on_done(self, generation: Generation) -> None:
        self.job._arrived(self, Done.of(generation))

    def on_error(self, exc: BaseException) -> None:
        self.job._arrived(self, Failed(exc))


class Ticks:
    """Sleeps to the loop clock's next multiple of `interval`, never the same one twice.

    asyncio may wake a sleeper a hair before its time; counting ticks, not reading the clock
    modulo the interval, keeps such an early wake-up from reading twice in one tick.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float):
        self.loop, self.interval, self.last = loop, interval, 0

    async def next(self) -> None:
        if self.interval <= 0:
            return
        self.last = max(math.floor(self.loop.time() / self.interval) + 1, self.last + 1)
        await asyncio.sleep(max(0.0, self.last * self.interval - self.loop.time()))


class Job:
    def __init__(self, state: ServerState, plan: Plan, lease: Lease):
        self.state, self.model, self.requests, self.lease = state, plan.model, plan.requests, lease
        self.seeds: list[int] = []
        self.stream = True  # result() sets False: then only endings wake the loop
        self.started = time.perf_counter()
        self.first_sent: float | None = None
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._event = asyncio.Event()
        self._signalled = False  # a wake-up is scheduled or pending; reset by _take()
        self._seqs = [_Sequence(self) for _ in plan.requests]

    @classmethod
    def start(cls, state: ServerState, plan: Plan) -> Job:
        job = cls(state, plan, state.admission.acquire(len(plan.requests)))  # 429 at once, before any work
        try:
            for request, seq in zip(plan.requests, job._seqs, strict=True):
                ticket = plan.model.engine.submit(request, seq)
                job.lease.tickets.append(ticket)
                job.seeds.append(int(ticket.seed))
        except VocabError as exc:  # checked by plan(); kept so a race can never become a 500
            job.close()
            raise ApiError(422, "prompt: chars not in the vocabulary", param="prompt", code="unknown_chars") from exc
        except EngineClosed:
            job.close()
            raise unavailable(shutting_down=True) from None
        except BaseException:
            job.close()
            raise
        return job

    # --- engine thread -------------------------------------------------------------------
    def _arrived(self, seq: _Sequence, event: Event) -> None:
        with self._lock:
            if isinstance(event, Chunk):
                seq.last_at = time.perf_counter()
                seq.first_at = seq.first_at or seq.last_at
                seq.text.append(event.text)
                if event.logprobs is not None:
                    seq.logprobs = seq.logprobs or []
                    seq.logprobs.extend(event.logprobs)
            else:
                seq.end = event
            wake = (self.stream or not isinstance(event, Chunk)) and not self._signalled
            self._signalled |= wake
        if wake:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone, nobody reads
                self._loop.call_soon_threadsafe(self._event.set)

    # --- event loop ----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return all(seq.end_taken for seq in self._seqs)

    def _take(self) -> list[tuple[int, Event]]:
        """What arrived since the last take, per sequence a merged Chunk and/or its end; re-arms the wake-up."""
        events: list[tuple[int, Event]] = []
        with self._lock:
            self._event.clear()
            self._signalled = False
            for index, seq in enumerate(self._seqs):
                if seq.text:
                    events.append((index, Chunk("".join(seq.text), seq.logprobs)))
                    seq.text, seq.logprobs = [], None
                if seq.end is not None and not seq.end_taken:
                    events.append((index, seq.end))
                    seq.end_taken = True
        for index, event in events:
            self._account(self._seqs[index], event)  # the caller hands these on at once
        return events

    async def events(self) -> AsyncIterator[tuple[int, Event]]:
        """(sequence index, event) as they come: the first at once, then at most one read per tick.

        Ticks are aligned on the loop's clock, so every stream of the server wakes in the same
        loop iteration, and while a stream sleeps the engine does not wake the loop for it.
        """
        interval = self.state.settings.coalesce_ms / 1000
        ticks = Ticks(self._loop, interval)
        first = True
        while not self.finished:
            while not (events := self._take()):
                await self._event.wait()  # a stale wake-up only costs one more look
                if not first:  # after a stall too, the next read waits for its tick
                    await ticks.next()
            first = False
            for item in events:
                yield item
            if interval > 0 and not self.finished:
                with self._lock:
                    self._signalled = True  # no wake-ups until the next take: it will look anyway
                await ticks.next()

    async def result(self, request: Request) -> list[Whole] | None:
        """Every sequence's whole text, in order; None if the client left first (then it is cancelled).
        Raises the 500 for a failed sequence, the 503 for one the shutdown drain cancelled."""
        self.stream = False
        ended = asyncio.ensure_future(self._all_ended())
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

    async def _all_ended(self) -> None:
        while True:
            with self._lock:
                self._event.clear()
                self._signalled = False
                if all(seq.end is not None for seq in self._seqs):
                    return
            await self._event.wait()

    def _account(self, seq: _Sequence, event: Event) -> None:
        if isinstance(event, Chunk):
            self.first_sent = self.first_sent or time.perf_counter()
            seq.sent += len(event.text)
        elif seq.finish is None:
            self._record(seq, "error" if isinstance(event, Failed) else event.finish_reason)

    def _record(self, seq: _Sequence, reason: FinishReason) -> None:
        seq.finish = reason
        first = self.first_sent if self.stream else seq.first_at
        ttfc = None if first is None else first - self.started
        span = None if seq.first_at is None or seq.last_at is None else seq.last_at - seq.first_at
        self.state.metrics.finished(self.model.name, reason, seq.sent, ttfc, span)

    def close(self) -> None:
        """Idempotent: cancel sequences still running (the client left), free the slots, log."""
        if self.lease.released:
            return
        unfinished = [seq for seq in self._seqs if seq.finish is None]
        if unfinished:
            self.lease.cancel()  # each takes effect within one engine step
            for seq in unfinished:
                self._record(seq, "cancelled")
        self.lease.release()
        log.info(
            "generated model=%s n=%d chars=%d finish=%s in %.0f ms",
            self.model.name,
            len(self._seqs),
            sum(seq.sent for seq in self._seqs),
            ",".join(str(seq.finish) for seq in self._seqs),
            1000 * (time.perf_counter() - self.started),
        )


async def until_disconnect(request: Request) -> None:
    """Return when the client has gone (the body was read already, so this only sees the end)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
