"""Compiled sampling weights and draws (numba): the per-row inner loop of model/sampling/sampler.py.

    w = np.empty_like(z); ids = np.empty(len(z), np.int64)
    draw(z, temperature, top_k, top_p, min_p, u, w, ids)   # z float64 (batch, vocab), one u per row
    weights(z, temperature, top_k, top_p, min_p, w)         # only the weights (for `probabilities`)

Per row, in this order (as model/sampling/sampler.py documents): subtract the max logit, divide by
the
temperature, keep the top_k largest (0: all), exponentiate, keep the smallest most-likely prefix
whose mass reaches top_p (1: all), drop weights under min_p (the top char's is exactly 1), then
draw with `u` from the cumulative sum; temperature 0 takes the argmax.  No fast-math: the same
IEEE operations, in the same order, as the NumPy version this replaced.  Rows never mix, so a
row draws the same id alone or in any batch.  Compiled because at one stream the NumPy version's
per-call overhead (~19 µs a call, ~59 µs for 32 rows) was the largest cost after the step.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from model.runtime.jit import compiled

MIN_SAMPLED_TEMPERATURE = 1e-30  # below it every temperature samples the same (the top chars)
ROWS_IN = "float64[:, ::1], float64[::1], int64[::1], float64[::1], float64[::1]"


@numba.njit(fastmath=False, cache=True)
def _weights(z: Any, temperature: Any, top_k: Any, top_p: Any, min_p: Any, w: Any) -> None:
    """Unnormalised sampling weights w (batch, vocab) of z (batch, vocab); greedy rows as at
    temperature 1."""
    vocab = z.shape[1]
    for r in range(z.shape[0]):
        t = temperature[r]
        t = 1.0 if t == 0 else max(t, MIN_SAMPLED_TEMPERATURE)
        top = z[r, 0]
        for j in range(1, vocab):
            top = max(top, z[r, j])
        for j in range(vocab):  # max 0 after this: exp never overflows
            w[r, j] = (z[r, j] - top) / t
        k = top_k[r]
        if 0 < k < vocab:
            kth = np.sort(w[r])[vocab - k]  # the k-th largest
            for j in range(vocab):
                if w[r, j] < kth:
                    w[r, j] = -np.inf
        for j in range(vocab):
            w[r, j] = np.exp(w[r, j])
        if top_p[r] < 1:
            order = np.argsort(-w[r], kind="mergesort")  # stable: ties keep id order
            mass = 0.0
            for i in range(vocab):
                mass += w[r, order[i]]
            mass *= top_p[r]
            cumulative = 0.0
            for i in range(vocab):  # a char stays while the mass before it is short of top_p
                weight = w[r, order[i]]
                cumulative += weight
                if cumulative - weight >= mass:
                    w[r, order[i]] = 0.0
        if min_p[r] > 0:
            for j in range(vocab):
                if w[r, j] < min_p[r]:
                    w[r, j] = 0.0


@compiled(f"void({ROWS_IN}, float64[:, ::1])", fastmath=False)
def weights(z: Any, temperature: Any, top_k: Any, top_p: Any, min_p: Any, w: Any) -> None:
    """Unnormalised sampling weights w (batch, vocab) of z (batch, vocab)."""
    _weights(z, temperature, top_k, top_p, min_p, w)


@compiled(f"void({ROWS_IN}, float64[::1], float64[:, ::1], int64[::1])", fastmath=False)
def draw(
    z: Any, temperature: Any, top_k: Any, top_p: Any, min_p: Any, u: Any, w: Any, ids: Any
) -> None:
    """One id per row into ids (batch,): the argmax at temperature 0, else a draw with u[r] ∈ [0,
    1)."""
    draw_rows(z, temperature, top_k, top_p, min_p, u, w, ids)


@numba.njit(fastmath=False, cache=True)
def draw_rows(
    z: Any, temperature: Any, top_k: Any, top_p: Any, min_p: Any, u: Any, w: Any, ids: Any
) -> None:
    """`draw`'s body, callable from other kernels (model/engine/burst.py) with its strict maths:
    a called (not inlined) function keeps its own fast-math flags."""
    _weights(z, temperature, top_k, top_p, min_p, w)
    vocab = z.shape[1]
    for r in range(z.shape[0]):
        if temperature[r] == 0:
            ids[r] = np.argmax(z[r])
            continue
        total = 0.0
        for j in range(vocab):
            total += w[r, j]
        threshold, cumulative, drawn = u[r] * total, 0.0, 0
        for j in range(vocab):  # how many cumulative sums are at most u × total
            cumulative += w[r, j]
            if cumulative <= threshold:
                drawn += 1
        ids[r] = min(drawn, vocab - 1)
