"""Compiled, batch-invariant kernels for the LSTM step (numba): a row's bits never depend on its batch.

A BLAS matrix product gives a row slightly different last bits depending on how many rows are
multiplied with it and where it sits (different shapes go to different code), so a seeded text
could change when other requests run beside it.  These kernels cut the work into blocks of
ROWS rows × COLS output columns and run every block through the same compiled code: the batch
is padded to a multiple of ROWS (no one-row tail loop: the invariance comes from that padding,
and tests/test_kernel.py checks it bit for bit).  The sum over k is vectorised in one fixed
order chosen at compile time (`reassoc`), the same for every row, thread and batch size.

Weights are laid out once at load (`gate_weights`, `transposed`): transposed, so the sum over k
reads both operands contiguously, each gate block (i, f, g, o) padded to an even unit count.  The
blocks are shared out over the threads (`prange`) at any batch size, one block to one thread, so
the thread count does not change bits either; the gate equations (`gates`, over named slices of
z) are a second pass, vectorised thanks to a rational tanh.  One signature each (eager), compiled
once and cached on disk (`cache=True`: model/__pycache__, or NUMBA_CACHE_DIR; see the Dockerfile);
where no cache directory is writable they compile at import instead (seconds).

    step(ids, table, w_in, w_rec, bias, dense, c, h, x, z, logits, threads)  # the whole generation step
    linear(x, w, add, out, threads)             # out = x @ w.T + add
    lstm_steps(zs, w, z, c, h, hs, threads)     # for each t: z = h @ w.T + zs[t]; gates → c, h; hs[t] = h
    (rows padded to ROWS, units to UNITS, columns to COLS; weights from gate_weights / transposed)
"""

from __future__ import annotations

import threading
from typing import Any

import numba
import numpy as np
from numba import prange

from model.cells.lstm import gates
from model.runtime.jit import FASTMATH, compiled

ROWS = 2  # rows per block; 4 was measured no faster at batch 32 and slower at batch 1 (padded to 4)
COLS = 8  # output columns per block: 16 sums (2 × 8) fill the registers of the sum over k
UNITS = 2  # gate blocks are padded to an even unit count, so 4 * units is a multiple of COLS
F2 = "float32[:, ::1]"  # every array is C-contiguous float32: one compiled version, one set of bits
F3 = "float32[:, :, ::1]"


ZERO = (np.float32(0),) * 16


