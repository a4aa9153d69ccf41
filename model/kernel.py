"""Compiled, batch-invariant kernels for the LSTM step (numba): a row's bits never depend on its batch.

A BLAS matrix product gives a row slightly different last bits depending on how many rows are
multiplied with it and where it sits (different shapes go to different code), so a seeded text
could change when other requests run beside it.  These kernels cut the work into blocks of
ROWS rows × COLS output columns and run every block through the same compiled code: the batch
is padded to a multiple of ROWS (no one-row tail loop: the invariance comes from that padding,
and tests/test_kernel.py checks it bit for bit).  The sum over k is vectorised in one fixed
order chosen at compile time (`reassoc`), the same for every row, thread and batch size.

Weights are laid out once at load (`gate_weights`, `transposed`): transposed, so the sum over k
reads both operands contiguously, with unit j's four gates (i, f, g, o) as rows 4j..4j+3, so a
block of 8 columns holds whole cells and applies the gate equations itself.  Blocks are shared
out over the threads (`prange`) at any batch size, one block to one thread, so the thread
count does not change bits either.  One signature each (eager), compiled once and cached on
disk (`cache=True`: model/__pycache__, or NUMBA_CACHE_DIR; see the Dockerfile); where no cache
directory is writable it compiles at import instead.

    lstm_layer(x, wx, h_in, wh, add, c, h_out, threads)   # z = x@Wx + h@Wh + add; c, h_out updated
    linear(x, w, b, out, threads)                          # out = x @ w + b
    (rows padded to ROWS, units to UNITS, columns to COLS; weights from gate_weights / transposed)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba import prange

log = logging.getLogger(__name__)
ROWS = 2  # rows per block; 4 was measured no faster at batch 32 and slower at batch 1 (padded to 4)
COLS = 8  # output columns per block: two LSTM units' four gates
UNITS = COLS // 4
FASTMATH = {"contract", "reassoc"}  # FMAs and a vectorised sum over k, both fixed at compile time

F2 = "float32[:, ::1]"  # every array is C-contiguous float32: one compiled version, one set of bits


def compiled(signature: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit with a fixed signature, cached on disk where a cache directory is writable."""

    def wrap(fn: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(fastmath=FASTMATH, nogil=True, **options)(fn)
        try:
            dispatcher.enable_caching()  # the first process compiles (seconds), later ones load (~0.1 s)
        except RuntimeError as exc:  # e.g. a read-only tree and no NUMBA_CACHE_DIR
            log.info("numba cache unavailable, compiling at import: %s", exc)
        dispatcher.compile(signature)  # from the cache when there
        dispatcher.disable_compile()  # other argument types are an error, never a second set of bits
        return dispatcher

    return wrap


@numba.njit(inline="always", fastmath=FASTMATH)
def sigmoid(x: float) -> float:
    return np.float32(1) / (np.float32(1) + np.exp(-x))


@numba.njit(inline="always", fastmath=FASTMATH)
def tanh(x: float) -> float:
    # 1 - 2/(e^2x + 1): glibc's tanhf measured 3× slower than its expf here; ±1 at the extremes
    return np.float32(1) - np.float32(2) / (np.exp(np.float32(2) * x) + np.float32(1))


@numba.njit(inline="always", fastmath=FASTMATH)
def cell(z_i: float, z_f: float, z_g: float, z_o: float, c: np.ndarray, h: np.ndarray, r: int, j: int) -> None:
    """The LSTM equations for one unit j of row r: c ← f·c + i·g, h ← o·tanh(c)."""
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c[r, j] = f * c[r, j] + i * g
    h[r, j] = o * tanh(c[r, j])


ZERO = (np.float32(0),) * 16


@numba.njit(inline="always", fastmath=FASTMATH)
def dot_block(x: Any, w: Any, r: int, n: int, s: tuple[Any, ...]) -> tuple[Any, ...]:
    """s + x[r:r+2] @ w[n:n+8].T, the 16 sums held in registers: row r's 8 columns, then row r+1's."""
    a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7 = s
    for k in range(x.shape[1]):
        xa, xb = x[r, k], x[r + 1, k]
        w0, w1, w2, w3 = w[n, k], w[n + 1, k], w[n + 2, k], w[n + 3, k]
        w4, w5, w6, w7 = w[n + 4, k], w[n + 5, k], w[n + 6, k], w[n + 7, k]
        a0, a1, a2, a3 = a0 + xa * w0, a1 + xa * w1, a2 + xa * w2, a3 + xa * w3
        a4, a5, a6, a7 = a4 + xa * w4, a5 + xa * w5, a6 + xa * w6, a7 + xa * w7
        b0, b1, b2, b3 = b0 + xb * w0, b1 + xb * w1, b2 + xb * w2, b3 + xb * w3
        b4, b5, b6, b7 = b4 + xb * w4, b5 + xb * w5, b6 + xb * w6, b7 + xb * w7
    return (a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7)


@numba.njit(inline="always", fastmath=FASTMATH)
def cells(z: tuple[Any, ...], a: Any, n: int, c: Any, h: Any, r: int, j: int) -> None:
    """Row r's units j and j+1 from their 8 gate sums z (i, f, g, o twice) plus the add row a from column n."""
    cell(z[0] + a[n], z[1] + a[n + 1], z[2] + a[n + 2], z[3] + a[n + 3], c, h, r, j)
    cell(z[4] + a[n + 4], z[5] + a[n + 5], z[6] + a[n + 6], z[7] + a[n + 7], c, h, r, j + 1)


@compiled(f"void({F2}, {F2}, {F2}, {F2}, {F2}, {F2}, {F2})", parallel=True)
def _lstm_layer(x, wx, h_in, wh, add, c, h_out):
    """One LSTM layer over a padded batch: z = x @ wx.T + h_in @ wh.T + add, then the gates.

    x (rows, in), h_in (rows, units): the layer's input and its own h; wx (4*units, in),
    wh (4*units, units): `gate_weights` layout; add (rows, 4*units): bias or input projection,
    same column order; c (rows, units) updated in place; h_out (rows, units) written.
    """
    blocks = x.shape[0] // ROWS
    for item in prange(blocks * (c.shape[1] // UNITS)):  # unit-major: a thread keeps its weight rows
        r, j = (item % blocks) * ROWS, (item // blocks) * UNITS
        n = 4 * j
        z = dot_block(h_in, wh, r, n, dot_block(x, wx, r, n, ZERO))
        cells(z[:8], add[r], n, c, h_out, r, j)
        cells(z[8:], add[r + 1], n, c, h_out, r + 1, j)


@compiled(f"void({F2}, {F2}, float32[::1], {F2})", parallel=True)
def _linear(x, w, b, out):
    """out = x @ w.T + b for a padded batch: x (rows, in), w (cols, in) from `transposed`, out (rows, cols)."""
    blocks = x.shape[0] // ROWS
    for item in prange(blocks * (w.shape[0] // COLS)):
        r, n = (item % blocks) * ROWS, (item // blocks) * COLS
        z = dot_block(x, w, r, n, ZERO)
        for m in range(COLS):
            out[r, n + m] = z[m] + b[n + m]
            out[r + 1, n + m] = z[COLS + m] + b[n + m]


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def gate_order(z: np.ndarray, units: int) -> np.ndarray:
    """Columns (..., 4*units) in Keras's gate blocks (i, f, g, o) → (..., 4*units_padded), column 4j+q
    holding gate q of unit j.  Padded units get zeros, so (with zero weights) their c and h stay 0."""
    z = np.asarray(z, np.float32)
    out = np.zeros((*z.shape[:-1], padded(units, UNITS), 4), np.float32)
    out[..., :units, :] = np.swapaxes(z.reshape(*z.shape[:-1], 4, units), -1, -2)
    return out.reshape(*z.shape[:-1], out.shape[-2] * 4)


def gate_weights(w: np.ndarray, units: int, inputs: int) -> np.ndarray:
    """A Keras LSTM weight (in, 4*units) → (4*units_padded, inputs) for lstm_layer, zero rows past `in`."""
    out = np.zeros((inputs, 4 * padded(units, UNITS)), np.float32)
    out[: w.shape[0]] = gate_order(w, units)
    return np.ascontiguousarray(out.T)


def transposed(w: np.ndarray, inputs: int) -> np.ndarray:
    """(in, cols) → (cols_padded, inputs) for linear: zero columns up to a multiple of COLS, zero inputs past `in`."""
    out = np.zeros((padded(w.shape[1], COLS), inputs), np.float32)
    out[: w.shape[1], : w.shape[0]] = np.asarray(w, np.float32).T
    return out


_launch = threading.Lock()  # numba's fallback threading layer (workqueue) must not be entered twice at once


def lstm_layer(
    x: np.ndarray, wx: np.ndarray, h_in: np.ndarray, wh: np.ndarray, add: np.ndarray, c: np.ndarray, h_out: np.ndarray,
    threads: int,
) -> None:  # fmt: skip
    """z = x @ wx.T + h_in @ wh.T + add, then the gates: c updated, h_out written (see _lstm_layer)."""
    rows, units = c.shape
    assert rows % ROWS == 0 and units % UNITS == 0 and wx.shape == (4 * units, x.shape[1])
    assert wh.shape == (4 * units, units) and x.shape[0] == rows and h_in.shape == h_out.shape == c.shape
    assert add.shape == (rows, 4 * units)
    with _launch:
        numba.set_num_threads(threads)  # numba keeps this per calling thread: nothing process-wide
        _lstm_layer(x, wx, h_in, wh, add, c, h_out)


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, out: np.ndarray, threads: int) -> None:
    """out = x @ w.T + b (see _linear)."""
    assert x.shape[0] % ROWS == 0 and w.shape[0] % COLS == 0 and w.shape[1] == x.shape[1]
    assert out.shape == (x.shape[0], w.shape[0]) and b.shape == (w.shape[0],)
    with _launch:
        numba.set_num_threads(threads)
        _linear(x, w, b, out)
