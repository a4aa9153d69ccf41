"""Priming: run new sequences' prompts through the network, all together, from the prefix cache
where it can.

    if primer.admit(seq): ...  # primed already (empty prompt, or a prompt primed before)
    rows = primer.prime(batch)  # else it is a batch row being primed: a slice of every such row
    # after each step (each row fed one char) or burst (`drawn`: model/engine/burst.py)
    rows = primer.after_step(batch, feeding, logits, finite)

A sequence being primed is a row of the engine's batch (model/engine/sequence.py) from the loop it
arrives in, and advances two ways.  In every step it feeds its next prompt char beside the
generating rows: the step's rows share the weights' passage, so a priming row costs little (with the
bundled model, 6 priming rows beside 22 generating ones add 0.2 ms to a 1.4 ms step, where priming
those 6 on their own costs 0.7 ms a char).  And in slices (`prime`, LSTMStack.prime_rows): every
priming row advances up to PRIME_CHUNK chars as the rows of one product per char, back to back when
no row generates (one prompt on an idle server primes at its single-sequence speed), for a share of
the engine otherwise (model/engine/loop.py).  Arrival order does not matter and no prompt waits for
another to finish: a long prompt's wait is bounded by its own length, however many short ones keep
arriving.  The kernels are batch-invariant, so each row gets the bits of priming alone, which are
the step's.  Each slice is measured (model/engine/rate.py).

The prefix cache (model/engine/prefix_cache.py) keeps each sequence's state every 32 chars and where
it ends: a prompt that extends a text primed or generated before (Continue, a branch, `n`
completions, a repeat) primes only the rest, with the same bits.  Engine thread only.
"""

from __future__ import annotations

import time

import numpy as np

from model.cells.stack import PRIME_CHUNK, LSTMStack, State
from model.engine.prefix_cache import PrefixCache
from model.engine.rate import PrimeRate
from model.engine.sequence import Batch, Sequence
from model.sampling.generate import start_logits


class Primer:
    """How prompts are primed, and the prefix cache that priming and stepping read and fill."""

    def __init__(self, stack: LSTMStack, cache: PrefixCache, rate: PrimeRate | None = None):
        self.stack, self.cache = stack, cache
        self.rate = PrimeRate() if rate is None else rate

    def admit(self, seq: Sequence) -> bool:
        """Start from the longest cached prefix of the prompt (`seq.state`); True when nothing is
        left to prime (`seq.logits` set), else the caller adds it to the batch to be primed."""
        seq.run = self.cache.run(seq.ids)
        if not seq.ids.size:  # the start state, nothing to prime
            seq.logits, seq.state = start_logits(self.stack)
            return True
        seq.primed, logits, state = self.cache.lookup(seq.ids)
        seq.gen.cached_chars = seq.primed
        seq.state = self.stack.zero_state(1) if state is None else state
        if seq.primed == seq.ids.size:  # primed before: the same bits, no work
            seq.logits = logits
            return True
        return False

    def prime(self, batch: Batch) -> tuple[list[int], np.ndarray]:
        """One slice: every priming row advances to its next multiple of PRIME_CHUNK (or its
        prompt's end) in one batched call; returns the rows now primed and their logits (rows,
        vocab).  Raises what the call raised (the caller fails those rows, as a failed step fails
        its batch)."""
        rows = batch.priming_rows()
        seqs = [batch.seqs[r] for r in rows]
        ends = [
            min((s.primed // PRIME_CHUNK + 1) * PRIME_CHUNK, s.ids.size) for s in seqs
        ]  # on the cache's grid
        states = [
            State(batch.state.h[:, r : r + 1], batch.state.c[:, r : r + 1]) for r in rows
        ]  # views: in place
        began = time.perf_counter()
        logits = self.stack.prime_rows(
            [s.ids[s.primed : end] for s, end in zip(seqs, ends, strict=True)], states
        )
        chars = max(end - s.primed for s, end in zip(seqs, ends, strict=True))
        self.rate.slice(time.perf_counter() - began, chars, len(rows))
        done = []
        for row, seq, end, row_logits, state in zip(rows, seqs, ends, logits, states, strict=True):
            seq.primed = end
            if seq.run is not None and (self.cache.due(end) or end == seq.ids.size):
                self.cache.record(seq.run, end, row_logits, state)
            if end == seq.ids.size:
                done.append(row)
        first = [logits[rows.index(r)] for r in done]
        return done, np.stack(first) if first else np.zeros((0, self.stack.vocab_size), np.float32)

    def after_step(
        self,
        batch: Batch,
        feeding: list[bool],
        logits: np.ndarray,
        finite: np.ndarray,
        drawn: np.ndarray | None = None,
        out: frozenset[int] = frozenset(),
    ) -> list[int]:
        """After a step, or a burst that drew `drawn` (steps, rows) (model/engine/burst.py): a
        priming row (`feeding[row]`) has fed its next `steps` prompt chars, a generating row its
        last sampled char and, in a burst, all it drew but the last; rows `out` sat the burst out.
        A checkpoint where one came due on the way (at the end: a burst keeps no state between).
        Returns the priming rows now primed."""
        done, steps = [], 1 if drawn is None else len(drawn)
        for row, seq in enumerate(batch.seqs):
            if row in out:
                continue
            if feeding[row]:
                before = seq.primed
                seq.primed += steps
                offset, end = seq.primed, seq.primed == seq.ids.size
                if end:
                    done.append(row)
            elif seq.run is not None and self.cache.enabled:
                before = len(seq.run)
                seq.run.extend([seq.next_id, *(() if drawn is None else drawn[:-1, row])])
                seq.last_logits = logits[row] if finite[row] else None
                offset, end = len(seq.run), False
            else:
                continue
            due = self.cache.due_between(before, offset)
            if seq.run is not None and finite[row] and (end or due):
                self.cache.record(seq.run, offset, logits[row], batch.state.rows([row]))
        return done

    def remember_end(self, seq: Sequence, state: State, row: int) -> None:
        """A row leaving the batch: where a text ends is where Continue starts."""
        if seq.run is not None and seq.last_logits is not None and self.cache.enabled:
            self.cache.record(seq.run, len(seq.run), seq.last_logits, state.rows([row]))
