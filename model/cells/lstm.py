"""The LSTM cell's equations (Hochreiter & Schmidhuber 1997, with a forget gate), one line each.

For each layer, with x = x_in @ W + b and r = h @ U (the products: model/cells/kernel.py),
both laid out in Keras's gate order [i | f | g | o]:

    i = sigmoid(x_i + r_i)      input gate: how much of the candidate to write
    f = sigmoid(x_f + r_f)      forget gate: how much of the old memory to keep
    g = tanh(x_g + r_g)         candidate memory (C̃)
    o = sigmoid(x_o + r_o)      output gate: how much of the memory to show
    c = f * c + i * g           the cell state, carried over time
    h = o * tanh(c)             the hidden state, the layer's output

`gates` applies them to a batch in place inside the compiled step; `gate_values` gives the four
gates themselves, for the Gates view (model/reading/gates.py).
"""

from __future__ import annotations

from typing import Any

import numba
from numba import prange

from model.cells.activation import GATE_VALUES, sigmoid, tanh
from model.runtime.jit import FASTMATH, compiled

NAME = "lstm"
GATES = ("i", "f", "g", "o")  # Keras's order of the weight blocks
BLOCKS = len(GATES)  # weight blocks of units columns each
HAS_CELL_STATE = True  # carries c beside h


@numba.njit(inline="always", fastmath=FASTMATH)
def gates(x: Any, r: Any, c: Any, h: Any) -> None:
    """The equations on a batch: x, r (rows, ≥ 4·units); c and h (rows, units) updated in place."""
    u = h.shape[1]
    for row in prange(h.shape[0]):
        for j in range(u):
            i = sigmoid(x[row, j] + r[row, j])
            f = sigmoid(x[row, u + j] + r[row, u + j])
            g = tanh(x[row, 2 * u + j] + r[row, 2 * u + j])
            o = sigmoid(x[row, 3 * u + j] + r[row, 3 * u + j])
            c[row, j] = f * c[row, j] + i * g
            h[row, j] = o * tanh(c[row, j])


@compiled(GATE_VALUES)
def gate_values(x: Any, r: Any, u: int, units: Any, out: Any) -> None:
    """i, f, g, o of the chosen units into out (4, rows, len(units)), from one step's x and r."""
    for row in range(x.shape[0]):
        for k in range(units.size):
            j = units[k]
            out[0, row, k] = sigmoid(x[row, j] + r[row, j])
            out[1, row, k] = sigmoid(x[row, u + j] + r[row, u + j])
            out[2, row, k] = tanh(x[row, 2 * u + j] + r[row, 2 * u + j])
            out[3, row, k] = sigmoid(x[row, 3 * u + j] + r[row, 3 * u + j])
