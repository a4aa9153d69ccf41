"""The compiled step of every cell: the shared products (model/cells/gemm.py) around each cell's
equations (lstm.py, gru.py, rnn.py), batch-invariant: a row's bits never depend on its batch.

Per layer n, for every row:   x = x_in @ W + b_in   (layer 0: a row of the char table)
                              r = h @ U + b_rec     (b_rec is 0 but for the GRU)
                              gates(x, r, c, h)     (the cell's equations, c and h in place)
and then logits = h_last @ W_dense + b_dense.  Every product is gemm's: each output element one
FMA chain in k order, so the bits do not depend on the batch, the row's place, the thread count
or the vector width.  `kind` picks the cell's equations (`CELL_KINDS`); everything else is shared.

    step(kind, ids, table, w_in, w_rec, b_in, b_rec, dense, c, h, x, r, logits, threads)
    steps(kind, xs, w_rec, b_rec, r, c, h, hs, cs, rs, threads)  # one layer over time (priming)
    linear(x, panels, add, out, threads)                         # out = x @ W + add

Weights are packed once at load (`packed`, `packed_layers`); each (rows, columns) work array has
gemm's padded column count.  Compiled at the first call and cached on disk (model/runtime/jit.py).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np

from model.cells import gemm, gru, lstm, rnn
from model.runtime.jit import compiled

CELL_KINDS = {"lstm": 0, "gru": 1, "rnn": 2}  # the `kind` argument of the kernels
CELLS = {"lstm": lstm, "gru": gru, "rnn": rnn}
F2, F3, F4 = "float32[:, ::1]", "float32[:, :, ::1]", "float32[:, :, :, ::1]"
columns = gemm.unpacked_columns


@numba.njit(inline="always")
def gates(kind: Any, x: Any, r: Any, c: Any, h: Any) -> None:
    """The cell's equations: the one place the three cells differ."""
    if kind == 0:
        lstm.gates(x, r, c, h)
    elif kind == 1:
        gru.gates(x, r, c, h)
    else:
        rnn.gates(x, r, c, h)


@compiled(f"void({F2}, {F3}, {F2}, {F2})", parallel=True)
def _linear(x, panels, add, out):
    gemm.product(x, panels, add, out)


@compiled(f"void(int64, {F3}, {F3}, {F2}, {F2}, {F2}, {F2}, {F3}, {F3}, {F3})", parallel=True)
def _steps(kind, xs, w_rec, b_rec, r, c, h, hs, cs, rs):
    """For t in range(len(xs)): r = h @ U + b_rec, then the gates (c, h in place); hs[t] = h, and
    where given (a first axis of len(xs)), cs[t] = c and rs[t] = r.  The step runs the same code
    for one t of a batch, so a primed state has the bits of a generated one."""
    for t in range(xs.shape[0]):
        gemm.product(h, w_rec, b_rec, r)
        gates(kind, xs[t], r, c, h)
        hs[t] = h
        if cs.shape[0]:
            cs[t] = c
        if rs.shape[0]:
            rs[t] = r[: h.shape[0]]


@compiled(
    f"void(int64, int64[::1], {F2}, {F4}, {F4}, {F3}, {F3}, {F3}, {F2}, {F3}, {F3}, "
    f"{F2}, {F2}, {F2})",
    parallel=True,
)
def _step(kind, ids, table, w_in, w_rec, b_in, b_rec, dense_w, dense_b, c, h, x, r, logits):
    """The generation step in one call: each row's char through every layer, then the logits."""
    forward(kind, ids, table, w_in, w_rec, b_in, b_rec, dense_w, dense_b, c, h, x, r, logits)


@numba.njit(inline="always")
def forward(kind, ids, table, w_in, w_rec, b_in, b_rec, dense_w, dense_b, c, h, x, r, logits):
    """`_step`'s body, for kernels that step several times in one call (model/engine/burst.py)."""
    for row in range(ids.shape[0]):
        x[row] = table[ids[row]]
    layers = w_rec.shape[0]
    for n in range(layers):
        if n > 0:
            gemm.product(h[n - 1], w_in[n - 1], b_in[n - 1], x)
        gemm.product(h[n], w_rec[n], b_rec[n], r)
        gates(kind, x, r, c[n], h[n])
    gemm.product(h[layers - 1], dense_w, dense_b, logits)


