"""Bursts (model/engine/burst.py): several steps and draws in one compiled call give every row the
chars, the state and the logits of stepping and drawing one char at a time, for every cell and any
mix of sampling settings; a row gone non-finite fails alone; the engine uses bursts only where no
row needs Python between its chars, and its texts stay those of each request alone."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from model.engine import burst as burst_module
from model.engine.burst import burst
from model.engine.loop import Engine
from model.sampling import GenerationRequest, SamplingParams
from model.sampling.generate import generate
from model.sampling.sampler import sample_rows, settings
from model.vocab import Vocab
from tests.test_engine import RecordingSink
from tests.test_kernel import random_stack, random_state

SAMPLINGS = [
    SamplingParams(1.0),
    SamplingParams(0.0),
    SamplingParams(0.7, top_k=5),
    SamplingParams(1.2, top_p=0.9),
    SamplingParams(0.9, min_p=0.05),
]
VOCAB = Vocab.from_chars("abcdefghijklmnopqrstuvw")  # 23 chars: random_stack's vocab


class Uniforms:
    """Stands in for a row's Generator: the burst's uniforms for that row, the t-th at step t."""

    def __init__(self, values: np.ndarray):
        self.values = iter(values)

    def random(self) -> float:
        return float(next(self.values))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("cell", "units"), [("lstm", 17), ("gru", 40), ("rnn", 300)])
def test_a_burst_is_bit_for_bit_steps_and_draws_one_char_at_a_time(
    cell: str, units: int, threads: int
) -> None:
    stack = random_stack(cell, units, threads=threads)
    rows, chars = 7, 12
    params = [SAMPLINGS[r % len(SAMPLINGS)] for r in range(rows)]
    ids = np.arange(rows, dtype=np.int64) * 3 % stack.vocab_size
    one = random_state(stack, rows)
    many = one.copy()
    u = np.random.default_rng(5).random((chars, rows))

    drawn, logits = burst(stack, ids, many, u, settings(params))

    feed, generators = ids.copy(), [Uniforms(u[:, r]) for r in range(rows)]
    for t in range(chars):
        step_logits = stack.step(feed, one)
        feed = sample_rows(step_logits, params, generators)
        assert np.array_equal(drawn[t], feed), f"step {t}"
    assert np.array_equal(logits, step_logits)
    assert np.array_equal(many.h, one.h) and np.array_equal(many.c, one.c)


def test_a_row_gone_non_finite_ends_the_burst_there_and_only_that_row_is_marked() -> None:
    stack = random_stack("lstm", 17)
    state = stack.zero_state(3)
    state.h[0, 1] = np.nan  # row 1's state poisons its logits at the first step
    u = np.full((6, 3), 0.5)
    drawn, logits = burst(stack, np.zeros(3, np.int64), state, u, settings([SAMPLINGS[0]] * 3))
    assert drawn.shape == (1, 3)
    assert drawn[0, 1] == -1 and (drawn[0, [0, 2]] >= 0).all()
    assert np.isfinite(logits[[0, 2]]).all() and not np.isfinite(logits[1]).all()


def mixed(n: int) -> list[GenerationRequest]:
    """Bursting requests, and some that cannot burst (a stop string, logprobs, a penalty)."""
    out = []
    for i in range(n):
        extra: dict = {}
        if i % 4 == 1:
            extra = {"stop": ("ab",)}
        elif i % 4 == 2:
            extra = {"logprobs": 2}
        sampling = SAMPLINGS[i % len(SAMPLINGS)]
        if i % 8 == 7:
            sampling = SamplingParams(0.8, repetition_penalty=1.3)
        out.append(GenerationRequest("abc"[: i % 4], 37 + 11 * i, sampling, seed=i, **extra))
    return out


@pytest.mark.parametrize("with_others", [False, True])
def test_the_engines_texts_are_each_request_alone_with_or_without_bursts(
    with_others: bool,
) -> None:
    stack = random_stack("lstm", 64, vocab=23)
    requests = mixed(12) if with_others else [r for r in mixed(36) if r.seed % 8 in (0, 3, 4)][:12]
    engine = Engine(stack, VOCAB, name="burst")
    engine.start()
    try:
        sinks = [RecordingSink() for _ in requests]
        for request, sink in zip(requests, sinks, strict=True):
            engine.submit(request, sink)
        for request, sink in zip(requests, sinks, strict=True):
            sink.wait()
            assert sink.text == "".join(c.text for c in generate(stack, VOCAB, request))
            assert sink.generation is not None and sink.generation.emitted == len(sink.text)
    finally:
        engine.stop()


def test_bursts_happen_only_when_every_row_may_burst(monkeypatch: pytest.MonkeyPatch) -> None:
    stack = random_stack("lstm", 64, vocab=23)
    lengths: list[int] = []
    real = burst_module.burst

    def counting(*args: Any) -> Any:
        lengths.append(len(args[3]))
        return real(*args)

    monkeypatch.setattr("model.engine.loop.burst", counting)
    for stop, expect_bursts in (((), True), (("zz",), False)):
        lengths.clear()
        engine = Engine(stack, VOCAB, name="burst")
        engine.start()
        try:
            sink = RecordingSink()
            engine.submit(GenerationRequest("ab", 300, stop=stop, seed=1), sink)
            sink.wait()
        finally:
            engine.stop()
        assert bool(lengths) == expect_bursts
        assert all(2 <= n <= burst_module.MAX_BURST for n in lengths)
        assert len(sink.text) == 300 or stop


def test_a_failing_burst_fails_its_batch_and_the_engine_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = random_stack("lstm", 64, vocab=23)
    calls = [0]
    real = burst_module.burst

    def failing(*args: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise MemoryError("burst failed")
        return real(*args)

    monkeypatch.setattr("model.engine.loop.burst", failing)
    engine = Engine(stack, VOCAB, name="burst")
    engine.start()
    try:
        first = RecordingSink()
        engine.submit(GenerationRequest("ab", 300, seed=1), first)
        assert isinstance(first.wait().error, MemoryError)
        second = RecordingSink()
        engine.submit(GenerationRequest("ab", 300, seed=1), second)
        assert second.wait().error is None and len(second.text) == 300
    finally:
        engine.stop()


def test_rows_fed_forced_chars_have_the_bits_of_stepping_them_and_draw_nothing() -> None:
    stack = random_stack("gru", 24)
    rows, chars = 4, 9
    one = random_state(stack, rows)
    many = one.copy()
    forced = np.full((chars, rows), -1, np.int64)
    forced[:, 1] = np.arange(chars) % stack.vocab_size  # row 1 is fed a prompt
    forced[:5, 3] = 7  # row 3 is fed five prompt chars, then what it draws
    u = np.random.default_rng(2).random((chars, rows))
    ids = np.array([1, 2, 3, 4])
    drawn, logits = burst(stack, ids, many, u, settings([SAMPLINGS[0]] * rows), forced)
    feed = ids.copy()
    for t in range(chars):
        step_logits = stack.step(feed, one)
        generators = [Uniforms(u[t : t + 1, r]) for r in range(rows)]
        picked = sample_rows(step_logits, [SAMPLINGS[0]] * rows, generators)
        assert np.array_equal(drawn[t, [0, 2]], picked[[0, 2]])
        feed = np.where(forced[t] >= 0, forced[t], picked)
    assert np.array_equal(many.h, one.h) and np.array_equal(logits, step_logits)


def test_long_prompts_arriving_while_others_stream_ride_along_and_every_text_is_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack = random_stack("lstm", 48, vocab=23)
    chars = "abcdefghijklmnopqrstuvw"
    riding: list[int] = []  # per burst: rows fed prompt chars
    real = burst_module.burst

    def watching(*args: Any) -> Any:
        riding.append(int((args[5] >= 0).any(axis=0).sum()))
        return real(*args)

    monkeypatch.setattr("model.engine.loop.burst", watching)
    engine = Engine(stack, VOCAB, name="burst")
    engine.start()
    try:
        streams = [GenerationRequest("ab", 600, seed=i) for i in range(4)]
        prompts = [
            GenerationRequest("".join(chars[(i * j) % 23] for j in range(150 + 40 * i)), 30, seed=9)
            for i in range(1, 5)
        ]
        sinks = {r: RecordingSink() for r in [*streams, *prompts]}
        for r in streams:
            engine.submit(r, sinks[r])
        while not all(sinks[r].chunks for r in streams):
            time.sleep(0.001)
        for r in prompts:
            engine.submit(r, sinks[r])
        for request, sink in sinks.items():
            sink.wait()
            assert sink.text == "".join(c.text for c in generate(stack, VOCAB, request))
    finally:
        engine.stop()
    assert max(riding) > 0  # prompts were fed inside bursts
