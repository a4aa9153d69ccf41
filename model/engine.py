"""The batched generation engine: one thread per model steps every active sequence together.

    engine = Engine(stack, vocab, name="shakespeare"); engine.start()
    ticket = engine.submit(GenerationRequest(prompt="ROMEO:", seed=1), sink)   # returns at once
    ticket.cancel()                                   # optional; takes effect within one step
    engine.stop()                                     # ends everything (on_done "cancelled")

Continuous batching, as in text-generation-inference and vLLM: a submitted sequence is primed
on its own (its prompt run through the network in slices of PRIME_CHUNK chars), samples its
first char, then joins the active batch; each step feeds every active sequence's last char
through one batched product per layer and samples each row with its own Generator; finished,
stopped, failed and cancelled sequences leave between steps.  Priming gets about as much time
per loop as the step took, so a long prompt slows the running streams by at most half.  The
thread sleeps on a condition variable when there is no work.  A prompt primed before comes
from a small cache (`n` completions of one prompt, resubmitted prompts).  The step's kernels
(model/kernel.py) give every row the same bits in any batch, on any number of threads, so a seed
gives the same text alone or beside any other sequences, and the step uses every core.  A prefix cache
(model/prefix_cache.py) keeps each sequence's state every 32 chars and where it ends: a prompt that
extends a text primed or generated before (Continue, a branch, `n` completions, a repeat) primes
only the rest, with the same bits, since priming (LSTMStack.prime_chunk) has the step's bits.

Sinks are called on the engine thread and must be quick.  A failure in one sequence (its
sink, its sampling, its priming) reaches only its sink's `on_error`; a failure of the batched
product reaches the sinks of that batch; the engine keeps running either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Protocol

import numpy as np

from model.cell import PRIME_CHUNK, LSTMStack, State
from model.generate import Chunk, Generation, GenerationRequest, start_logits
from model.prefix_cache import DEFAULT_BUDGET_BYTES, PrefixCache, Run
from model.sampling import sample_rows
from model.vocab import Vocab

log = logging.getLogger(__name__)
MIN_PRIME_BUDGET_S = 0.002  # priming time per loop when the step was quicker than this


class EngineClosed(RuntimeError):
    """submit() after stop()."""


class Sink(Protocol):
    """Where one sequence's output goes; called on the engine thread, must never block."""

    def on_chunk(self, chunk: Chunk) -> None: ...
    def on_done(self, generation: Generation) -> None: ...
    def on_error(self, exc: BaseException) -> None: ...


class Work(Protocol):
    """Model work besides generation (model/score.py's Reading): run between steps, a slice at a time."""

    cancelled: bool

    def run_slice(self) -> bool: ...  # about one step's worth of work; True when finished
    def fail(self, exc: BaseException) -> None: ...


class Ticket:
    """A handle on one submitted sequence."""

    def __init__(self, seed: int, wake: threading.Condition):
        self.seed = seed
        self.cancelled = False
        self._wake = wake

    def cancel(self) -> None:
        """Thread-safe; the sequence ends with "cancelled" within one step (no-op once finished)."""
        self.cancelled = True
        with self._wake:
            self._wake.notify()


class _Sequence:
    def __init__(self, gen: Generation, sink: Sink, ticket: Ticket, ids: np.ndarray):
        self.gen, self.sink, self.ticket, self.ids = gen, sink, ticket, ids
        self.primed = 0  # prompt chars run through `state` so far
        self.state: State | None = None  # this sequence's own state while priming
        self.logits: np.ndarray | None = None  # after the last primed char
        self.next_id = 0  # the char to feed at the next step
        self.run: Run | None = None  # the text fed so far, for the prefix cache
        self.last_logits: np.ndarray | None = None  # after the last fed char, while in the batch


