"""Sampling rules on hand-made logits: no model needed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from model.sampling.params import SamplingParams
from model.sampling.penalty import History
from model.sampling.sampler import log_softmax, probabilities, sample, sample_rows, top_alternatives

LOGITS = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15]))  # a known distribution over 5 chars


def draws(
    params: SamplingParams, n: int = 1500, seed: int = 0, logits: np.ndarray = LOGITS
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([sample(logits, params, rng) for _ in range(n)])


def test_temperature_zero_is_greedy_and_still_draws_once() -> None:
    rng = np.random.default_rng(5)
    assert {sample(LOGITS, SamplingParams(0.0), rng) for _ in range(50)} == {1}
    fresh = np.random.default_rng(5)
    fresh.random()  # greedy consumed exactly one draw per char
    for _ in range(49):
        fresh.random()
    assert rng.random() == fresh.random()


@pytest.mark.parametrize("t", [1e-3, 1e-8, 1e-30, 1e-300, 5e-324])
def test_tiny_temperatures_are_greedy_and_never_nan(t: float) -> None:
    p = probabilities(LOGITS, SamplingParams(t))
    assert np.isfinite(p).all() and p.argmax() == 1 and p[1] == pytest.approx(1.0)
    assert set(draws(SamplingParams(t), n=200).tolist()) == {1}


def test_temperature_one_follows_the_model_distribution() -> None:
    counts = np.bincount(draws(SamplingParams(1.0), n=4000), minlength=5) / 4000
    np.testing.assert_allclose(counts, [0.05, 0.4, 0.1, 0.3, 0.15], atol=0.03)


def test_high_temperature_flattens() -> None:
    p = probabilities(LOGITS, SamplingParams(5.0))
    assert p.max() - p.min() < 0.15 and p.sum() == pytest.approx(1.0)


def test_top_k_keeps_only_the_k_most_likely() -> None:
    assert set(draws(SamplingParams(1.0, top_k=2)).tolist()) == {1, 3}
    p = probabilities(LOGITS, SamplingParams(1.0, top_k=2))
    np.testing.assert_allclose(p[[1, 3]], [0.4 / 0.7, 0.3 / 0.7])
    assert set(draws(SamplingParams(1.0, top_k=1), n=100).tolist()) == {1}
    assert len(set(draws(SamplingParams(1.0, top_k=50)).tolist())) == 5  # k beyond the vocab: all


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    # Ranked: 0.4, 0.3, 0.15, 0.1, 0.05. p=0.6 needs 0.4+0.3; p=0.7 is reached by those two exactly.
    assert set(draws(SamplingParams(1.0, top_p=0.6)).tolist()) == {1, 3}
    assert set(draws(SamplingParams(1.0, top_p=0.75)).tolist()) == {1, 3, 4}
    assert set(draws(SamplingParams(1.0, top_p=0.01), n=200).tolist()) == {
        1
    }  # the top char always stays
    assert len(set(draws(SamplingParams(1.0, top_p=1.0)).tolist())) == 5


def test_top_k_and_top_p_together() -> None:
    assert set(draws(SamplingParams(1.0, top_k=3, top_p=0.9)).tolist()) == {1, 3, 4}


def test_same_seed_same_draws_other_seed_other_draws() -> None:
    params = SamplingParams(1.0)
    assert draws(params, 300, seed=9).tolist() == draws(params, 300, seed=9).tolist()
    assert draws(params, 300, seed=9).tolist() != draws(params, 300, seed=10).tolist()


def test_rows_sample_as_they_would_alone() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(7, 30)).astype(np.float32)
    params = [
        SamplingParams(0.8),
        SamplingParams(0),
        SamplingParams(1.3, top_k=4),
        SamplingParams(0.5, top_p=0.8),
    ] * 2
    params = params[:7]
    together = sample_rows(logits, params, [np.random.default_rng(s) for s in range(7)])
    alone = [sample(logits[r], params[r], np.random.default_rng(r)) for r in range(7)]
    assert together.tolist() == alone


def test_non_finite_logits_raise_instead_of_sampling_garbage() -> None:
    with pytest.raises(FloatingPointError):
        sample(np.array([0.0, np.nan, 1.0]), SamplingParams(1.0), np.random.default_rng(0))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": -0.1},
        {"temperature": math.nan},
        {"temperature": math.inf},
        {"temperature": 5.5},
        {"top_k": 0},
        {"top_k": 2.5},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"top_p": math.nan},
    ],
)
def test_bad_params_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)


def test_log_softmax_and_alternatives() -> None:
    lp = log_softmax(LOGITS)
    np.testing.assert_allclose(np.exp(lp), [0.05, 0.4, 0.1, 0.3, 0.15])
    assert top_alternatives(lp, 3) == [1, 3, 4]
    assert top_alternatives(np.zeros(4), 2) == [0, 1]  # ties by id


# --- penalties, bias, min-p -----------------------------------------------------------------


def history_of(ids: list[int], window: int = 64, vocab: int = 5) -> History:
    h = History(vocab, window)
    for i in ids:
        h.add(i)
    return h


@pytest.mark.parametrize("t", [0.0, 0.7, 1.0])
def test_neutral_penalties_change_nothing_bit_for_bit(t: float) -> None:
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, size=(6, 40)).astype(np.float32)
    plain = SamplingParams(t, top_p=0.9)
    neutral = SamplingParams(
        t, top_p=0.9, repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0
    )
    histories = [history_of([1, 2, 2, 5], vocab=40) for _ in range(6)]
    a = sample_rows(logits, [plain] * 6, [np.random.default_rng(s) for s in range(6)])
    b = sample_rows(logits, [neutral] * 6, [np.random.default_rng(s) for s in range(6)], histories)
    assert a.tolist() == b.tolist()
    for row, h in zip(logits, histories, strict=True):
        assert probabilities(row, plain).tobytes() == probabilities(row, neutral, h).tobytes()


def test_greedy_with_a_strong_repetition_penalty_never_repeats_inside_the_window() -> None:
    logits = np.array([5.0, 4.0, 3.0, 2.0, 1.5, 1.0])  # one char would win every time
    params = SamplingParams(0.0, repetition_penalty=10.0, repetition_window=3)
    history, rng, ids = History(6, 3), np.random.default_rng(0), []
    for _ in range(40):
        ids.append(sample(logits, params, rng, history))
        history.add(ids[-1])
    assert all(ids[i] not in ids[max(0, i - 3) : i] for i in range(len(ids)))
    assert set(ids) == {0, 1, 2, 3}  # the four best, taking turns


def test_presence_and_frequency_follow_openai() -> None:
    h = history_of([1, 1, 3])
    params = SamplingParams(1.0, presence_penalty=0.5, frequency_penalty=0.25)
    expected = np.exp(LOGITS - 0.25 * np.array([0, 2, 0, 1, 0]) - 0.5 * np.array([0, 1, 0, 1, 0]))
    np.testing.assert_allclose(probabilities(LOGITS, params, h), expected / expected.sum())
    eager = SamplingParams(1.0, presence_penalty=-2.0)  # negative: encourages what was seen
    assert probabilities(LOGITS, eager, h)[3] > probabilities(LOGITS, SamplingParams(1.0))[3]


def test_min_p_keeps_chars_at_least_min_p_times_the_top() -> None:
    assert set(draws(SamplingParams(1.0, min_p=0.3)).tolist()) == {1, 3, 4}  # ≥ 0.12 of 0.4
    p = probabilities(LOGITS, SamplingParams(1.0, min_p=0.3))
    np.testing.assert_allclose(p[[1, 3, 4]], np.array([0.4, 0.3, 0.15]) / 0.85)
    assert set(draws(SamplingParams(1.0, min_p=1.0), n=100).tolist()) == {1}


def test_logit_bias_bans_and_forces_chars() -> None:
    assert set(draws(SamplingParams(1.0, logit_bias=((1, -100.0), (3, -100.0)))).tolist()) == {
        0,
        2,
        4,
    }
    assert set(draws(SamplingParams(1.0, logit_bias=((0, 100.0),)), n=100).tolist()) == {0}
    assert (
        sample(LOGITS, SamplingParams(0.0, logit_bias=((1, -1.0),)), np.random.default_rng(0)) == 3
    )


def test_penalised_rows_sample_as_they_would_alone() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(8, 30)).astype(np.float32)
    params = [
        SamplingParams(0.8, repetition_penalty=1.3, repetition_window=5),
        SamplingParams(0.0, frequency_penalty=1.0),
        SamplingParams(1.0, min_p=0.1, logit_bias=((2, 3.0),)),
        SamplingParams(0.7, top_k=5),
    ] * 2
    histories = [
        history_of(rng.integers(0, 30, 12).tolist(), 8, 30) if r % 4 != 3 else None
        for r in range(8)
    ]
    together = sample_rows(logits, params, [np.random.default_rng(s) for s in range(8)], histories)
    alone = [sample(logits[r], params[r], np.random.default_rng(r), histories[r]) for r in range(8)]
    assert together.tolist() == alone


@pytest.mark.parametrize(
    "kwargs",
    [
        {"repetition_penalty": 0.0},
        {"repetition_penalty": 11.0},
        {"repetition_penalty": math.nan},
        {"repetition_window": 0},
        {"repetition_window": 1.5},
        {"presence_penalty": 2.5},
        {"frequency_penalty": -3.0},
        {"min_p": 1.5},
        {"min_p": -0.1},
        {"logit_bias": ((1, 101.0),)},
        {"logit_bias": ((1, 1.0), (1, 2.0))},
        {"logit_bias": ((-1, 1.0),)},
    ],
)
def test_bad_penalties_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SamplingParams(**kwargs)