@numba.njit(inline="always", fastmath=FASTMATH)
def product(x: Any, w: Any, add: Any, out: Any) -> None:
    """out = x @ w.T + add, block by block: 2 rows × 8 columns, the 16 sums over k held in registers."""
    blocks = x.shape[0] // ROWS
    for item in prange(blocks * (w.shape[0] // COLS)):  # column-major: a thread keeps its weight rows
        r, n = (item % blocks) * ROWS, (item // blocks) * COLS
        a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7 = ZERO
        for k in range(x.shape[1]):
            xa, xb = x[r, k], x[r + 1, k]
            w0, w1, w2, w3 = w[n, k], w[n + 1, k], w[n + 2, k], w[n + 3, k]
            w4, w5, w6, w7 = w[n + 4, k], w[n + 5, k], w[n + 6, k], w[n + 7, k]
            a0, a1, a2, a3 = a0 + xa * w0, a1 + xa * w1, a2 + xa * w2, a3 + xa * w3
            a4, a5, a6, a7 = a4 + xa * w4, a5 + xa * w5, a6 + xa * w6, a7 + xa * w7
            b0, b1, b2, b3 = b0 + xb * w0, b1 + xb * w1, b2 + xb * w2, b3 + xb * w3
            b4, b5, b6, b7 = b4 + xb * w4, b5 + xb * w5, b6 + xb * w6, b7 + xb * w7
        for m, (a, b) in enumerate(((a0, b0), (a1, b1), (a2, b2), (a3, b3), (a4, b4), (a5, b5), (a6, b6), (a7, b7))):
            out[r, n + m] = a + add[r, n + m]
            out[r + 1, n + m] = b + add[r + 1, n + m]


@compiled(f"void({F2}, {F2}, {F2}, {F2})", parallel=True)
def _linear(x, w, add, out):
    product(x, w, add, out)


@compiled(f"void({F3}, {F2}, {F2}, {F2}, {F2}, {F3})", parallel=True)
def _lstm_steps(zs, w, z, c, h, hs):
    """For t in range(len(zs)): z = h @ w.T + zs[t], then the gates (c and h updated in place); hs[t] = h.

    The step is one t for the whole batch; priming is a prompt slice's t for one sequence: the same
    compiled code, so a primed state has the bits of a generated one.
    """
    for t in range(zs.shape[0]):
        product(h, w, zs[t], z)
        gates(z, c, h)
        hs[t] = h


@compiled(f"void(int64[::1], {F2}, {F3}, {F3}, {F3}, {F2}, {F2}, {F3}, {F3}, {F2}, {F2}, {F2})", parallel=True)
def _step(ids, table, w_in, w_rec, bias, dense_w, dense_b, c, h, x, z, logits):
    """The generation step in one call: each row's char through every layer, then the logits.

    Layer 0's x @ W + b is a row of `table`; a deeper layer n's is h[n-1] @ w_in[n-1].T + bias[n-1].
    The products and gates are `_linear`'s and `_lstm_steps`' own code, so priming (which calls
    those) and stepping give a state the same bits.
    """
    for r in range(ids.shape[0]):
        x[r] = table[ids[r]]
    for n in range(w_rec.shape[0]):
        if n > 0:
            product(h[n - 1], w_in[n - 1], bias[n - 1], x)
        product(h[n], w_rec[n], x, z)
        gates(z, c[n], h[n])
    product(h[w_rec.shape[0] - 1], dense_w, dense_b, logits)


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def gate_order(z: np.ndarray, units: int) -> np.ndarray:
    """(..., 4*units) in Keras's gate blocks (i, f, g, o) → (..., 4*units_padded), each block padded
    with zero units: with zero weights too, a padded unit's c and h stay exactly 0."""
    z = np.asarray(z, np.float32)
    out = np.zeros((*z.shape[:-1], 4, padded(units, UNITS)), np.float32)
    out[..., :units] = z.reshape(*z.shape[:-1], 4, units)
    return out.reshape(*z.shape[:-1], out.shape[-2] * out.shape[-1])


def gate_weights(w: np.ndarray, units: int, inputs: int) -> np.ndarray:
    """A Keras LSTM weight (in, 4*units) → (4*units_padded, inputs): transposed, zero rows past `in`."""
    out = np.zeros((inputs, 4 * padded(units, UNITS)), np.float32)
    out[: w.shape[0]] = gate_order(w, units)
    return np.ascontiguousarray(out.T)


def transposed(w: np.ndarray, inputs: int) -> np.ndarray:
    """(in, cols) → (cols_padded, inputs): zero columns up to a multiple of COLS, zero inputs past `in`."""
    out = np.zeros((padded(w.shape[1], COLS), inputs), np.float32)
    out[: w.shape[1], : w.shape[0]] = np.asarray(w, np.float32).T
    return out


_launch = threading.Lock()  # numba's fallback threading layer (workqueue) must not be entered twice at once
# Multiply-adds below which a call runs on one thread: handing work to a second thread and waiting for it
# costs microseconds on an idle machine (a scheduler time slice on a loaded one), more than a small
# product takes (the test models).  Bits do not depend on it.
PARALLEL_WORK = 1 << 20


def _threads(threads: int, x: np.ndarray, w: np.ndarray) -> int:
    return threads if x.shape[0] * x.shape[1] * w.shape[0] >= PARALLEL_WORK else 1


def _check(x: np.ndarray, w: np.ndarray, add: np.ndarray, out: np.ndarray) -> None:
    assert x.shape[0] % ROWS == 0 and w.shape[0] % COLS == 0 and w.shape[1] == x.shape[1]
    assert out.shape == add.shape and add.shape[1] == w.shape[0] and add.shape[0] >= x.shape[0]


def linear(x: np.ndarray, w: np.ndarray, add: np.ndarray, out: np.ndarray, threads: int) -> None:
    """out = x @ w.T + add: x (rows, in), w (cols, in) from `transposed` or `gate_weights`, add (rows, cols)."""
    _check(x, w, add, out)
    with _launch:
        numba.set_num_threads(_threads(threads, x, w))  # numba keeps this per calling thread: nothing process-wide
        _linear(x, w, add, out)


def step(ids: np.ndarray, table: np.ndarray, w_in: np.ndarray, w_rec: np.ndarray, bias: np.ndarray,
         dense: tuple[np.ndarray, np.ndarray], c: np.ndarray, h: np.ndarray, x: np.ndarray, z: np.ndarray,
         logits: np.ndarray, threads: int) -> None:  # fmt: skip
    """One char per row (ids (batch,), rows padded to ROWS in every other array) through the whole stack:
    table (vocab, 4u) layer 0's x @ W + b per char; w_in (layers-1, 4u, u), w_rec (layers, 4u, u);
    bias (layers-1, rows, 4u); dense (weights (vocab_p, u), bias (rows, vocab_p)); c, h (layers, rows, u)
    updated in place; x, z (rows, 4u) work arrays; logits (rows, vocab_p) written."""
    assert ids.shape[0] <= h.shape[1] and w_in.shape[0] == w_rec.shape[0] - 1 == bias.shape[0]
    _check(h[0], w_rec[0], z, z)
    _check(h[0], dense[0], dense[1], logits)
    with _launch:
        numba.set_num_threads(_threads(threads, h[0], w_rec[0]))
        _step(ids, table, w_in, w_rec, bias, dense[0], dense[1], c, h, x, z, logits)


def lstm_steps(
    zs: np.ndarray, w: np.ndarray, z: np.ndarray, c: np.ndarray, h: np.ndarray, hs: np.ndarray, threads: int
) -> None:
    """An LSTM layer over time steps: zs (time, rows, 4*units) the input projections x @ W + b, w its U
    (`gate_weights`); c, h (rows, units) updated in place; hs (time, rows, units) ← h after each step."""
    assert zs.shape[1:] == z.shape and hs.shape == (zs.shape[0], *h.shape) and c.shape == h.shape
    _check(h, w, z, z)
    with _launch:
        numba.set_num_threads(_threads(threads, h, w))
        _lstm_steps(zs, w, z, c, h, hs)
