"""The batched generation engine: one thread per model steps every active sequence together.

    engine = Engine(stack, vocab, name="shakespeare"); engine.start()
    ticket = engine.submit(GenerationRequest(prompt="ROMEO:", seed=1), sink)   # returns at once
    ticket.cancel()                                   # optional; takes effect within one step
    engine.stop()                                     # ends everything (on_done "cancelled")

Continuous batching, as in text-generation-inference and vLLM.  Each pass of the thread's loop
(`_loop_once`) admits what waits, up to `max_active`.  A new sequence starts from the prefix cache
where it can (model/engine/primer.py); one whose prompt is primed already samples its first char
(`_join`), any other joins the batch as a row being primed.  `_step` feeds every row's char through
one batched product per layer (`LSTMStack.step`): a generating row its last char, a row being primed
its next prompt char; model/sampling/generate.py draws each generating row's next char with its own
Generator (`sample_next`) and applies stop strings and max_chars (`Generation.accept`); `_emit`
hands the text released to the row's sink.  A row whose prompt is fed draws its first char and
generates from then on.  Ended, failed and cancelled sequences leave between steps. Besides the
step, priming slices (`_prime`) advance every row being primed by up to 16 chars at once: back to
back while no row generates, else for PRIME_SHARE of the engine's time.  Other work
(model/engine/work.py) gets a step's worth per loop.  The kernels (model/cells/kernel.py) give every
row the same bits in any batch, so a seed gives the same text alone or beside any other sequences,
primed alone or together.  `predicted_wait` (any thread) says how long the work queued would keep a
new request from its first char (model/engine/rate.py).

Sinks (model/engine/sequence.py) are called on the engine thread and must be quick.  A failure in
one sequence (its sink, its sampling) reaches only its sink's `on_error`; a failure of a batched
product (a step, a priming slice) reaches the sinks of that batch; the engine keeps running either
way.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from model.cells.stack import LSTMStack
from model.engine.burst import BURST_S, MAX_BURST, burst
from model.engine.burst import inputs as burst_inputs
from model.engine.burst import warm as warm_burst
from model.engine.parking import Parking
from model.engine.prefix_cache import DEFAULT_BUDGET_BYTES, PrefixCache
from model.engine.primer import Primer
from model.engine.rate import PRIME_SHARE, PrimeRate
from model.engine.sequence import Batch, EngineClosed, Inbox, Sequence, Sink, Ticket
from model.engine.work import Work, WorkQueue
from model.sampling.generate import Generation, GenerationRequest, sample_next
from model.sampling.sampler import settings
from model.vocab import Vocab

__all__ = ["Engine", "EngineClosed", "Sink", "Ticket", "Work"]
log = logging.getLogger(__name__)
MIN_PRIME_BUDGET_S = (
    0.002  # a step counts as at least this long when it earns priming and work their time
)


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
            raise ValueError(
                f"the network has {stack.vocab_size} outputs but the vocab {len(vocab)} chars"
            )
        self.stack, self.vocab, self.name = stack, vocab, name
        self.max_active = max_active
        self._inbox = Inbox(name)  # its condition variable is what the engine thread sleeps on
        self._work = WorkQueue(self._inbox.wake)  # run in slices while streams step
        self.prefix_cache = PrefixCache(prefix_cache_bytes)  # engine thread only
        self.rate = PrimeRate(PRIME_SHARE)  # written by the engine thread, read by predicted_wait
        self._primer = Primer(stack, self.prefix_cache, self.rate)  # engine thread only
        if stack.bursts:  # the burst kernel compiles (or loads) now, not in a request's burst:
            warm_burst(stack)  # that time would count as the engine's speed (and refuse prompts)
        self._batch = Batch(stack)  # engine thread only
        # rows whose reader is behind, out of the batch (engine thread only)
        self._parking = Parking()
        self._credit = 0.0  # seconds of slices owed to the rows being primed (engine thread only)
        self._backlog: tuple[
            int, ...
        ] = ()  # chars left to prime per row being primed, as last published
        self._generating = False  # whether the last loop stepped generating rows, as last published
        self._char_s = 0.0  # seconds per char of the last step or burst (engine thread only)
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> int:
        """Sequences being primed or generating."""
        return len(self._batch.seqs)

    @property
    def paused(self) -> int:
        """Sequences parked because their reader is behind (model/engine/parking.py)."""
        return len(self._parking)

    @property
    def queued(self) -> int:
        """Sequences submitted and not yet started (waiting for a slot)."""
        return len(self._inbox)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"engine-{self.name}", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel everything (each sink gets on_done "cancelled") and join the thread."""
        self._inbox.close()
        if self._thread is None:
            self._shutdown()
        # a sink may call stop() on the engine thread
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def submit_work(self, work: Work) -> None:
        """Queue work (scoring a text) run on this thread in slices between steps; returns at
        once."""
        with self._inbox.wake:
            self._inbox.check_open()
            self._work.append(work)
            self._inbox.wake.notify()

    def submit(self, request: GenerationRequest, sink: Sink) -> Ticket:
        """Queue a request; returns at once.  VocabError (before queueing) for unknown prompt
        chars."""
        ids = self.vocab.encode(request.prompt)
        gen = Generation(request, self.vocab)
        ticket = Ticket(gen.seed, self._inbox.wake)
        self._inbox.put(Sequence(gen, sink, ticket, ids))
        return ticket

    def predicted_wait(self, prompt_chars: list[int]) -> float:
        """Seconds the work queued now would add before these prompts' first chars, from the
        engine's measured rates (0 on an idle engine, or before anything was primed).  Any
        thread."""
        generating = self._generating and self.active > 0  # the last loop's, unless idle since
        return self.rate.wait(prompt_chars, [*self._backlog, *self._inbox.backlog()], generating)

    # --- engine thread ----------------------------------------------------------------------
    def _busy(self) -> bool:
        """Rows to step, work to run, or a parked sequence resumed or cancelled."""
        return bool(self.active or self._work or self._parking.ready())

    def _run(self) -> None:
        while taken := self._inbox.take(self._busy, self.max_active - self.active):
            dropped, admitted = taken
            for seq in dropped:
                seq.finish()
            try:
                self._loop_once(admitted)
            except Exception as exc:  # a bug here must not kill the thread: fail what was in flight
                log.exception("engine %s: unexpected failure; failing its sequences", self.name)
                for seq in self._batch.clear():
                    seq.fail(exc)
        self._shutdown()

    def _loop_once(self, admitted: list[Sequence]) -> None:
        for seq in admitted:
            if self._primer.admit(seq):  # primed already: join at once, in the order admitted
                self._join([seq])
            else:
                self._batch.add([seq])  # a row being primed, from the cached state or zeros
        if any(s.ticket.cancelled for s in self._batch.seqs):
            self._leave([r for r, s in enumerate(self._batch.seqs) if s.ticket.cancelled])
        # paused rows out, resumed ones back
        self._parking.exchange(self._batch, self._primer.remember_end)
        began, generating = time.perf_counter(), self._batch.generating()
        self._generating = generating
        if generating:  # priming rows ride along: one prompt char each
            chars = self._burst_length()
            if chars > 1:
                self._burst(chars)
            else:
                self._step()
            self._char_s = (time.perf_counter() - began) / chars
            self.rate.step(self._char_s)
        stepped = max(time.perf_counter() - began, MIN_PRIME_BUDGET_S)
        self._prime(stepped, generating)
        self._backlog = tuple(int(s.ids.size - s.primed) for s in self._batch.seqs if s.priming)
        # a step's worth too: streams keep half their speed (a third while priming too)
        if self._work:
            self._work.run(stepped)

    def _prime(self, stepped: float, generating: bool) -> None:
        """Priming slices, when it is priming's turn.

        With no row generating, one slice a loop (new arrivals join the next).  Else priming earns
        `stepped · PRIME_SHARE / (1 - PRIME_SHARE)` a loop and each slice spends what it took, so
        over a few loops slices get PRIME_SHARE of the engine however long one is.
        """
        if not generating:
            self._credit = 0.0
            if self._batch.priming_rows():
                self._slice()
            return
        self._credit += stepped * PRIME_SHARE / (1 - PRIME_SHARE)
        while self._credit > 0 and self._batch.priming_rows():
            began = time.perf_counter()
            self._slice()
            self._credit -= time.perf_counter() - began
        if not self._batch.priming_rows():
            self._credit = 0.0  # nothing banked for the next prompt

    def _slice(self) -> None:
        try:
            primed = self._primer.prime(self._batch)
        except Exception as exc:
            log.exception("engine %s: priming failed", self.name)
            rows = self._batch.priming_rows()
            for r in rows:
                self._batch.seqs[r].fail(exc)
            self._leave(rows)
            return
        self._start(*primed)

    def _join(self, seqs: list[Sequence]) -> None:
        """Sample each primed sequence's first char; those still going join the batch."""
        staying = []
        for seq in seqs:
            assert seq.logits is not None
            try:
                next_id = int(sample_next([seq.gen], seq.logits[None])[0])
            except Exception as exc:
                seq.fail(exc)
                continue
            if self._emit(seq, next_id, seq.logits):
                staying.append(seq)
        self._batch.add(staying)

    def _step(self) -> None:
        """One step of the whole batch: each row feeds its last char, or its next prompt char while
        it is being primed; then each generating row, and each row just primed, draws its next."""
        batch = self._batch
        feeding = [s.priming for s in batch.seqs]
        ids = np.fromiter(
            (s.ids[s.primed] if f else s.next_id for s, f in zip(batch.seqs, feeding, strict=True)),
            np.int64,
            len(batch.seqs),
        )
        try:
            logits = self.stack.step(ids, batch.state)  # (batch, vocab)
        except Exception as exc:
            log.exception("engine %s: step failed for a batch of %d", self.name, len(batch.seqs))
            for seq in batch.clear():
                seq.fail(exc)
            return
        finite = np.isfinite(logits).all(axis=1)
        primed = set(self._primer.after_step(batch, feeding, logits, finite))
        failed = [int(r) for r in np.flatnonzero(~finite)]  # a row gone NaN fails alone
        for r in failed:
            batch.seqs[r].fail(FloatingPointError("the model produced non-finite logits"))
        drawing = [r for r in range(len(feeding)) if finite[r] and (not feeding[r] or r in primed)]
        self._start(drawing, logits[drawing], failed)

    def _burst_length(self) -> int:
        """Chars per row for a burst (model/engine/burst.py), or 1 for a step: bursts need every
        generating row to burst, and last until the first max_chars, MAX_BURST or BURST_S."""
        seqs = self._batch.seqs
        if not (self.stack.bursts and self._char_s) or not all(
            s.gen.bursts or s.priming for s in seqs
        ):
            return 1
        left = min(s.gen.chars_left for s in seqs if not s.priming)
        return max(1, min(MAX_BURST, left, int(BURST_S / self._char_s)))

    def _burst(self, chars: int) -> None:
        """`chars` chars for every row in one compiled call; then each generating row takes its
        chars at once, and each row whose prompt is now primed draws its first char."""
        batch = self._batch
        feeding = [s.priming for s in batch.seqs]
        # A prompt that ends within the burst sits it out (its state is put back): a slice primes
        # its last chars, and its end gets its checkpoint, which a burst could not take.
        out = [r for r, s in enumerate(batch.seqs) if s.priming and s.ids.size - s.primed < chars]
        kept = batch.state.h[:, out], batch.state.c[:, out]  # copies: indexed by a list
        ids, u, forced = burst_inputs(batch.seqs, chars)
        params = settings([s.gen.request.sampling for s in batch.seqs])
        try:
            drawn, logits = burst(self.stack, ids, batch.state, u, params, forced)
        except Exception as exc:
            log.exception("engine %s: burst failed for a batch of %d", self.name, len(feeding))
            for seq in batch.clear():
                seq.fail(exc)
            return
        batch.state.h[:, out], batch.state.c[:, out] = kept
        drawn[:, out] = 0  # what those rows drew: never used
        finite = drawn[-1] >= 0
        primed = self._primer.after_step(batch, feeding, logits, finite, drawn, frozenset(out))
        leaving = []
        for r, seq in enumerate(batch.seqs):
            if r in out:
                continue
            got = drawn[:, r][drawn[:, r] >= 0]
            if not feeding[r] and got.size and not self._emit(seq, got, logits[r]):
                leaving.append(r)
            elif not finite[r]:  # a row gone NaN fails alone, as in a step
                seq.fail(FloatingPointError("the model produced non-finite logits"))
                leaving.append(r)
        first = [r for r in primed if finite[r]]
        self._start(first, logits[first], leaving)

    def _start(self, rows: list[int], logits: np.ndarray, leaving: list[int] | None = None) -> None:
        """Draw the next char of each of these rows (logits (rows, vocab)) and send it; the rows
        that
        ended, and `leaving`, leave the batch."""
        leaving = list(leaving or [])
        seqs = [self._batch.seqs[r] for r in rows]
        if rows:
            try:
                next_ids = sample_next([s.gen for s in seqs], logits)
            except Exception as exc:
                log.exception("engine %s: sampling failed", self.name)
                for seq in seqs:
                    seq.fail(exc)
                self._leave(sorted(leaving + rows))
                return
            for row, seq, next_id, row_logits in zip(rows, seqs, next_ids, logits, strict=True):
                if not self._emit(seq, int(next_id), row_logits):
                    leaving.append(row)
        self._leave(sorted(leaving))

    def _emit(self, seq: Sequence, drawn: int | np.ndarray, logits: np.ndarray) -> bool:
        """Accept a sampled char (or a burst's chars) and send what it releases; False when the
        sequence has ended."""
        if seq.ticket.cancelled:
            seq.finish()
            return False
        try:
            if isinstance(drawn, int):
                chunk, next_id = seq.gen.accept(drawn, logits), drawn
            else:
                chunk, next_id = seq.gen.accept_burst(drawn.tolist()), int(drawn[-1])
            if chunk.text:
                seq.sink.on_chunk(chunk)
        except Exception as exc:
            seq.fail(exc)
            return False
        seq.next_id = next_id
        if seq.gen.done:
            seq.finish()
            return False
        return True

    def _leave(self, rows: list[int]) -> None:
        for r in rows:
            seq = self._batch.seqs[r]
            self._primer.remember_end(seq, self._batch.state, r)
            if not seq.gen.done:
                seq.finish()
        self._batch.drop(rows)

    def _shutdown(self) -> None:
        self._parking.finish_all()
        pending = self._inbox.drain()
        self._work.fail_all(EngineClosed(f"engine {self.name} is stopped"))
        for seq in pending + self._batch.clear():
            seq.finish()
