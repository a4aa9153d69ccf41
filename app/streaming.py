"""The bridge from the engine thread to asyncio, and the admission of new sequences.

The engine calls a sink's `on_chunk` / `on_done` / `on_error` on its own thread.  A
`Collector` gathers the chunks of one request's sequences under a lock and wakes the event
loop through `loop.call_soon_threadsafe` at most once per batch, so a fast model costs the
loop one wake-up per event, not one per char.  `Admission` counts active sequences on the
event loop, where check-and-take needs no lock:

    lease = admission.acquire(n)          # ApiError 429 at once when full
    collector = Collector(loop, n); tickets = [engine.submit(req, s) for req, s in ...]
    async for batches in collector.coalesced(0.02): ...
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from app.errors import OVERLOADED, UNAVAILABLE, ApiError


@dataclass
class Batch:
    """What one sequence produced since the last take; `end` is set once, when it finished."""

    index: int
    text: str
    logprobs: list[dict[str, Any]]
    end: Any = None  # model.generate.Generation, or the exception from on_error


@dataclass
class _Sequence:
    index: int
    text: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)
    end: Any = None
    end_taken: bool = False
    first_at: float | None = None  # perf_counter() of the first and last chars, on the engine thread
    last_at: float | None = None


class SequenceSink:
    """The engine's Sink for one sequence; only appends under the collector's lock."""

    def __init__(self, collector: Collector, seq: _Sequence):
        self._collector, self._seq = collector, seq

    def on_chunk(self, chunk: Any) -> None:
        self._collector._append(self._seq, chunk.text, chunk.logprobs)

    def on_done(self, generation: Any) -> None:
        self._collector._finish(self._seq, generation)

    def on_error(self, exc: BaseException) -> None:
        self._collector._finish(self._seq, exc)


class Collector:
    """The sinks of one request's `n` sequences, read by one coroutine on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, n: int = 1, wake_on_chunk: bool = True):
        self._loop, self._wake_on_chunk = loop, wake_on_chunk
        self._lock = threading.Lock()
        self._event = asyncio.Event()
        self._signalled = False  # a wake-up is scheduled or pending; reset by take()
        self._seqs = [_Sequence(i) for i in range(n)]
        self.sinks = [SequenceSink(self, seq) for seq in self._seqs]

    # --- engine thread -------------------------------------------------------------------
    def _append(self, seq: _Sequence, text: str, logprobs: list[dict[str, Any]] | None) -> None:
        with self._lock:
            if text:
                seq.last_at = time.perf_counter()
                seq.first_at = seq.first_at or seq.last_at
            seq.text.append(text)
            if logprobs:
                seq.logprobs.extend(logprobs)
            wake = self._wake_on_chunk and not self._signalled
            self._signalled |= wake
        if wake:
            self._wake()

    def _finish(self, seq: _Sequence, end: Any) -> None:
        with self._lock:
            seq.end = end
            wake = not self._signalled
            self._signalled = True
        if wake:
            self._wake()

    def _wake(self) -> None:
        # A closed loop means the server is gone and nobody is reading.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._event.set)

    # --- event loop ----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return all(seq.end_taken for seq in self._seqs)

    def timing(self, index: int) -> tuple[float | None, float | None]:
        """perf_counter() times of sequence `index`'s first and last chars (None before any)."""
        seq = self._seqs[index]
        return seq.first_at, seq.last_at

    def _take_now(self) -> list[Batch]:
        """Everything that arrived, one Batch per sequence with news; re-arms the engine's wake-up."""
        with self._lock:
            self._event.clear()
            self._signalled = False
            batches = []
            for seq in self._seqs:
                end = seq.end if (seq.end is not None and not seq.end_taken) else None
                if seq.text or seq.logprobs or end is not None:
                    batches.append(Batch(seq.index, "".join(seq.text), seq.logprobs, end))
                    seq.text, seq.logprobs = [], []
                    seq.end_taken |= end is not None
            return batches

    async def take(self) -> list[Batch]:
        """Take what has arrived; if nothing has, wait for the engine's wake-up first."""
        while not (batches := self._take_now()):
            await self._event.wait()  # a stale wake-up only costs one more look
        return batches

    async def coalesced(self, interval: float) -> AsyncIterator[list[Batch]]:
        """Batches as they come, the first at once, then at most one per tick of `interval` seconds.

        Ticks are aligned on the loop's clock, so every stream of the server wakes in the same
        loop iteration, and while a stream sleeps the engine does not wake the loop for it.
        """
        loop = asyncio.get_running_loop()
        while not self.finished:
            yield await self.take()
            if interval > 0 and not self.finished:
                with self._lock:
                    self._signalled = True  # no wake-ups until the next take(): it will look anyway
                await asyncio.sleep(interval - loop.time() % interval)

    async def collect(self) -> list[Batch]:
        """Wait until every sequence has ended; all each produced, one Batch per sequence, in order."""
        out = [Batch(seq.index, "", []) for seq in self._seqs]
        texts: list[list[str]] = [[] for _ in self._seqs]
        while not self.finished:
            for batch in await self.take():
                texts[batch.index].append(batch.text)
                out[batch.index].logprobs.extend(batch.logprobs)
                out[batch.index].end = batch.end if batch.end is not None else out[batch.index].end
        for batch, parts in zip(out, texts, strict=True):
            batch.text = "".join(parts)
        return out


class Lease:
    """`n` admitted sequences; `release` (idempotent) gives their slots back."""

    def __init__(self, admission: Admission, n: int):
        self.admission, self.n = admission, n
        self.tickets: list[Any] = []
        self.released = False

    def cancel(self) -> None:
        for ticket in self.tickets:
            ticket.cancel()

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission._release(self)


class Admission:
    """At most `limit` active sequences across all models; used on the event loop only."""

    def __init__(self, limit: int):
        self.limit = limit
        self.active = 0
        self.draining = False
        self._leases: set[Lease] = set()

    def acquire(self, n: int) -> Lease:
        if self.draining:
            raise ApiError(503, "the server is shutting down", UNAVAILABLE, code="shutting_down")
        if self.active + n > self.limit:
            raise ApiError(
                429,
                f"too many active sequences (limit {self.limit}); retry shortly",
                OVERLOADED,
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        self.active += n
        lease = Lease(self, n)
        self._leases.add(lease)
        return lease

    def _release(self, lease: Lease) -> None:
        self.active -= lease.n
        self._leases.discard(lease)

    def drain(self) -> int:
        """Stop admitting and cancel every open sequence; returns how many requests were open."""
        self.draining = True
        leases = list(self._leases)
        for lease in leases:
            lease.cancel()
        return len(leases)
