"""The engine's sequence bookkeeping (model/engine/sequence.py): the inbox, the batch's rows,
ending a sequence."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from model.engine.sequence import Batch, EngineClosed, Inbox, Sequence, Ticket
from model.sampling.generate import Generation, GenerationRequest
from model.vocab import Vocab
from tests.test_cell import random_stack

VOCAB = Vocab.from_chars("abcdefghij")


class Sink:
    def __init__(self, broken: bool = False) -> None:
        self.ends: list[object] = []
        self.broken = broken

    def on_chunk(self, chunk: object) -> None: ...

    def on_done(self, generation: Generation) -> None:
        self.ends.append(generation.finish_reason)
        if self.broken:
            raise RuntimeError("sink broke")

    def on_error(self, exc: BaseException) -> None:
        self.ends.append(exc)


def sequence_of(inbox: Inbox, prompt: str = "ab", sink: Sink | None = None) -> Sequence:
    gen = Generation(GenerationRequest(prompt, 5, seed=1), VOCAB)
    return Sequence(gen, sink or Sink(), Ticket(gen.seed, inbox.wake), VOCAB.encode(prompt))


def test_take_ends_cancelled_ones_and_starts_at_most_room() -> None:
    inbox = Inbox("test")
    seqs = [sequence_of(inbox) for _ in range(4)]
    for seq in seqs:
        inbox.put(seq)
    seqs[1].ticket.cancel()
    taken = inbox.take(lambda: False, room=2)
    assert taken == ([seqs[1]], [seqs[0], seqs[2]]) and len(inbox) == 1
    assert inbox.drain() == [seqs[3]] and len(inbox) == 0


def test_a_closed_inbox_refuses_work_and_wakes_its_taker() -> None:
    inbox = Inbox("test")
    result: list[object] = []
    taker = threading.Thread(target=lambda: result.append(inbox.take(lambda: False, room=1)))
    taker.start()
    inbox.close()
    taker.join(5)
    assert result == [None]
    with pytest.raises(EngineClosed):
        inbox.put(sequence_of(inbox))


def test_rows_keep_their_states_as_sequences_join_and_leave() -> None:
    stack, inbox = random_stack(units=8, vocab=len(VOCAB)), Inbox("test")
    batch = Batch(stack)
    seqs = [sequence_of(inbox) for _ in range(3)]
    for i, seq in enumerate(seqs):
        seq.state = stack.zero_state(1)
        stack.prime_chunk(np.array([i]), seq.state)  # a different state per sequence
    hs = [seq.state.h.copy() for seq in seqs if seq.state is not None]
    batch.add(seqs)
    assert all(seq.state is None for seq in seqs)
    batch.drop([1])
    assert batch.seqs == [seqs[0], seqs[2]]
    np.testing.assert_array_equal(batch.state.h, np.concatenate([hs[0], hs[2]], axis=1))
    assert batch.clear() == [seqs[0], seqs[2]] and batch.seqs == [] and batch.state.batch == 0


def test_finish_cancels_an_unended_sequence_and_survives_a_broken_sink() -> None:
    inbox = Inbox("test")
    seq = sequence_of(inbox, sink=(sink := Sink(broken=True)))
    seq.finish()  # the sink raises: logged, not raised
    assert sink.ends == ["cancelled"]
    failing = sequence_of(inbox, sink=(other := Sink()))
    failing.fail(error := ValueError("x"))
    assert other.ends == [error] and failing.gen.finish_reason == "error"
