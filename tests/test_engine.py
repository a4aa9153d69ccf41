"""The batched engine: reproducible beside others, cancellation, stop, failures kept to their
sinks."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from model.cells.stack import LSTMStack
from model.engine import loop as engine_module
from model.engine import primer as primer_module
from model.engine.loop import Engine, EngineClosed
from model.event import Chunk
from model.sampling.generate import Generation, GenerationRequest, generate
from model.sampling.params import SamplingParams
from model.vocab import Vocab, VocabError
from tests.test_cell import random_stack

MEDIUM_VOCAB = Vocab.from_chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL \n")  # 40 chars


class RecordingSink:
    def __init__(self, fail_on_chunk: int | None = None):
        self.chunks: list[Chunk] = []
        self.generation: Generation | None = None
        self.error: BaseException | None = None
        self.ended = threading.Event()
        self.fail_on_chunk = fail_on_chunk

    def on_chunk(self, chunk: Chunk) -> None:
        assert chunk.text, "chunks are never empty"
        self.chunks.append(chunk)
        if self.fail_on_chunk is not None and len(self.chunks) >= self.fail_on_chunk:
            raise RuntimeError("sink broke")

    def on_done(self, generation: Generation) -> None:
        assert not self.ended.is_set(), "one ending per sequence"
        self.generation = generation
        self.ended.set()

    def on_error(self, exc: BaseException) -> None:
        assert not self.ended.is_set(), "one ending per sequence"
        self.error = exc
        self.ended.set()

    @property
    def text(self) -> str:
        return "".join(c.text for c in self.chunks)

    @property
    def ended_with(self) -> Generation:
        """The generation it ended with (on_done); fails the test when it ended with an error."""
        assert self.generation is not None, f"ended with {self.error!r}"
        return self.generation

    def wait(self, timeout: float = 30) -> RecordingSink:
        assert self.ended.wait(timeout), "the sequence never ended"
        return self


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[LSTMStack, Vocab]:
    from model.artifact import load_artifact

    art = load_artifact(tiny_model_dir)
    return LSTMStack.from_keras(art.model), art.vocab


@pytest.fixture
def engine_of() -> Iterator:
    engines: list[Engine] = []

    def make(stack: LSTMStack, vocab: Vocab, **kwargs) -> Engine:
        engine = Engine(stack, vocab, name="test", **kwargs)
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()


def mixed_requests(vocab: Vocab, n: int = 32) -> list[GenerationRequest]:
    rng = np.random.default_rng(1)
    chars = "".join(c for c in vocab.chars if c.isalpha())
    samplings = [
        SamplingParams(1.0),
        SamplingParams(0.0),
        SamplingParams(0.7, top_k=5),
        SamplingParams(1.2, top_p=0.9),
    ]
    out = []
    for i in range(n):
        prompt = "".join(rng.choice(list(chars), size=int(rng.integers(0, 60))))
        stop = (
            (chars[i % len(chars)] * 2, chars[(i * 7) % len(chars)], chars[(i * 3) % len(chars)])
            if i % 3 == 0
            else ()
        )
        out.append(
            GenerationRequest(
                prompt, int(rng.integers(20, 90)), samplings[i % 4], stop, i % 6, seed=1000 + i
            )
        )
    return out


@pytest.mark.parametrize("model", ["tiny", "medium", "medium-1-thread"])
def test_32_concurrent_requests_give_the_same_text_as_alone(model: str, tiny, engine_of) -> None:
    # At 256 units a BLAS product per batch changes last bits enough to change some of these texts
    # (see the next test): the compiled kernels (model/cells/kernel.py) must keep every bit of every
    # row.
    threads = 1 if model == "medium-1-thread" else 2
    stack, vocab = (
        tiny
        if model == "tiny"
        else (random_stack(units=256, vocab=40, threads=threads), MEDIUM_VOCAB)
    )
    requests = mixed_requests(vocab)
    engine = engine_of(stack, vocab)
    sinks = [RecordingSink() for _ in requests]
    for request, sink in zip(requests, sinks, strict=True):
        engine.submit(request, sink)
    for request, sink in zip(requests, sinks, strict=True):
        sink.wait()
        alone = list(generate(stack, vocab, request))
        assert sink.text == "".join(c.text for c in alone)
        assert [e for c in sink.chunks for e in c.logprobs or []] == [
            e for c in alone for e in c.logprobs or []
        ]
        assert sink.generation is not None and sink.generation.finish_reason in {"length", "stop"}
        assert sink.generation.emitted == len(sink.text)
    assert {s.generation.finish_reason for s in sinks if s.generation} == {"length", "stop"}


class SharedProductStack(LSTMStack):
    """The step as one BLAS product per layer for the whole batch: what the kernels are there to
    avoid."""

    bursts = False  # every char through `step`

    def __init__(self, base: LSTMStack):
        self.__dict__.update(base.__dict__)

    def step(self, ids: np.ndarray, state):
        x = self.embedding[ids]
        for n, lw in enumerate(self.layers):
            z_i, z_f, z_g, z_o = np.split(
                x @ lw.kernel + state.h[n] @ lw.recurrent + lw.bias, 4, axis=1
            )
            i, f, o = (1 / (1 + np.exp(-z)) for z in (z_i, z_f, z_o))
            state.c[n] = f * state.c[n] + i * np.tanh(z_g)
            state.h[n] = x = o * np.tanh(state.c[n])
        return x @ self.dense[0] + self.dense[1]


def test_a_shared_batch_product_would_change_texts_at_this_size(engine_of) -> None:
    """Guard: the test above can see a break, since one gemm per batch changes some of these
    texts."""
    stack = SharedProductStack(random_stack(units=256, vocab=40, threads=1))
    requests = mixed_requests(MEDIUM_VOCAB)
    engine = engine_of(stack, MEDIUM_VOCAB)
    sinks = [RecordingSink() for _ in requests]
    for request, sink in zip(requests, sinks, strict=True):
        engine.submit(request, sink)
    changed = sum(
        sink.wait().text != "".join(c.text for c in generate(stack, MEDIUM_VOCAB, request))
        for request, sink in zip(requests, sinks, strict=True)
    )
    assert changed >= 1


def test_a_repeated_prompt_skips_priming_and_gives_the_same_text(engine_of) -> None:
    stack = random_stack(units=64, vocab=40)
    engine = engine_of(stack, MEDIUM_VOCAB)
    request = GenerationRequest("abcdefgh " * 20, 40, SamplingParams(1.0), seed=5)
    first = RecordingSink()
    engine.submit(request, first)
    first.wait()
    assert engine.prefix_cache.lookup(MEDIUM_VOCAB.encode(request.prompt))[0] == len(request.prompt)
    again = [RecordingSink() for _ in range(3)]
    for sink in again:
        engine.submit(request, sink)
    expected = "".join(c.text for c in generate(stack, MEDIUM_VOCAB, request))
    assert first.text == expected and all(sink.wait().text == expected for sink in again)


def test_seed_is_known_at_submit_and_drawn_when_missing(tiny, engine_of) -> None:
    stack, vocab = tiny
    engine = engine_of(stack, vocab)
    given, drawn = RecordingSink(), RecordingSink()
    t1 = engine.submit(GenerationRequest("A", 10, seed=42), given)
    t2 = engine.submit(GenerationRequest("", 10), drawn)  # empty prompt: the start state
    assert t1.seed == 42 and 0 <= t2.seed < 2**63
    assert given.wait().ended_with.seed == 42 and drawn.wait().ended_with.seed == t2.seed
    assert len(drawn.text) == 10


def test_unknown_prompt_chars_are_refused_before_queueing(tiny, engine_of) -> None:
    stack, vocab = tiny
    engine = engine_of(stack, vocab)
    with pytest.raises(VocabError, match="@"):
        engine.submit(GenerationRequest("ROMEO@"), RecordingSink())
    assert engine.queued == 0 and engine.active == 0


def test_cancel_takes_effect_within_one_step_and_frees_the_slot(engine_of) -> None:
    stack = random_stack(units=96, vocab=40)
    engine = engine_of(stack, MEDIUM_VOCAB)
    sink, other = RecordingSink(), RecordingSink()
    ticket = engine.submit(GenerationRequest("abc", 10**6, seed=1), sink)
    engine.submit(GenerationRequest("abc", 300, seed=2), other)
    while len(sink.chunks) < 5:
        time.sleep(0.001)
    ticket.cancel()
    seen = len(sink.chunks)
    assert sink.wait().ended_with.finish_reason == "cancelled"
    assert len(sink.chunks) <= seen + 1  # at most the chunk being sent when cancel() ran
    assert other.wait().ended_with.finish_reason == "length" and len(other.text) == 300
    while engine.active:  # pytest's timeout stops a hang; no clock decides the outcome
        time.sleep(0.001)
    assert engine.active == 0 and engine.queued == 0
    ticket.cancel()  # cancelling a finished sequence is a no-op


def test_cancelling_a_queued_sequence_ends_it_at_once(engine_of) -> None:
    engine = engine_of(random_stack(units=64, vocab=40), MEDIUM_VOCAB, max_active=1)
    running, queued = RecordingSink(), RecordingSink()
    engine.submit(GenerationRequest("ab", 10**6, seed=1), running)
    while not running.chunks:
        time.sleep(0.001)
    ticket = engine.submit(GenerationRequest("ab", 10, seed=2), queued)
    assert engine.queued == 1
    ticket.cancel()
    assert queued.wait().ended_with.finish_reason == "cancelled"
    assert queued.chunks == [] and engine.queued == 0 and not running.ended.is_set()


def test_stop_ends_running_and_queued_sequences(engine_of) -> None:
    engine = engine_of(random_stack(units=64, vocab=40), MEDIUM_VOCAB, max_active=2)
    sinks = [RecordingSink() for _ in range(5)]
    for i, sink in enumerate(sinks):
        engine.submit(GenerationRequest("ab" * 30, 10**6, seed=i), sink)
    assert engine.queued >= 1  # only two may run at once
    while not sinks[0].chunks:
        time.sleep(0.001)
    engine.stop()
    for sink in sinks:
        assert sink.wait().ended_with.finish_reason == "cancelled"
    assert engine._thread is not None and not engine._thread.is_alive()
    with pytest.raises(EngineClosed):
        engine.submit(GenerationRequest("a"), RecordingSink())


def test_a_failing_sink_gets_on_error_and_the_others_carry_on(tiny, engine_of) -> None:
    stack, vocab = tiny
    engine = engine_of(stack, vocab)
    bad, good = RecordingSink(fail_on_chunk=3), RecordingSink()
    engine.submit(GenerationRequest("A", 100, seed=1), bad)
    engine.submit(GenerationRequest("A", 100, seed=2), good)
    assert isinstance(bad.wait().error, RuntimeError) and bad.generation is None
    assert good.wait().error is None and len(good.text) == 100


class FailingStack(LSTMStack):
    """Fails the whole step once, then puts NaN in row 0 once."""

    bursts = False  # every char through `step`

    def __init__(self, base: LSTMStack):
        self.__dict__.update(base.__dict__)
        self.calls = 0

    def step(self, ids: np.ndarray, state):
        self.calls += 1
        if self.calls == 5:
            raise MemoryError("step failed")
        logits = super().step(ids, state)
        if self.calls == 12:
            logits[0] = np.nan
        return logits


def test_step_failures_reach_only_the_affected_sinks_and_the_engine_keeps_running(
    tiny, engine_of
) -> None:
    stack, vocab = tiny
    engine = engine_of(FailingStack(stack), vocab)
    first = [RecordingSink() for _ in range(3)]
    for i, sink in enumerate(first):
        engine.submit(GenerationRequest("A", 50, seed=i), sink)
    assert all(isinstance(s.wait().error, MemoryError) for s in first)  # the batch's product failed
    second = [RecordingSink() for _ in range(3)]
    for i, sink in enumerate(second):
        engine.submit(GenerationRequest("A", 50, seed=i), sink)
    for sink in second:
        sink.wait()
    errors = [s for s in second if s.error is not None]
    assert len(errors) == 1 and isinstance(errors[0].error, FloatingPointError)  # only the NaN row
    assert all(len(s.text) == 50 for s in second if s.error is None)


class StepClock:
    """Stands in for `time` in model/engine/loop.py and model/engine/primer.py: perf_counter() moves
    1 ms a call, so the time priming slices earn from the steps (a share of each step, counted as at
    least 2 ms)
    buys the same number of slices on a busy machine as on an idle one."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.001
        return self.now


