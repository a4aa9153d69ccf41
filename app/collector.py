"""The bridge from the engine thread to the event loop for one job: sinks in, merged events out.

    collector = Collector(len(requests), asyncio.get_running_loop())
    # the engine thread calls on_chunk / on_done / on_error
    engine.submit(request, collector.outputs[i])
    # the loop: [(i, Chunk | Done | Failed)], merged
    await collector.wait(); events = collector.take()
    await Ticks(loop, 0.05).next()  # sleep to the next 50 ms tick of the loop's clock

Each `Output` (one per sequence, the engine's Sink for it) appends under the collector's lock and
wakes the event loop at most once between two takes (with `stream` False, only when a sequence
ends): one wake-up per event read, not per char.  app/job.py reads it and paces the reads.

Backpressure: the reader is *sending* from a take until it waits for its next tick (`hush`); a send
that does not return means the client is not reading.  A streamed sequence whose output waiting here
reaches an eighth of its bound (CHARLSTM_STREAM_BUFFER_BYTES, counted as the memory it takes here)
while its reader is sending is paused (model/engine/parking.py) until the next take.  The rest of
the bound: the event the blocked send holds (one take's worth), the connection's write buffer and
the kernel's send buffer (app/connection.py).  A client that stops reading thus holds a bounded
amount of output, and the engine's time goes to the others; one that keeps up is never paused,
however much a tick brings.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time

from model.engine import Ticket
from model.event import CharLogprob, Chunk, Done, Event, Failed, FinishReason
from model.sampling import Generation

FOLD = (
    64  # pieces of text held before they are joined into one string (a 1-char str costs ~50 bytes)
)


def held_bytes(chunk: Chunk) -> int:
    """About the memory a chunk takes here: its text, and a dict with a list of (char, float) per
    logprob
    entry (~700 bytes with 5 alternatives, by sys.getsizeof)."""
    return len(chunk.text) + sum(200 + 100 * len(entry["top"]) for entry in chunk.logprobs or ())


class Output:
    """One sequence's output since the last take, and the engine's Sink for it (engine thread)."""

    def __init__(self, collector: Collector):
        self.collector = collector
        self.text: list[str] = []
        self.logprobs: list[CharLogprob] | None = None
        self.end: Done | Failed | None = None
        self.end_taken = False
        self.first_at: float | None = (
            None  # perf_counter() of its first and last chars, engine thread
        )
        self.last_at: float | None = None
        self.sent = 0  # chars handed to the route
        self.finish: FinishReason | None = None  # as recorded in the metrics
        self.held = 0  # bytes waiting here (held_bytes), since the last take
        self.hold = 0  # pause the sequence at this many; 0: never
        self.ticket: Ticket | None = None

    def bind(self, ticket: Ticket, bound: int) -> None:
        """The engine's ticket for this sequence, paused whenever an eighth of `bound` bytes wait
        here."""
        with self.collector._lock:
            self.ticket, self.hold = ticket, max(1, bound // 8)
            self.collector.check_hold(self)

    def on_chunk(self, chunk: Chunk) -> None:
        self.collector.arrived(self, chunk)

    def on_done(self, generation: Generation) -> None:
        self.collector.arrived(self, Done.of(generation))

    def on_error(self, exc: BaseException) -> None:
        self.collector.arrived(self, Failed(exc))


class Collector:
    def __init__(self, n: int, loop: asyncio.AbstractEventLoop):
        self.outputs = [Output(self) for _ in range(n)]
        self._stream = True
        self._sending = False  # the reader took events and has not yet waited for its next tick
        self._loop = loop
        self._lock = threading.Lock()
        self._event = asyncio.Event()
        self._signalled = False  # a wake-up is scheduled or pending; reset by take()

    # --- engine thread -------------------------------------------------------------------
    def arrived(self, out: Output, event: Event) -> None:
        with self._lock:
            if isinstance(event, Chunk):
                out.last_at = time.perf_counter()
                out.first_at = out.first_at or out.last_at
                out.text.append(event.text)
                if len(out.text) >= FOLD:
                    out.text = ["".join(out.text)]
                if event.logprobs is not None:
                    out.logprobs = out.logprobs or []
                    out.logprobs.extend(event.logprobs)
                out.held += held_bytes(event)
                self.check_hold(out)
            else:
                out.end = event
            wake = (self.stream or not isinstance(event, Chunk)) and not self._signalled
            self._signalled |= wake
        if wake:
            # a closed loop: the server is gone, nobody reads
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._event.set)

    def check_hold(self, out: Output) -> None:
        """With the lock held: pause a streamed sequence holding as much as it may while its
        reader sends."""
        if self._sending and self._stream and out.hold and out.held >= out.hold:
            pause = getattr(out.ticket, "pause", None)  # a stand-in engine's ticket may not pause
            if pause is not None:
                pause()

    # --- event loop ----------------------------------------------------------------------
    @property
    def stream(self) -> bool:
        """False: a whole-text request; only endings wake the loop, and nothing pauses (nobody
        reads early)."""
        return self._stream

    @stream.setter
    def stream(self, value: bool) -> None:
        with self._lock:
            self._stream = value
        if not value:
            self._resume(self.outputs)

    def _resume(self, outputs: list[Output]) -> None:
        for out in outputs:
            if out.ticket is not None and getattr(out.ticket, "paused", False):
                out.ticket.resume()

    @property
    def finished(self) -> bool:
        """Every sequence's end has been taken."""
        return all(out.end_taken for out in self.outputs)

    def take(self) -> list[tuple[int, Event]]:
        """What arrived since the last take, per sequence a merged Chunk and/or its end; re-arms
        the wake-up."""
        events: list[tuple[int, Event]] = []
        with self._lock:
            self._event.clear()
            self._signalled = False
            for index, out in enumerate(self.outputs):
                if out.text:
                    events.append((index, Chunk("".join(out.text), out.logprobs)))
                    out.text, out.logprobs, out.held = [], None, 0
                if out.end is not None and not out.end_taken:
                    events.append((index, out.end))
                    out.end_taken = True
            self._sending = bool(events)  # until hush(): what is taken now goes to the client
            # any ticket: one without pausing (a stand-in engine's) is never paused
            paused = [out for out in self.outputs if getattr(out.ticket, "paused", False)]
        self._resume(paused)  # read: room again
        return events

    async def wait(self) -> None:
        """Until something arrives after the last take (a stale wake-up only costs one more
        look)."""
        await self._event.wait()

    def hush(self) -> None:
        """No wake-ups until the next take: the reader will look then anyway.  Its sends have
        returned."""
        with self._lock:
            self._signalled = True
            self._sending = False

    async def all_ended(self) -> None:
        while True:
            with self._lock:
                self._event.clear()
                self._signalled = False
                if all(out.end is not None for out in self.outputs):
                    return
            await self._event.wait()


class Ticks:
    """Sleeps to the loop clock's next multiple of `interval`, never the same one twice.

    asyncio may wake a sleeper a hair before its time; counting ticks, not reading the clock modulo
    the interval, keeps such an early wake-up from reading twice in one tick.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float):
        self.loop, self.interval, self.last = loop, interval, 0

    async def next(self) -> None:
        if self.interval <= 0:
            return
        self.last = max(math.floor(self.loop.time() / self.interval) + 1, self.last + 1)
        await asyncio.sleep(max(0.0, self.last * self.interval - self.loop.time()))
