"""Priming: run a new sequence's prompt through the network, from the prefix cache where it can.

    if primer.admit(seq): ...         # primed already (empty prompt, or a prompt primed before)
    joining = primer.prime(budget_s)  # else a slice per engine loop, shortest remaining prompt first
    primer.remember(active, logits, finite, state)   # after each batched step: checkpoints

A prompt is primed on its own, in slices of PRIME_CHUNK chars (LSTMStack.prime_chunk, which has
the step's bits), so the engine gives priming about as much time per loop as the step took and
a long prompt slows the running streams by at most half.  The prefix cache (model/engine/prefix_cache.py)
keeps each sequence's state every 32 chars and where it ends: a prompt that extends a text primed
or generated before (Continue, a branch, `n` completions, a repeat) primes only the rest, with the
same bits.  Runs on the engine thread only (model/engine/loop.py).
"""

from __future__ import annotations

import time

import numpy as np

from model.cells.stack import PRIME_CHUNK, LSTMStack, State
from model.engine.prefix_cache import PrefixCache
from model.engine.sequence import Sequence
from model.sampling.generate import start_logits


class Primer:
    """The sequences being primed, and the prefix cache that priming and stepping read and fill."""

    def __init__(self, stack: LSTMStack, cache: PrefixCache):
        self.stack, self.cache = stack, cache
        self.waiting: list[Sequence] = []

    def admit(self, seq: Sequence) -> bool:
        """Start from the longest cached prefix of the prompt; True when nothing is left to prime."""
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
        self.waiting.append(seq)
        return False

    def drop_cancelled(self) -> list[Sequence]:
        """Take the cancelled sequences out; the caller ends them."""
        gone = [s for s in self.waiting if s.ticket.cancelled]
        self.waiting = [s for s in self.waiting if not s.ticket.cancelled]
        return gone

    def clear(self) -> list[Sequence]:
        """Stop priming everything; returns who was waiting."""
        waiting, self.waiting = self.waiting, []
        return waiting

    def prime(self, budget: float) -> list[Sequence]:
        """Prime slices of the shortest remaining prompts until `budget` seconds are spent; returns
        the sequences now primed.  One that fails gets `fail()` and is dropped."""
        deadline = time.perf_counter() + budget
        joining = []
        while self.waiting and time.perf_counter() < deadline:
            seq = min(self.waiting, key=lambda s: s.ids.size - s.primed)
            assert seq.state is not None
            end = min((seq.primed // PRIME_CHUNK + 1) * PRIME_CHUNK, seq.ids.size)  # on the cache's grid
            try:
                seq.logits = self.stack.prime_chunk(seq.ids[seq.primed : end], seq.state)  # the step's bits
            except Exception as exc:
                self.waiting.remove(seq)
                seq.fail(exc)
                continue
            seq.primed = end
            if seq.run is not None and (self.cache.due(end) or end == seq.ids.size):
                self.cache.record(seq.run, end, seq.logits, seq.state)
            if seq.primed == seq.ids.size:
                self.waiting.remove(seq)
                joining.append(seq)
        return joining

    def remember(self, active: list[Sequence], logits: np.ndarray, finite: np.ndarray, state: State) -> None:
        """After a step: each row's run gains the char just fed; a checkpoint where one is due."""
        if not self.cache.enabled:
            return
        for row, seq in enumerate(active):
            if seq.run is None:
                continue
            seq.run.append(seq.next_id)
            seq.last_logits = logits[row] if finite[row] else None
            if seq.last_logits is not None and self.cache.due(len(seq.run)):
                self.cache.record(seq.run, len(seq.run), seq.last_logits, state.rows([row]))

    def remember_end(self, seq: Sequence, state: State, row: int) -> None:
        """A row leaving the batch: where a text ends is where Continue starts."""
        if seq.run is not None and seq.last_logits is not None and self.cache.enabled:
            self.cache.record(seq.run, len(seq.run), seq.last_logits, state.rows([row]))
