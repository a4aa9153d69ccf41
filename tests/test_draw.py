"""The compiled draw (model/sampling/draw.py) against a plain NumPy reading of the same rules,
row by row."""

from __future__ import annotations

import numpy as np

from model.sampling import draw

rng = np.random.default_rng(3)


def reference(z: np.ndarray, t: float, k: int, p: float, min_p: float) -> np.ndarray:
    """Temperature, top-k, exp, top-p, min-p for one row, written the obvious NumPy way."""
    w = (z - z.max()) / (t if t else 1.0)
    if 0 < k < len(z):
        w = np.where(w >= np.sort(w)[::-1][k - 1], w, -np.inf)
    w = np.exp(w)
    if p < 1:
        order = np.argsort(-w, kind="stable")
        ranked = w[order]
        keep = np.zeros(len(w), bool)
        keep[order] = (np.cumsum(ranked) - ranked) < p * ranked.sum()
        w = np.where(keep, w, 0.0)
    return np.where(w >= min_p, w, 0.0) if min_p else w


def settings(n: int) -> tuple[np.ndarray, ...]:
    return (
        rng.choice([0.0, 0.3, 1.0, 1.7], n),
        rng.choice([0, 1, 3, 20], n).astype(np.int64),
        rng.choice([1.0, 0.5, 0.9], n),
        rng.choice([0.0, 0.05], n),
    )


def test_weights_are_the_rules_written_in_numpy() -> None:
    z = rng.normal(0, 3, (400, 65))
    temperature, top_k, top_p, min_p = settings(len(z))
    w = np.empty_like(z)
    draw.weights(z, temperature, top_k, top_p, min_p, w)
    for r in range(len(z)):
        expected = reference(z[r], temperature[r], top_k[r], top_p[r], min_p[r])
        np.testing.assert_allclose(w[r], expected, rtol=1e-14, atol=0)
        assert ((w[r] == 0) == (expected == 0)).all()  # the same chars are cut


def drawn(
    rows: int,
) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray, np.ndarray, np.ndarray]:
    """Random logits (rows, 65), settings and u, and what `draw` made of them: (z, settings, u,
    ids, w)."""
    z, rules, u = rng.normal(0, 3, (rows, 65)), settings(rows), rng.random(rows)
    ids, w = np.empty(rows, np.int64), np.empty_like(z)
    draw.draw(z, *rules, u, w, ids)
    return z, rules, u, ids, w


def test_draws_follow_the_cumulative_weights_and_greedy_rows_take_the_argmax() -> None:
    z, (temperature, *_), u, ids, w = drawn(400)
    for r in range(len(z)):
        if temperature[r] == 0:
            assert ids[r] == np.argmax(z[r])
        else:
            cumulative = np.cumsum(w[r])
            assert ids[r] == min(int((cumulative <= u[r] * cumulative[-1]).sum()), z.shape[1] - 1)
            assert w[r, ids[r]] > 0  # never a char the rules cut


def test_a_row_draws_the_same_alone_or_in_a_batch() -> None:
    z, rules, u, together, _ = drawn(33)
    for r in range(len(z)):
        alone, one = np.empty(1, np.int64), np.empty((1, 65))
        row = slice(r, r + 1)
        draw.draw(z[row].copy(), *(a[row].copy() for a in rules), u[row].copy(), one, alone)
        assert alone[0] == together[r]