def test_a_long_prompt_primes_without_stalling_running_streams(engine_of, monkeypatch) -> None:
    clock = StepClock()
    monkeypatch.setattr(engine_module, "time", clock)
    monkeypatch.setattr(primer_module, "time", clock)
    stack = random_stack(units=96, vocab=40)
    engine = engine_of(stack, MEDIUM_VOCAB)
    running, long = RecordingSink(), RecordingSink()
    engine.submit(GenerationRequest("ab", 10**6, SamplingParams(1.0), seed=3), running)
    while not running.chunks:
        time.sleep(0.001)
    before = len(running.chunks)
    engine.submit(GenerationRequest("abcdefgh " * 800, 5, seed=4), long)  # 450 slices to prime
    while not long.chunks and not long.ended.is_set():
        time.sleep(0.001)
    during = len(running.chunks) - before
    assert during >= 20, (
        f"only {during} chars for the running stream while the long prompt was primed"
    )
    assert len(long.wait().text) == 5


def test_idle_engine_does_not_spin(tiny, engine_of) -> None:
    psutil = pytest.importorskip("psutil")
    stack, vocab = tiny
    engine = engine_of(stack, vocab)
    engine.submit(GenerationRequest("A", 20, seed=1), sink := RecordingSink())
    sink.wait()
    time.sleep(0.05)
    thread_id = engine._thread.native_id if engine._thread else None

    def cpu() -> float:
        return next(
            t.user_time + t.system_time for t in psutil.Process().threads() if t.id == thread_id
        )

    before = cpu()
    time.sleep(0.5)
    assert cpu() - before < 0.05
    assert engine.active == 0 and engine.queued == 0
