"""The logit rewrites before the draw (model/sampling/penalty.py) on hand-made logits: no model
needed."""

from __future__ import annotations

import numpy as np

from model.sampling.params import SamplingParams
from model.sampling.penalty import History, apply_logit_bias, apply_repetition_penalty, rewrite_rows


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits() -> None:
    z = apply_repetition_penalty(np.array([2.0, -2.0, 3.0]), [0, 1, 0], 2.0)
    assert z.tolist() == [1.0, -4.0, 3.0]


def test_the_window_includes_the_prompt_and_forgets_older_chars() -> None:
    h = History(5, 2, prompt_ids=[4, 3, 1])
    assert list(h.recent) == [3, 1] and h.counts.sum() == 0  # counts are of generated chars only
    h.add(2)
    assert list(h.recent) == [1, 2] and h.counts.tolist() == [0, 0, 1, 0, 0]


def test_logit_bias_ignores_ids_beyond_the_vocab() -> None:
    assert apply_logit_bias(np.zeros(3), [(1, 2.5), (7, 100.0)]).tolist() == [0.0, 2.5, 0.0]


def test_rows_without_a_rewrite_keep_their_bits() -> None:
    logits = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert rewrite_rows(logits, [SamplingParams()] * 2, None) is logits
