"""The prefix cache on its own: longest prefix wins, copies are private, the budget holds, LRU order."""

from __future__ import annotations

import numpy as np

from model.cell import State
from model.prefix_cache import PrefixCache, common_prefix
from tests.test_cell import random_stack


def state_of(value: float, units: int = 4) -> State:
    return State(np.full((2, 1, units), value, np.float32), np.full((2, 1, units), -value, np.float32))


def remember(cache: PrefixCache, ids: list[int], tag: float = 0.0) -> None:
    """Record a checkpoint wherever the engine would: each multiple of `every`, and at the end."""
    run = cache.run(np.array(ids[:1]))
    for i in ids[1:]:
        if cache.due(run):
            cache.record(run, np.array([len(run) + tag]), state_of(len(run) + tag))
        run.append(i)
    cache.record(run, np.array([len(run) + tag]), state_of(len(run) + tag))


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
    assert offset == 10 and logits is not None and logits.tolist() == [10.0] and state.h[0, 0, 0] == 10
    assert cache.lookup(np.array(text))[0] == 10  # the same text: nothing to prime
    assert cache.lookup(np.array([*text[:7], 0]))[0] == 4  # a branch at char 7: from the checkpoint before it
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
    cache = PrefixCache(budget_bytes=6 * one + 3 * 8 * 4, every=4)  # room for about 3 texts of 8 chars
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
        if cache.due(run):
            cache.record(run, logits, state)
    offset, _, warm = cache.lookup(ids)
    assert offset == 24
    for i in ids[offset:]:
        warm_logits = stack.step(np.array([i]), warm)[0]
    cold = stack.zero_state(1)
    for i in ids:
        cold_logits = stack.step(np.array([i]), cold)[0]
    assert warm_logits.tobytes() == cold_logits.tobytes() and warm.h.tobytes() == cold.h.tobytes()
