"""Paused sequences (model/engine/parking.py): they stop stepping, hold no engine time, and go on
with the very text they would have made without the pause.

    .venv/bin/pytest tests/test_parking.py
"""

from __future__ import annotations

import time

from model.engine.loop import Engine
from model.engine.sequence import Ticket
from model.event import Chunk
from model.sampling.generate import GenerationRequest, generate
from tests.test_cell import random_stack
from tests.test_engine import MEDIUM_VOCAB, RecordingSink, mixed_requests
from tests.test_engine import engine_of as engine_of  # a fixture


class PausingSink(RecordingSink):
    """Pauses its own sequence after every `every` chunks, as a sink whose reader is behind does."""

    def __init__(self, every: int):
        super().__init__()
        self.every = every
        self.ticket: Ticket | None = None

    def on_chunk(self, chunk: Chunk) -> None:
        super().on_chunk(chunk)
        if self.ticket is not None and len(self.chunks) % self.every == 0:
            self.ticket.pause()


def wait_until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def test_paused_sequences_go_on_with_the_text_they_would_have_made(engine_of) -> None:
    stack = random_stack(units=64, vocab=40)
    requests = mixed_requests(MEDIUM_VOCAB, 12)
    engine: Engine = engine_of(stack, MEDIUM_VOCAB)
    sinks = [PausingSink(every=3 + i % 5) for i in range(len(requests))]
    for request, sink in zip(requests, sinks, strict=True):
        sink.ticket = engine.submit(request, sink)
    most_parked = 0
    while not all(s.ended.is_set() for s in sinks):  # the readers catch up now and then
        time.sleep(0.003)
        most_parked = max(most_parked, engine.paused)
        for sink in sinks:
            assert sink.ticket is not None
            sink.ticket.resume()
    assert most_parked >= 2
    for request, sink in zip(requests, sinks, strict=True):
        alone = list(generate(stack, MEDIUM_VOCAB, request))
        assert sink.text == "".join(c.text for c in alone)
        assert [e for c in sink.chunks for e in c.logprobs or []] == [
            e for c in alone for e in c.logprobs or []
        ]
        assert sink.ended_with.finish_reason in {"length", "stop"}
    assert engine.paused == 0 and engine.active == 0


def test_a_parked_sequence_is_not_stepped_and_ends_when_cancelled(engine_of) -> None:
    stack = random_stack(units=16, vocab=40)
    engine: Engine = engine_of(stack, MEDIUM_VOCAB)
    sinks = [PausingSink(every=4), PausingSink(every=10**9)]
    for sink in sinks:
        sink.ticket = engine.submit(GenerationRequest("ab", 3000, seed=7), sink)
    wait_until(lambda: engine.paused == 1)
    held = len(sinks[0].chunks)
    assert held == 4 and not sinks[0].ended.is_set()
    sinks[1].wait()  # the other one runs to its end meanwhile
    time.sleep(0.05)
    # nothing steps it
    assert len(sinks[0].chunks) == held and engine.active == 0 and engine.paused == 1
    assert sinks[0].ticket is not None
    sinks[0].ticket.cancel()
    assert sinks[0].wait().ended_with.finish_reason == "cancelled" and engine.paused == 0


def test_stopping_the_engine_ends_parked_sequences(engine_of) -> None:
    engine: Engine = engine_of(random_stack(units=16, vocab=40), MEDIUM_VOCAB)
    sink = PausingSink(every=2)
    sink.ticket = engine.submit(GenerationRequest("a", 3000, seed=1), sink)
    wait_until(lambda: engine.paused == 1)
    engine.stop()
    assert sink.wait().ended_with.finish_reason == "cancelled"
