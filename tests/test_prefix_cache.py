"""The prefix cache on its own: longest prefix wins, copies are private, the budget holds, LRU
order."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from model.cells.stack import LSTMStack, State
from model.engine.loop import Engine
from model.engine.prefix_cache import DEFAULT_BUDGET_BYTES, PrefixCache, common_prefix
from model.sampling.generate import GenerationRequest, generate
from model.sampling.params import SamplingParams
from model.vocab import Vocab
from tests.test_cell import random_stack
from tests.test_engine import MEDIUM_VOCAB, RecordingSink


def state_of(value: float, units: int = 4) -> State:
    return State(
        np.full((2, 1, units), value, np.float32), np.full((2, 1, units), -value, np.float32)
    )


def remember(cache: PrefixCache, ids: list[int], tag: float = 0.0) -> None:
    """Record a checkpoint wherever the engine would: each multiple of `every`, and at the end."""
    run = cache.run(np.array(ids[:1]))
    for i in ids[1:]:
        if cache.due(len(run)):
            cache.record(run, len(run), np.array([len(run) + tag]), state_of(len(run) + tag))
        run.append(i)
    cache.record(run, len(run), np.array([len(run) + tag]), state_of(len(run) + tag))


def test_common_prefix() -> None:
    assert common_prefix(np.array([1, 2, 3]), np.array([1, 2, 4, 5])) == 2
    assert common_prefix(np.array([1, 2]), np.array([1, 2, 3])) == 2
    assert common_prefix(np.array([], np.int32), np.array([1])) == 0


def test_the_longest_remembered_prefix_is_found() -> None:
    cache = PrefixCache(every=4)
    text = list(range(10))
    remember(cache, text)  # checkpoints at 4, 8 and 10
    assert cache.stats()["checkpoints"] == 3
    offset, logits, state = cache.lookup(np.array([*text, 3, 3]))  # continue: all of it
    assert (
        offset == 10 and logits is not None and logits.tolist() == [10.0] and state.h[0, 0, 0] == 10
    )
    assert cache.lookup(np.array(text))[0] == 10  # the same text: nothing to prime
    # a branch at char 7: from the checkpoint before it
    assert cache.lookup(np.array([*text[:7], 0]))[0] == 4
    assert cache.lookup(np.array([5, 5, 5, 5, 5]))[0] == 0  # nothing shared
    assert cache.lookup(np.array(text[:3]))[0] == 0  # shorter than every checkpoint


def test_returned_states_are_copies() -> None:
    cache = PrefixCache(every=4)
    remember(cache, list(range(8)))
    _, logits, state = cache.lookup(np.arange(8))
    assert logits is not None
    state.h += 100
    logits += 100
    _, logits2, state2 = cache.lookup(np.arange(8))
    assert logits2 is not None and state2.h[0, 0, 0] == 8 and logits2[0] == 8


def test_the_budget_holds_and_the_least_recently_used_text_goes_first() -> None:
    one = state_of(0).h.nbytes * 2 + 4  # one checkpoint's bytes (h, c, one logit)
    # room for about 3 texts of 8 chars
    cache = PrefixCache(budget_bytes=6 * one + 3 * 8 * 4, every=4)
    texts = [[t] * 8 for t in range(1, 6)]
    for t in texts[:3]:
        remember(cache, t)
    assert cache.lookup(np.array(texts[0]))[0] == 8  # touch the first: now the second is the oldest
    remember(cache, texts[3])
    assert cache.nbytes <= cache.budget_bytes
    assert cache.lookup(np.array(texts[1]))[0] == 0
    assert cache.lookup(np.array(texts[0]))[0] == 8 and cache.lookup(np.array(texts[3]))[0] == 8


def test_one_text_over_the_budget_keeps_its_latest_checkpoints() -> None:
    cache = PrefixCache(budget_bytes=3000, every=4)
    remember(cache, list(range(200)))
    assert 0 < cache.nbytes <= 3000
    assert cache.lookup(np.arange(200))[0] == 200  # the end survives; early ones went
    assert cache.lookup(np.arange(6))[0] == 0


def test_a_prompt_known_ahead_records_inside_it() -> None:
    cache = PrefixCache(every=4)
    run = cache.run(np.arange(10))  # the engine knows the whole prompt before priming it
    cache.record(run, 4, np.array([4.0]), state_of(4))
    cache.record(run, 11, np.array([11.0]), state_of(11))  # beyond the text: ignored
    assert cache.lookup(np.arange(12))[0] == 4 and cache.stats()["checkpoints"] == 1


def test_a_zero_budget_remembers_nothing() -> None:
    cache = PrefixCache(budget_bytes=0, every=4)
    remember(cache, list(range(20)))
    assert not cache.enabled and cache.stats()["texts"] == 0 and cache.lookup(np.arange(20))[0] == 0


def test_stepping_on_from_a_checkpoint_gives_the_bits_of_stepping_from_the_start() -> None:
    """Why the engine primes with its step: a remembered state is then as good as a cold one."""
    stack = random_stack(units=32, vocab=12)
    ids = np.random.default_rng(0).integers(0, 12, 50)
    cache = PrefixCache(every=8)
    run, state = cache.run(ids[:0]), stack.zero_state(1)
    for i in ids[:30]:
        logits = stack.step(np.array([i]), state)[0]
        run.append(int(i))
        if cache.due(len(run)):
            cache.record(run, len(run), logits, state)
    offset, _, warm = cache.lookup(ids)
    assert offset == 24
    for i in ids[offset:]:
        warm_logits = stack.step(np.array([i]), warm)[0]
    cold = stack.zero_state(1)
    for i in ids:
        cold_logits = stack.step(np.array([i]), cold)[0]
    assert warm_logits.tobytes() == cold_logits.tobytes() and warm.h.tobytes() == cold.h.tobytes()


# --- in the engine ----------------------------------------------------------------------------


@pytest.fixture
def engine_of() -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(
        stack: LSTMStack, vocab: Vocab, prefix_cache_bytes: int = DEFAULT_BUDGET_BYTES
    ) -> Engine:
        engines.append(Engine(stack, vocab, name="test", prefix_cache_bytes=prefix_cache_bytes))
        engines[-1].start()
        return engines[-1]

    yield make
    for engine in engines:
        engine.stop()


def run_on(engine: Engine, request: GenerationRequest) -> RecordingSink:
    sink = RecordingSink()
    engine.submit(request, sink)
    return sink.wait()


def test_continue_and_branch_give_the_same_text_with_or_without_the_cache(engine_of) -> None:
    stack = random_stack(units=64, vocab=40)
    cached, cold = (
        engine_of(stack, MEDIUM_VOCAB),
        engine_of(stack, MEDIUM_VOCAB, prefix_cache_bytes=0),
    )
    sampling = SamplingParams(1.0, repetition_penalty=1.3)
    first = run_on(cached, GenerationRequest("abc def ", 300, sampling, seed=1)).text
    follow_ups = [
        GenerationRequest("abc def " + first, 50, sampling, seed=2),  # Continue
        GenerationRequest(
            "abc def " + first[:131] + "x", 50, sampling, seed=3
        ),  # a branch at char 131
        GenerationRequest(
            "abc def " + first[:200], 50, SamplingParams(0.0), seed=4
        ),  # undo to char 200
    ]
    for request in follow_ups:
        warm = run_on(cached, request)
        assert 0 < warm.ended_with.cached_chars <= len(request.prompt)
        assert (
            warm.text
            == run_on(cold, request).text
            == "".join(c.text for c in generate(stack, MEDIUM_VOCAB, request))
        )
    assert cached.prefix_cache.hits >= 3 and cold.prefix_cache.stats()["checkpoints"] == 0


def test_continue_primes_at_most_one_char(engine_of) -> None:
    stack = random_stack(units=32, vocab=40)
    engine = engine_of(stack, MEDIUM_VOCAB)
    first = run_on(engine, GenerationRequest("abc", 123, SamplingParams(0.9), seed=5))
    assert first.ended_with.finish_reason == "length"
    again = run_on(engine, GenerationRequest("abc" + first.text, 10, seed=6))
    assert again.ended_with.cached_chars == 3 + 123 - 1  # the last char was sampled, never fed
    stopped = run_on(
        engine, GenerationRequest("abc", 200, SamplingParams(0.9), stop=("e",), seed=7)
    )
    assert (
        run_on(engine, GenerationRequest("abc" + stopped.text, 5, seed=8)).ended_with.cached_chars
        >= 3
    )


def test_an_empty_prompt_samples_only_chars_of_the_vocab(engine_of: Callable[..., Engine]) -> None:
    stack = random_stack(units=16, vocab=40)  # the kernel pads the output layer past 40
    engine = engine_of(stack, MEDIUM_VOCAB)
    for seed in range(20):
        sink = run_on(engine, GenerationRequest("", 1, SamplingParams(1.0), logprobs=5, seed=seed))
        assert sink.ended_with.finish_reason == "length" and len(sink.text) == 1
        assert all(len(e["top"]) == 5 for c in sink.chunks for e in c.logprobs or [])
