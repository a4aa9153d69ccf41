"""Priming (model/engine/primer.py): from the prefix cache where it can, in slices, the same bits either way."""

from __future__ import annotations

import threading

import numpy as np

from model.engine.prefix_cache import PrefixCache
from model.engine.primer import Primer
from model.engine.sequence import Sequence, Ticket
from model.sampling.generate import Generation, GenerationRequest
from model.vocab import Vocab
from tests.test_cell import random_stack

VOCAB = Vocab.from_chars("abcdefghij")


class Sink:
    def __init__(self) -> None:
        self.error: BaseException | None = None

    def on_chunk(self, chunk: object) -> None: ...
    def on_done(self, generation: Generation) -> None: ...

    def on_error(self, exc: BaseException) -> None:
        self.error = exc


def sequence_of(prompt: str) -> Sequence:
    gen = Generation(GenerationRequest(prompt, 5, seed=1), VOCAB)
    return Sequence(gen, Sink(), Ticket(gen.seed, threading.Condition()), VOCAB.encode(prompt))


def test_an_empty_prompt_needs_no_priming() -> None:
    primer = Primer(stack := random_stack(units=8, vocab=len(VOCAB)), PrefixCache(1 << 20))
    seq = sequence_of("")
    assert primer.admit(seq) and seq.logits is not None and not primer.waiting
    np.testing.assert_array_equal(seq.logits, stack.dense_b[: len(VOCAB)])


def test_a_prompt_primed_before_comes_from_the_cache_with_the_same_bits() -> None:
    primer = Primer(random_stack(units=8, vocab=len(VOCAB)), PrefixCache(1 << 20))
    prompt = "abcdefghij" * 5
    cold = sequence_of(prompt)
    assert not primer.admit(cold) and primer.waiting == [cold]
    joined = []
    while primer.waiting:
        joined += primer.prime(60.0)
    assert joined == [cold] and cold.primed == len(prompt)
    warm = sequence_of(prompt)
    assert primer.admit(warm) and warm.gen.cached_chars == len(prompt)
    assert cold.logits is not None and warm.logits is not None
    assert warm.logits.tobytes() == cold.logits.tobytes()


def test_cancelled_and_cleared_sequences_leave_the_primer() -> None:
    primer = Primer(random_stack(units=8, vocab=len(VOCAB)), PrefixCache(0))
    a, b = sequence_of("abc"), sequence_of("abd")
    primer.admit(a)
    primer.admit(b)
    a.ticket.cancel()
    assert primer.drop_cancelled() == [a] and primer.clear() == [b] and primer.waiting == []
