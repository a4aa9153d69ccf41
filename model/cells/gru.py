"""The GRU cell's equations (Cho et al. 2014), as Keras computes them (`reset_after=True`, cuDNN's
convention: the reset gate scales the recurrent product, bias included), one line each.

With x = x_in @ W + b_in and r_ = h @ U + b_rec (the products: model/cells/kernel.py), both in
Keras's block order [z | r | n]:

    z = sigmoid(x_z + r_z)          update gate: how much of the old state to keep
    r = sigmoid(x_r + r_r)          reset gate: how much of the old state the candidate sees
    n = tanh(x_n + r * r_n)         candidate state
    h = (1 − z) * n + z * h         the new state: no separate memory, h carries it all

Two gates and no cell state: the GRU keeps its memory in h itself.
"""

from __future__ import annotations

from typing import Any

import numba
from numba import prange

from model.cells.activation import GATE_VALUES, sigmoid, tanh
from model.runtime.jit import FASTMATH, compiled

NAME = "gru"
GATES = ("z", "r", "n")  # Keras's order of the weight blocks (n: the candidate)
BLOCKS = len(GATES)
HAS_CELL_STATE = False


@numba.njit(inline="always", fastmath=FASTMATH)
def gates(x: Any, rec: Any, c: Any, h: Any) -> None:
    """The equations on a batch: x, rec (rows, ≥ 3·units); h (rows, units) updated in place."""
    u = h.shape[1]
    for row in prange(h.shape[0]):
        for j in range(u):
            z = sigmoid(x[row, j] + rec[row, j])
            r = sigmoid(x[row, u + j] + rec[row, u + j])
            n = tanh(x[row, 2 * u + j] + r * rec[row, 2 * u + j])
            h[row, j] = (1 - z) * n + z * h[row, j]


@compiled(GATE_VALUES)
def gate_values(x: Any, rec: Any, u: int, units: Any, out: Any) -> None:
    """z, r, n of the chosen units into out (3, rows, len(units)), from one step's x and rec."""
    for row in range(x.shape[0]):
        for k in range(units.size):
            j = units[k]
            out[0, row, k] = sigmoid(x[row, j] + rec[row, j])
            r = sigmoid(x[row, u + j] + rec[row, u + j])
            out[1, row, k] = r
            out[2, row, k] = tanh(x[row, 2 * u + j] + r * rec[row, 2 * u + j])