def aligned(shape: tuple[int, ...]) -> np.ndarray:
    """Zeros, float32, starting on a 64-byte boundary (gemm's panels are read a line at a time)."""
    size = int(np.prod(shape))
    raw = np.zeros(size + gemm.ALIGN // 4, np.float32)
    skip = (-raw.ctypes.data % gemm.ALIGN) // 4
    return raw[skip : skip + size].reshape(shape)


def packed(w: np.ndarray) -> np.ndarray:
    """(K, N) weights → gemm's panels (ceil(N / PANEL), K, PANEL)."""
    return gemm.pack(np.asarray(w, np.float32))


def packed_layers(ws: list[np.ndarray], k: int, n: int) -> np.ndarray:
    """Several (k, n) weights packed and stacked: (layers, panels, k, PANEL), for the one-call
    step."""
    out = aligned((len(ws), columns(n) // gemm.PANEL, k, gemm.PANEL))
    for i, w in enumerate(ws):
        out[i] = packed(w)
    return out


# numba's fallback threading layer (workqueue) must not be entered twice at once
_launch = threading.Lock()
# Multiply-adds below which a call runs on one thread: handing work to a second thread and waiting
# for it
# costs microseconds on an idle machine (a scheduler time slice on a loaded one), more than a small
# product takes (the test models).  Bits do not depend on it.
PARALLEL_WORK = 1 << 20


@contextlib.contextmanager
def launching(threads: int, rows: int, panels: np.ndarray) -> Iterator[None]:
    """Around one call of a parallel kernel on `rows` rows of products like `panels`: one caller
    at a time, on `threads` threads (numba keeps the count per calling thread), or on one where
    the products are small."""
    work = rows * panels.shape[-2] * panels.shape[-3] * gemm.PANEL
    with _launch:
        numba.set_num_threads(threads if work >= PARALLEL_WORK else 1)
        yield


def linear(
    x: np.ndarray, panels: np.ndarray, add: np.ndarray, out: np.ndarray, threads: int
) -> None:
    """out = x @ W + add: x (rows, K), panels from `packed`, add and out (≥ rows, columns(N))."""
    with launching(threads, x.shape[0], panels):
        _linear(x, panels, add, out)


def step(
    kind: int,
    ids: np.ndarray,
    table: np.ndarray,
    w_in: np.ndarray,
    w_rec: np.ndarray,
    b_in: np.ndarray,
    b_rec: np.ndarray,
    dense: tuple[np.ndarray, np.ndarray],
    c: np.ndarray,
    h: np.ndarray,
    x: np.ndarray,
    r: np.ndarray,
    logits: np.ndarray,
    threads: int,
) -> None:
    """One char per row (ids (rows,)) through the whole stack: table (vocab, columns) layer 0's
    x @ W + b per char; w_in (layers-1, ...) and w_rec (layers, ...) from `packed_layers`; b_in
    (layers-1, rows, columns), b_rec (layers, rows, columns) per row; dense (panels, (rows,
    columns)); c, h (layers, rows, units) in place (c of width 0 for cells without one); x, r
    (rows, columns) work arrays; logits (rows, columns(vocab)) written."""
    assert ids.shape[0] == h.shape[1] and w_in.shape[0] == w_rec.shape[0] - 1 == b_in.shape[0]
    with launching(threads, ids.shape[0], w_rec[0]):
        _step(kind, ids, table, w_in, w_rec, b_in, b_rec, dense[0], dense[1], c, h, x, r, logits)


def steps(
    kind: int,
    xs: np.ndarray,
    w_rec: np.ndarray,
    b_rec: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    h: np.ndarray,
    hs: np.ndarray,
    cs: np.ndarray,
    rs: np.ndarray,
    threads: int,
) -> None:
    """One layer over time: xs (time, rows, columns) its inputs x @ W + b; w_rec from `packed`;
    b_rec (rows, columns); r a (rows, columns) work array; c, h (rows, units) in place; hs (time,
    rows, units) ← h after each char; cs and rs the same for c and r, or of length 0 to skip."""
    assert xs.shape[1] == h.shape[0] and hs.shape == (xs.shape[0], *h.shape)
    with launching(threads, h.shape[0], w_rec):
        _steps(kind, xs, w_rec, b_rec, r, c, h, hs, cs, rs)
