"""The LSTM cell's equations (Hochreiter & Schmidhuber 1997, with a forget gate), one line each.

For each layer, with z = x @ W + h @ U + b (the products: model/cells/kernel.py) laid out in
Keras's gate order [z_i | z_f | z_g | z_o]:

    i = sigmoid(z_i)        input gate: how much of the candidate to write
    f = sigmoid(z_f)        forget gate: how much of the old memory to keep
    g = tanh(z_g)           candidate memory (C̃)
    o = sigmoid(z_o)        output gate: how much of the memory to show
    c = f * c + i * g       the cell state, carried over time
    h = o * tanh(c)         the hidden state, the layer's output

`gates` applies them to a batch, in place, inside the compiled step.
"""

from __future__ import annotations

from typing import Any

import numba
from numba import prange

from model.cells.activation import sigmoid, tanh
from model.runtime.jit import FASTMATH

GATES = 4  # z holds i, f, g, o


@numba.njit(inline="always", fastmath=FASTMATH)
def gates(z: Any, c: Any, h: Any) -> None:
    """The LSTM equations on z (rows, 4*units) = [z_i | z_f | z_g | z_o]: c updated in place, h written."""
    units = c.shape[1]
    for r in prange(c.shape[0]):
        for j in range(units):
            i = sigmoid(z[r, j])
            f = sigmoid(z[r, units + j])
            g = tanh(z[r, 2 * units + j])
            o = sigmoid(z[r, 3 * units + j])
            c[r, j] = f * c[r, j] + i * g
            h[r, j] = o * tanh(c[r, j])
