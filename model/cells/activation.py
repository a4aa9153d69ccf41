"""The activations every cell uses, as plain float32 arithmetic that numba vectorises.

    from model.cells.activation import sigmoid, tanh  # inside @numba.njit code
    @compiled(GATE_VALUES)                            # each gated cell's gate_values kernel

`tanh` is Eigen's rational approximation (TensorFlow's on CPU), so the cells match Keras to
~1e-7 and a loop of them vectorises, where a libm call per element does not.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from model.runtime.jit import FASTMATH

# The signature of a gated cell's gate_values(x, r, units_per_block, units, out), compiled as a
# kernel (model/runtime/jit.py), not numba's cache=True, whose key names only the cell's own file:
# an edit to this file would have left it stale.
GATE_VALUES = "void(float32[:, ::1], float32[:, ::1], int64, int64[::1], float32[:, :, ::1])"


@numba.njit(inline="always", fastmath=FASTMATH)
def tanh(x: Any) -> Any:
    """Eigen's rational tanh (TensorFlow's on CPU): |error| < 4e-7, and plain arithmetic, so a loop
    of
    it is vectorised (a libm call per element is not: the gates took 30-50% of a step that way)."""
    x = min(max(x, np.float32(-7.9053111)), np.float32(7.9053111))
    x2 = x * x
    p = x2 * np.float32(-2.76076847742355e-16) + np.float32(2.00018790482477e-13)
    p = x2 * p + np.float32(-8.60467152213735e-11)
    p = x2 * p + np.float32(5.12229709037114e-08)
    p = x2 * p + np.float32(1.48572235717979e-05)
    p = x2 * p + np.float32(6.37261928875436e-04)
    p = x2 * p + np.float32(4.89352455891786e-03)
    q = x2 * np.float32(1.19825839466702e-06) + np.float32(1.18534705686654e-04)
    q = x2 * q + np.float32(2.26843463243900e-03)
    q = x2 * q + np.float32(4.89352518554385e-03)
    return x * p / q


@numba.njit(inline="always", fastmath=FASTMATH)
def sigmoid(x: Any) -> Any:
    return np.float32(0.5) * tanh(np.float32(0.5) * x) + np.float32(0.5)
