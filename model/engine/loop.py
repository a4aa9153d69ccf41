"""The batched generation engine: one thread per model steps every active sequence together.

    engine = Engine(stack, vocab, name="shakespeare"); engine.start()
    ticket = engine.submit(GenerationRequest(prompt="ROMEO:", seed=1), sink)   # returns at once
    ticket.cancel()                                   # optional; takes effect within one step
    engine.stop()                                     # ends everything (on_done "cancelled")

Continuous batching, as in text-generation-inference and vLLM.  Each pass of the thread's loop
(`_loop_once`) admits what waits, up to `max_active`; a new sequence is primed, from the prefix
cache where it can (model/engine/primer.py), samples its first char (`_join`) and joins the batch.
`_step` feeds every row's last char through one batched product per layer (`LSTMStack.step`);
model/sampling/generate.py draws each row's next char with its own Generator (`sample_next`) and applies
stop strings and max_chars (`Generation.accept`); `_emit` hands the text released to the row's
sink.  Ended, failed and cancelled sequences leave between steps.  Priming, then other work
(model/engine/work.py), get about as long per loop as the step took: a long prompt slows the streams
by at most half.  The step's kernels (model/cells/kernel.py) give every row the same bits in any batch,
so a seed gives the same text alone or beside any other sequences.

Sinks (model/engine/sequence.py) are called on the engine thread and must be quick.  A failure in one
sequence (its sink, its sampling, its priming) reaches only its sink's `on_error`; a failure of
the batched product reaches the sinks of that batch; the engine keeps running either way.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from model.cells.stack import LSTMStack
from model.engine.prefix_cache import DEFAULT_BUDGET_BYTES, PrefixCache
from model.engine.primer import Primer
from model.engine.sequence import Batch, EngineClosed, Inbox, Sequence, Sink, Ticket
from model.engine.work import Work, WorkQueue
from model.sampling.generate import Generation, GenerationRequest, sample_next
from model.vocab import Vocab

__all__ = ["Engine", "EngineClosed", "Sink", "Ticket", "Work"]
log = logging.getLogger(__name__)
MIN_PRIME_BUDGET_S = 0.002  # priming time per loop when the step was quicker than this


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
        self._inbox = Inbox(name)  # its condition variable is what the engine thread sleeps on
        self._work = WorkQueue(self._inbox.wake)  # run in slices while streams step
        self.prefix_cache = PrefixCache(prefix_cache_bytes)  # engine thread only
        self._primer = Primer(stack, self.prefix_cache)  # engine thread only
        self._batch = Batch(stack)  # engine thread only
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> int:
        """Sequences being primed or stepped."""
        return len(self._primer.waiting) + len(self._batch.seqs)

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
        self._inbox.close()
        if self._thread is None:
            self._shutdown()
        elif self._thread is not threading.current_thread():  # a sink may call stop() on the engine thread
            self._thread.join(timeout)

    def submit_work(self, work: Work) -> None:
        """Queue work (scoring a text) run on this thread in slices between steps; returns at once."""
        with self._inbox.wake:
            self._inbox.check_open()
            self._work.append(work)
            self._inbox.wake.notify()

    def submit(self, request: GenerationRequest, sink: Sink) -> Ticket:
        """Queue a request; returns at once.  VocabError (before queueing) for unknown prompt chars."""
        ids = self.vocab.encode(request.prompt)
        gen = Generation(request, self.vocab)
        ticket = Ticket(gen.seed, self._inbox.wake)
        self._inbox.put(Sequence(gen, sink, ticket, ids))
        return ticket

    # --- engine thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while taken := self._inbox.take(lambda: bool(self.active or self._work), self.max_active - self.active):
            dropped, admitted = taken
            for seq in dropped:
                seq.finish()
            try:
                self._loop_once(admitted)
            except Exception as exc:  # a bug here must not kill the thread: fail what was in flight
                log.exception("engine %s: unexpected failure; failing its sequences", self.name)
                for seq in self._primer.clear() + self._batch.clear():
                    seq.fail(exc)
        self._shutdown()

    def _loop_once(self, admitted: list[Sequence]) -> None:
        for seq in admitted:
            if self._primer.admit(seq):  # primed already: join at once, in the order admitted
                self._join([seq])
        for seq in self._primer.drop_cancelled():
            seq.finish()
        if any(s.ticket.cancelled for s in self._batch.seqs):
            self._leave([r for r, s in enumerate(self._batch.seqs) if s.ticket.cancelled])
        began = time.perf_counter()
        if self._batch.seqs:
            self._step()
        stepped = max(time.perf_counter() - began, MIN_PRIME_BUDGET_S)
        if self._primer.waiting:
            self._join(self._primer.prime(stepped))
        if self._work:  # a step's worth too: streams keep half their speed (a third while priming too)
            self._work.run(stepped)

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
        """One step of the whole batch: feed each row's last char, sample each row's next."""
        batch = self._batch
        ids = np.fromiter((s.next_id for s in batch.seqs), np.int64, len(batch.seqs))
        try:
            logits = self.stack.step(ids, batch.state)  # (batch, vocab)
        except Exception as exc:
            log.exception("engine %s: step failed for a batch of %d", self.name, len(batch.seqs))
            for seq in batch.clear():
                seq.fail(exc)
            return
        finite = np.isfinite(logits).all(axis=1)
        self._primer.remember(batch.seqs, logits, finite, batch.state)
        leaving = [int(r) for r in np.flatnonzero(~finite)]  # a row gone NaN fails alone
        for r in leaving:
            batch.seqs[r].fail(FloatingPointError("the model produced non-finite logits"))
        rows = [int(r) for r in np.flatnonzero(finite)] if leaving else list(range(len(batch.seqs)))
        seqs = [batch.seqs[r] for r in rows] if leaving else batch.seqs
        try:
            next_ids = sample_next([s.gen for s in seqs], logits[rows] if leaving else logits)
        except Exception as exc:
            log.exception("engine %s: sampling failed", self.name)
            for seq in seqs:
                seq.fail(exc)
            self._leave(list(range(len(batch.seqs))))
            return
        for row, seq, next_id in zip(rows, seqs, next_ids, strict=True):
            if not self._emit(seq, int(next_id), logits[row]):
                leaving.append(row)
        self._leave(sorted(leaving))

    def _emit(self, seq: Sequence, next_id: int, logits: np.ndarray) -> bool:
        """Accept a sampled char and send what it releases; False when the sequence has ended."""
        if seq.ticket.cancelled:
            seq.finish()
            return False
        try:
            chunk = seq.gen.accept(next_id, logits)
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
        pending = self._inbox.drain()
        self._work.fail_all(EngineClosed(f"engine {self.name} is stopped"))
        for seq in pending + self._primer.clear() + self._batch.clear():
            seq.finish()
