"""The plain (Elman) RNN cell, as Keras's SimpleRNN: no gates, one line.

With x = x_in @ W + b and r = h @ U (the products: model/cells/kernel.py):

    h = tanh(x + r)          i.e. h = tanh(x_in W + h U + b)

Nothing decides what to keep: every step rewrites all of h, so memory fades fast (and training
suffers the vanishing gradients the LSTM's cell state was made to avoid).
"""

from __future__ import annotations

from typing import Any

import numba
from numba import prange

from model.cells.activation import tanh
from model.runtime.jit import FASTMATH

NAME = "rnn"
GATES: tuple[str, ...] = ()
BLOCKS = 1  # one weight block: the new state's pre-activation
HAS_CELL_STATE = False


@numba.njit(inline="always", fastmath=FASTMATH)
def gates(x: Any, r: Any, c: Any, h: Any) -> None:
    """The equation on a batch: x, r (rows, ≥ units); h (rows, units) replaced."""
    for row in prange(h.shape[0]):
        for j in range(h.shape[1]):
            h[row, j] = tanh(x[row, j] + r[row, j])


def gate_values(x: Any, r: Any, u: int, units: Any, out: Any) -> None:
    """No gates: nothing to write (out is (0, rows, len(units))), so nothing to compile."""
