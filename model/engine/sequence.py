"""The engine's bookkeeping of sequences: each one's Sink and Ticket, the Inbox, the Batch.

    ticket = engine.submit(request, sink)   # model/engine/loop.py puts a Sequence in its Inbox
    ticket.cancel()  # any thread; the sequence ends "cancelled" within one step

A `Sequence` lives on the engine thread from `submit` to its end: waiting in the `Inbox`, then a row
of the `Batch` (whose state stacks the rows' states), first being primed (model/engine/primer.py),
then generating.  `finish()` and `fail()` send its last event to the sink; a sink that raises is
logged, never allowed to stop the engine.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from model.cells.stack import LSTMStack, State
from model.engine.prefix_cache import Run
from model.event import Chunk
from model.sampling.generate import Generation

log = logging.getLogger("model.engine")


class EngineClosed(RuntimeError):
    """submit() after stop()."""


class Sink(Protocol):
    """Where one sequence's output goes; called on the engine thread, must never block."""

    def on_chunk(self, chunk: Chunk) -> None: ...
    def on_done(self, generation: Generation) -> None: ...
    def on_error(self, exc: BaseException) -> None: ...


class Ticket:
    """A handle on one submitted sequence."""

    def __init__(self, seed: int, wake: threading.Condition):
        self.seed = seed
        self.cancelled = False
        self.paused = False  # its reader is behind: the engine parks it (model/engine/parking.py)
        self._wake = wake

    def cancel(self) -> None:
        """Thread-safe; the sequence ends with "cancelled" within one step (no-op once finished)."""
        self.cancelled = True
        with self._wake:
            self._wake.notify()

    def pause(self) -> None:
        """Any thread: stop stepping it from the next step on, its state kept as it is (a sink
        may call this)."""
        self.paused = True

    def resume(self) -> None:
        """Any thread: step it again; the text goes on exactly as if it had never paused."""
        if self.paused:
            self.paused = False
            with self._wake:
                self._wake.notify()


class Sequence:
    """One sequence on the engine thread: `state` is its own until it joins the batch, then a row
    of the batch's; while `priming` it feeds ids[primed] at each step, then `next_id`, its last
    char."""

    def __init__(self, gen: Generation, sink: Sink, ticket: Ticket, ids: np.ndarray):
        self.gen, self.sink, self.ticket, self.ids = gen, sink, ticket, ids
        self.primed = 0  # prompt chars run through `state` so far
        self.state: State | None = None  # its own state, until it joins the batch
        self.logits: np.ndarray | None = None  # after its prompt, until its first char is drawn
        self.next_id = 0  # the char to feed at the next step
        self.run: Run | None = None  # the text fed so far, for the prefix cache
        self.last_logits: np.ndarray | None = None  # after the last fed char, while in the batch

    @property
    def priming(self) -> bool:
        """Prompt chars are left to feed (it is a batch row being primed, not yet generating)."""
        return self.primed < self.ids.size

    def finish(self) -> None:
        """Send Done: its own finish_reason, or "cancelled" when it had not ended."""
        self.gen.cancel()  # no-op when it already ended on its own
        try:
            self.sink.on_done(self.gen)
        except Exception:
            log.exception("engine: a sink's on_done failed")

    def fail(self, exc: BaseException) -> None:
        self.gen.cancel("error")
        try:
            self.sink.on_error(exc)
        except Exception:
            log.exception("engine: a sink's on_error failed")


class Inbox:
    """Sequences submitted and not yet admitted: any thread puts, the engine thread takes.  Its
    condition variable is what the engine thread sleeps on; tickets and queued work notify it
    too."""

    def __init__(self, name: str):
        self.name = name
        self.wake = threading.Condition()
        self.closed = False  # guarded by wake, as is _waiting
        self._waiting: deque[Sequence] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def backlog(self) -> list[int]:
        """Prompt chars of each sequence waiting here (any thread)."""
        with self.wake:
            return [int(s.ids.size) for s in self._waiting]

    def check_open(self) -> None:
        """Call with `wake` held: EngineClosed once the engine is stopping."""
        if self.closed:
            raise EngineClosed(f"engine {self.name} is stopped")

    def put(self, seq: Sequence) -> None:
        with self.wake:
            self.check_open()
            self._waiting.append(seq)
            self.wake.notify()

    def close(self) -> None:
        with self.wake:
            self.closed = True
            self.wake.notify()

    def take(
        self, busy: Callable[[], bool], room: int
    ) -> tuple[list[Sequence], list[Sequence]] | None:
        """Sleep until there is work; then (the cancelled ones, up to `room` to start), or None
        once closed."""
        with self.wake:
            while not (self.closed or self._waiting or busy()):
                self.wake.wait()
            if self.closed:
                return None
            dropped = [
                s for s in self._waiting if s.ticket.cancelled
            ]  # queued ones end at once too
            if dropped:
                self._waiting = deque(s for s in self._waiting if not s.ticket.cancelled)
            admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
        return dropped, admitted

    def drain(self) -> list[Sequence]:
        with self.wake:
            pending, self._waiting = list(self._waiting), deque()
        return pending


class Batch:
    """The sequences being stepped together, generating or being primed: row r of `state` is
    `seqs[r]`."""

    def __init__(self, stack: LSTMStack):
        self.stack = stack
        self.seqs: list[Sequence] = []
        self.state = stack.zero_state(0)

    def priming_rows(self) -> list[int]:
        return [r for r, s in enumerate(self.seqs) if s.priming]

    def generating(self) -> bool:
        return any(not s.priming for s in self.seqs)

    def add(self, seqs: list[Sequence]) -> None:
        """Sequences join as the last rows; their own state moves into the batch's."""
        if not seqs:  # most loops: no copy of the batch's state
            return
        self.seqs.extend(seqs)
        self.state = State.stack([self.state, *(s.state for s in seqs if s.state is not None)])
        for seq in seqs:
            seq.state = seq.logits = None

    def drop(self, rows: list[int]) -> None:
        """The rows that left; the others keep their order."""
        if rows:
            gone = set(rows)
            keep = [r for r in range(len(self.seqs)) if r not in gone]
            self.seqs = [self.seqs[r] for r in keep]
            self.state = self.state.rows(keep)

    def clear(self) -> list[Sequence]:
        """Empty the batch; returns who was in it."""
        seqs, self.seqs, self.state = self.seqs, [], self.stack.zero_state(0)
        return seqs
