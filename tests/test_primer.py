"""Priming (model/engine/primer.py): from the prefix cache where it can, in slices, the same bits
either way."""

from __future__ import annotations

import threading

import numpy as np

from model.engine.prefix_cache import PrefixCache
from model.engine.primer import Primer
from model.engine.sequence import Batch, Sequence, Ticket
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
    assert primer.admit(seq) and seq.logits is not None and not seq.priming
    np.testing.assert_array_equal(seq.logits, stack.dense_b[: len(VOCAB)])


def prime_all(primer: Primer, batch: Batch, seqs: list[Sequence]) -> dict[int, np.ndarray]:
    """Admit `seqs`, add those left to prime to `batch` and run slices until all are primed; returns
    the logits after each one's prompt, by id() of the sequence."""
    batch.add([s for s in seqs if not primer.admit(s)])
    primed = {}
    while batch.priming_rows():
        rows, logits = primer.prime(batch)
        primed.update(
            {id(batch.seqs[r]): row_logits for r, row_logits in zip(rows, logits, strict=True)}
        )
    return primed


def test_a_prompt_primed_before_comes_from_the_cache_with_the_same_bits() -> None:
    stack = random_stack(units=8, vocab=len(VOCAB))
    primer, batch = Primer(stack, PrefixCache(1 << 20)), Batch(stack)
    prompt = "abcdefghij" * 5
    cold = sequence_of(prompt)
    primed = prime_all(primer, batch, [cold])
    assert list(primed) == [id(cold)] and cold.primed == len(prompt)
    warm = sequence_of(prompt)
    assert primer.admit(warm) and warm.gen.cached_chars == len(prompt) and warm.logits is not None
    assert warm.logits.tobytes() == primed[id(cold)].tobytes()