class Engine:
    def __init__(
        self,
        stack: LSTMStack,
        vocab: Vocab,
        name: str = "model",
        max_active: int = 256,
        prefix_cache_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        if stack.vocab_size != len(vocab):
            raise ValueError(f"the network has {stack.vocab_size} outputs but the vocab {len(vocab)} chars")
        self.stack, self.vocab, self.name = stack, vocab, name
        self.max_active = max_active
        self._wake = threading.Condition()
        self._inbox: deque[_Sequence] = deque()  # guarded by _wake
        self._work: deque[Work] = deque()  # guarded by _wake; run in slices while streams step
        self._priming: list[_Sequence] = []  # engine thread only
        self._active: list[_Sequence] = []  # engine thread only; row r of _state is _active[r]
        self._state = stack.zero_state(0)
        self.prefix_cache = PrefixCache(prefix_cache_bytes)  # engine thread only
        self._stopping = self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> int:
        """Sequences being primed or stepped."""
        return len(self._priming) + len(self._active)

    @property
    def queued(self) -> int:
        """Sequences submitted and not yet started (waiting for a slot)."""
        return len(self._inbox)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"engine-{self.name}", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel everything (each sink gets on_done "cancelled") and join the thread."""
        with self._wake:
            self._stopping = self._closed = True
            self._wake.notify()
        if self._thread is None:
            self._shutdown()
        elif self._thread is not threading.current_thread():  # a sink may call stop() on the engine thread
            self._thread.join(timeout)

    def submit_work(self, work: Work) -> None:
        """Queue work (scoring a text) run on this thread in slices between steps; returns at once."""
        with self._wake:
            if self._closed:
                raise EngineClosed(f"engine {self.name} is stopped")
            self._work.append(work)
            self._wake.notify()

    def submit(self, request: GenerationRequest, sink: Sink) -> Ticket:
        """Queue a request; returns at once.  VocabError (before queueing) for unknown prompt chars."""
        ids = self.vocab.encode(request.prompt)
        gen = Generation(request, self.vocab)
        ticket = Ticket(gen.seed, self._wake)
        with self._wake:
            if self._closed:
                raise EngineClosed(f"engine {self.name} is stopped")
            self._inbox.append(_Sequence(gen, sink, ticket, ids))
            self._wake.notify()
        return ticket

    # --- engine thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._wake:
                while not (self._stopping or self._inbox or self._priming or self._active or self._work):
                    self._wake.wait()
                if self._stopping:
                    break
                dropped = [s for s in self._inbox if s.ticket.cancelled]  # queued ones end at once too
                if dropped:
                    self._inbox = deque(s for s in self._inbox if not s.ticket.cancelled)
                admitted: list[_Sequence] = []
                while self._inbox and self.active + len(admitted) < self.max_active:
                    admitted.append(self._inbox.popleft())
            for seq in dropped:
                self._finish(seq)
            try:
                self._loop_once(admitted)
            except Exception as exc:  # a bug here must not kill the thread: fail what was in flight
                log.exception("engine %s: unexpected failure; failing its sequences", self.name)
                for seq in self._priming + self._active:
                    self._fail(seq, exc)
                self._priming, self._active, self._state = [], [], self.stack.zero_state(0)
        self._shutdown()

    def _loop_once(self, admitted: list[_Sequence]) -> None:
        for seq in admitted:
            seq.run = self.prefix_cache.run(seq.ids)
            if not seq.ids.size:  # the start state, nothing to prime
                seq.logits, seq.state = start_logits(self.stack)
                self._join([seq])
                continue
            seq.primed, logits, state = self.prefix_cache.lookup(seq.ids)
            seq.gen.cached_chars = seq.primed
            seq.state = self.stack.zero_state(1) if state is None else state
            if seq.primed == seq.ids.size:  # primed before: the same bits, no work
                seq.logits = logits
                self._join([seq])
            else:
                self._priming.append(seq)
        self._drop_cancelled()
        began = time.perf_counter()
        if self._active:
            self._step()
        stepped = max(time.perf_counter() - began, MIN_PRIME_BUDGET_S)
        if self._priming:
            self._prime(stepped)
        if self._work:  # a step's worth too: streams keep half their speed (a third while priming too)
            self._run_work(stepped)

    def _run_work(self, budget: float) -> None:
        """Slices of the oldest work item until `budget` seconds are spent (at least one slice)."""
        deadline = time.perf_counter() + budget
        with self._wake:
            work = self._work[0]
        while True:
            if work.cancelled:  # the waiter gets an answer even so (a shutdown drain cancels it)
                work.fail(EngineClosed("cancelled"))
                break
            try:
                if work.run_slice():
                    break
            except Exception as exc:
                work.fail(exc)
                break
            if time.perf_counter() >= deadline:
                return
        with self._wake:
            self._work.popleft()

    def _drop_cancelled(self) -> None:
        for seq in [s for s in self._priming if s.ticket.cancelled]:
            self._priming.remove(seq)
            self._finish(seq)
        if any(s.ticket.cancelled for s in self._active):
            self._leave([r for r, s in enumerate(self._active) if s.ticket.cancelled])

    def _prime(self, budget: float) -> None:
        """Prime slices of the shortest remaining prompts until `budget` seconds are spent."""
        deadline = time.perf_counter() + budget
        joining = []
        while self._priming and time.perf_counter() < deadline:
            seq = min(self._priming, key=lambda s: s.ids.size - s.primed)
            assert seq.state is not None
            end = min((seq.primed // PRIME_CHUNK + 1) * PRIME_CHUNK, seq.ids.size)  # on the cache's grid
            try:
                seq.logits = self.stack.prime_chunk(seq.ids[seq.primed : end], seq.state)  # the step's bits
            except Exception as exc:
                self._priming.remove(seq)
                self._fail(seq, exc)
                continue
            seq.primed = end
            if seq.run is not None and (self.prefix_cache.due(end) or end == seq.ids.size):
                self.prefix_cache.record(seq.run, end, seq.logits, seq.state)
            if seq.primed == seq.ids.size:
                self._priming.remove(seq)
                joining.append(seq)
        self._join(joining)

    def _join(self, seqs: list[_Sequence]) -> None:
        """Sample each primed sequence's first char; those still going join the batch."""
        staying = []
        for seq in seqs:
            assert seq.logits is not None
            try:
                gen = seq.gen
                next_id = int(sample_rows(seq.logits[None], [gen.request.sampling], [gen.rng], [gen.history])[0])
            except Exception as exc:
                self._fail(seq, exc)
                continue
            if self._emit(seq, next_id, seq.logits):
                staying.append(seq)
        if staying:
            self._active.extend(staying)
            self._state = State.stack([self._state, *(s.state for s in staying if s.state is not None)])
            for seq in staying:
                seq.state = seq.logits = None

    def _step(self) -> None:
        """One step of the whole batch: feed each row's last char, sample each row's next."""
        ids = np.fromiter((s.next_id for s in self._active), np.int64, len(self._active))
        try:
            logits = self.stack.step(ids, self._state)
        except Exception as exc:
            log.exception("engine %s: step failed for a batch of %d", self.name, len(self._active))
            for seq in self._active:
                self._fail(seq, exc)
            self._active, self._state = [], self.stack.zero_state(0)
            return
        finite = np.isfinite(logits).all(axis=1)
        if self.prefix_cache.enabled:
            self._remember(logits, finite)
        leaving: list[int] = []
        rows: list[int] = list(range(len(self._active)))
        seqs = self._active
        if not finite.all():  # a row gone NaN fails alone
            leaving = [int(r) for r in np.flatnonzero(~finite)]
            for r in leaving:
                self._fail(self._active[r], FloatingPointError("the model produced non-finite logits"))
            rows = [int(r) for r in np.flatnonzero(finite)]
            seqs = [self._active[r] for r in rows]
        try:
            sub = logits if len(seqs) == len(logits) else logits[rows]
            gens = [s.gen for s in seqs]
            next_ids = sample_rows(
                sub, [g.request.sampling for g in gens], [g.rng for g in gens], [g.history for g in gens]
            )
        except Exception as exc:
            log.exception("engine %s: sampling failed", self.name)
            for seq in seqs:
                self._fail(seq, exc)
            self._leave(list(range(len(self._active))))
            return
        for row, seq, next_id in zip(rows, seqs, next_ids, strict=True):
            if not self._emit(seq, int(next_id), logits[row]):
                leaving.append(row)
        self._leave(sorted(leaving))

    def _emit(self, seq: _Sequence, next_id: int, logits: np.ndarray) -> bool:
        """Accept a sampled char and send what it releases; False when the sequence has ended."""
        if seq.ticket.cancelled:
            self._finish(seq)
            return False
        try:
            chunk = seq.gen.accept(next_id, logits)
            if chunk.text:
                seq.sink.on_chunk(chunk)
        except Exception as exc:
            self._fail(seq, exc)
            return False
        seq.next_id = next_id
        if seq.gen.done:
            self._finish(seq)
            return False
        return True

    def _remember(self, logits: np.ndarray, finite: np.ndarray) -> None:
        """After a step: each row's run gains the char just fed; a checkpoint where one is due."""
        for row, seq in enumerate(self._active):
            if seq.run is None:
                continue
            seq.run.append(seq.next_id)
            seq.last_logits = logits[row] if finite[row] else None
            if seq.last_logits is not None and self.prefix_cache.due(len(seq.run)):
                self.prefix_cache.record(seq.run, len(seq.run), seq.last_logits, self._state.rows([row]))

    def _leave(self, rows: list[int]) -> None:
        if rows:
            gone = set(rows)
            for r in rows:  # where a text ends is where Continue starts: remember it
                seq = self._active[r]
                if seq.run is not None and seq.last_logits is not None and self.prefix_cache.enabled:
                    self.prefix_cache.record(seq.run, len(seq.run), seq.last_logits, self._state.rows([r]))

                if not self._active[r].gen.done:
                    self._finish(self._active[r])
            keep = [r for r in range(len(self._active)) if r not in gone]
            self._active = [self._active[r] for r in keep]
            self._state = self._state.rows(keep)

    def _finish(self, seq: _Sequence) -> None:
        seq.gen.cancel()  # no-op when it already ended on its own
        try:
            seq.sink.on_done(seq.gen)
        except Exception:
            log.exception("engine %s: a sink's on_done failed", self.name)

    def _fail(self, seq: _Sequence, exc: BaseException) -> None:
        seq.gen.cancel("error")
        try:
            seq.sink.on_error(exc)
        except Exception:
            log.exception("engine %s: a sink's on_error failed", self.name)

    def _shutdown(self) -> None:
        with self._wake:
            pending, self._inbox = list(self._inbox), deque()
            work, self._work = list(self._work), deque()
        for item in work:
            item.fail(EngineClosed(f"engine {self.name} is stopped"))
        for seq in pending + self._priming + self._active:
            self._finish(seq)
        self._priming, self._active, self._state = [], [], self.stack.zero_state(0)
