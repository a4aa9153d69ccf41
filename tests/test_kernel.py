"""The compiled kernels: right sums, and every row's bits the same in any batch, position and thread count.

The invariance comes from padding the batch to whole blocks (model/kernel.py), not from the
arithmetic, so it is pinned here bit for bit: for each product shape of the bundled model and
for odd ones, each of 64 rows alone is compared with the same row in batches of 1 to 64 rows
at random positions, with 1 and 2 threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model import kernel
from model.kernel import ROWS, UNITS, padded

ROOT = Path(__file__).resolve().parent.parent


def bundled_shape() -> tuple[int, int, int]:
    """(embedding, units, vocab) of the bundled model, from its card; 64, 512, 65 without one."""
    cards = sorted((ROOT / "model" / "pretrained").glob("*/card.json"))
    if not cards:
        return 64, 512, 65
    config = json.loads(cards[0].read_text())["config"]
    return int(config["embedding_dim"]), int(config["units"]), int(config["vocab_size"])


EMB, UNITS_BUNDLED, VOCAB = bundled_shape()
# (inputs, units): layer 0 (its input is a table row: no product), deeper layers, odd sizes
LSTM_SHAPES = [(0, UNITS_BUNDLED), (UNITS_BUNDLED, UNITS_BUNDLED), (0, 3), (3, 3), (5, 17), (17, 17), (300, 300)]
# (inputs, columns): the logits, priming's input projection of a deeper layer, odd sizes
LINEAR_SHAPES = [(UNITS_BUNDLED, VOCAB), (UNITS_BUNDLED, 4 * UNITS_BUNDLED), (3, 5), (17, 23), (300, 65)]
rng = np.random.default_rng(0)


def random(*shape: int) -> np.ndarray:
    return rng.normal(0, 0.3, shape).astype(np.float32)


def batches(pool: int = 64, seed: int = 1) -> list[np.ndarray]:
    """For each batch size 1..pool, which pool rows sit at which positions (a random draw)."""
    draw = np.random.default_rng(seed)
    return [draw.permutation(pool)[:size] for size in range(1, pool + 1)]


def lstm_run(inputs: int, units: int, x: np.ndarray, h: np.ndarray, c: np.ndarray, add: np.ndarray, threads: int):
    """One lstm_layer call on the rows given (padded here); returns (c, h) of those rows."""
    up, rows = padded(units, UNITS), padded(len(x), ROWS)
    wx, wh = WEIGHTS[(inputs, units)]

    def pad(a: np.ndarray, width: int) -> np.ndarray:
        out = np.zeros((rows, width), np.float32)
        out[: len(a), : a.shape[1]] = a
        return out

    c_out, h_out = pad(c, up), np.zeros((rows, up), np.float32)
    kernel.lstm_layer(pad(x, inputs), wx, pad(h, up), wh, pad(add, 4 * up), c_out, h_out, threads)
    return c_out[: len(x), :units], h_out[: len(x), :units]


WEIGHTS = {
    (i, u): (kernel.gate_weights(random(i, 4 * u), u, i), kernel.gate_weights(random(u, 4 * u), u, padded(u, UNITS)))
    for i, u in LSTM_SHAPES
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("inputs", "units"), LSTM_SHAPES)
def test_lstm_layer_rows_are_bit_identical_in_any_batch(inputs: int, units: int, threads: int) -> None:
    up = padded(units, UNITS)
    x, h, c, add = random(64, inputs), random(64, units), random(64, units), random(64, 4 * up)
    alone = [lstm_run(inputs, units, x[[r]], h[[r]], c[[r]], add[[r]], 1) for r in range(64)]
    for rows in batches():
        c_b, h_b = lstm_run(inputs, units, x[rows], h[rows], c[rows], add[rows], threads)
        for position, r in enumerate(rows):
            np.testing.assert_array_equal(c_b[position], alone[r][0][0])
            np.testing.assert_array_equal(h_b[position], alone[r][1][0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("inputs", "cols"), LINEAR_SHAPES)
def test_linear_rows_are_bit_identical_in_any_batch(inputs: int, cols: int, threads: int) -> None:
    w, b = kernel.transposed(random(inputs, cols), inputs), random(padded(cols, kernel.COLS))
    x = random(64, inputs)

    def run(rows: np.ndarray, n: int) -> np.ndarray:
        xp = np.zeros((padded(len(rows), ROWS), inputs), np.float32)
        xp[: len(rows)] = x[rows]
        out = np.empty((len(xp), w.shape[0]), np.float32)
        kernel.linear(xp, w, b, out, n)
        return out[: len(rows)]

    alone = [run(np.array([r]), 1)[0] for r in range(64)]
    for rows in batches(seed=2):
        together = run(rows, threads)
        for position, r in enumerate(rows):
            np.testing.assert_array_equal(together[position], alone[r])


def test_lstm_layer_is_the_lstm_equations() -> None:
    inputs, units = 5, 17
    up = padded(units, UNITS)
    w_x, w_h, bias = random(inputs, 4 * units), random(units, 4 * units), random(4 * units)
    x, h, c = random(3, inputs), random(3, units), random(3, units)
    rows = padded(3, ROWS)
    xp, hp, cp = (np.zeros((rows, n), np.float32) for n in (inputs, up, up))
    xp[:3], hp[:3, :units], cp[:3, :units] = x, h, c
    h_out, add = np.zeros((rows, up), np.float32), np.tile(kernel.gate_order(bias, units), (rows, 1))
    wx, wh = kernel.gate_weights(w_x, units, inputs), kernel.gate_weights(w_h, units, up)
    kernel.lstm_layer(xp, wx, hp, wh, add, cp, h_out, 2)

    z = x.astype(np.float64) @ w_x + h @ w_h + bias
    i, f, g, o = (z[:, k * units : (k + 1) * units] for k in range(4))
    c_ref = f_sig(f) * c + f_sig(i) * np.tanh(g)
    np.testing.assert_allclose(cp[:3, :units], c_ref, atol=1e-5)
    np.testing.assert_allclose(h_out[:3, :units], f_sig(o) * np.tanh(c_ref), atol=1e-5)
    assert not h_out[:, units:].any() and not cp[:, units:].any()  # padded units stay exactly 0


def f_sig(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_a_blas_product_would_change_bits_at_these_sizes() -> None:
    """Guard: the tests above can see a break, since NumPy's BLAS product does change rows' bits."""
    w, x = random(UNITS_BUNDLED, 4 * UNITS_BUNDLED), random(64, UNITS_BUNDLED)
    alone = np.concatenate([x[[r]] @ w for r in range(64)])
    assert any(not np.array_equal((x[rows] @ w), alone[rows]) for rows in batches())
