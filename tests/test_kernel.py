"""The compiled kernels: right sums, and every row's bits the same in any batch, position and thread count.

The invariance comes from padding the batch to whole blocks (model/cells/kernel.py), not from the
arithmetic, so it is pinned here bit for bit: for each product shape of the bundled model and
for odd ones, each of 64 rows alone is compared with the same row in batches of 1 to 64 rows
at random positions, with 1 and 2 threads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.cells import kernel
from model.cells.kernel import ROWS, UNITS, padded
from model.runtime import jit

ROOT = Path(__file__).resolve().parent.parent


def bundled_shape() -> tuple[int, int, int]:
    """(embedding, units, vocab) of the bundled model, from its card; 64, 512, 65 without one."""
    cards = sorted((ROOT / "model" / "pretrained").glob("*/card.json"))
    if not cards:
        return 64, 512, 65
    config = json.loads(cards[0].read_text())["config"]
    return int(config["embedding_dim"]), int(config["units"]), int(config["vocab_size"])


EMB, UNITS_BUNDLED, VOCAB = bundled_shape()
# The recurrence h @ U (every layer), then the gates: the bundled size and odd ones
LSTM_UNITS = [UNITS_BUNDLED, 3, 17, 300]
# (inputs, columns): the logits, a deeper layer's x @ W, odd sizes
LINEAR_SHAPES = [(UNITS_BUNDLED, VOCAB), (UNITS_BUNDLED, 4 * UNITS_BUNDLED), (3, 5), (17, 23), (300, 65), (300, 1200)]
rng = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def every_call_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small calls run on one thread in use; here "2 threads" means 2 for every shape."""
    monkeypatch.setattr(kernel, "PARALLEL_WORK", 0)


def random(*shape: int) -> np.ndarray:
    return rng.normal(0, 0.3, shape).astype(np.float32)


def batches(pool: int = 64, seed: int = 1) -> list[np.ndarray]:
    """For each batch size 1..pool, which pool rows sit at which positions (a random draw)."""
    draw = np.random.default_rng(seed)
    return [draw.permutation(pool)[:size] for size in range(1, pool + 1)]


def pad(a: np.ndarray, rows: int, width: int) -> np.ndarray:
    out = np.zeros((rows, width), np.float32)
    out[: len(a), : a.shape[1]] = a
    return out


WEIGHTS = {u: kernel.gate_weights(random(u, 4 * u), u, padded(u, UNITS)) for u in LSTM_UNITS}


def lstm_run(units: int, h: np.ndarray, c: np.ndarray, zs: np.ndarray, threads: int):
    """lstm_steps on the rows given (padded here), 3 time steps; returns (c, h) of those rows."""
    up, rows = padded(units, UNITS), padded(len(h), ROWS)
    c_out, h_out, z = pad(c, rows, up), pad(h, rows, up), np.zeros((rows, 4 * up), np.float32)
    zs_p = np.stack([pad(zs[:, t], rows, 4 * up) for t in range(zs.shape[1])])
    hs = np.zeros((len(zs_p), rows, up), np.float32)
    kernel.lstm_steps(zs_p, WEIGHTS[units], z, c_out, h_out, hs, threads)
    np.testing.assert_array_equal(hs[-1], h_out)
    return c_out[: len(h), :units], h_out[: len(h), :units]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("units", LSTM_UNITS)
def test_lstm_steps_rows_are_bit_identical_in_any_batch(units: int, threads: int) -> None:
    up = padded(units, UNITS)
    h, c, zs = random(64, units), random(64, units), random(64, 3, 4 * up)
    alone = [lstm_run(units, h[[r]], c[[r]], zs[[r]], 1) for r in range(64)]
    for rows in batches():
        c_b, h_b = lstm_run(units, h[rows], c[rows], zs[rows], threads)
        for position, r in enumerate(rows):
            np.testing.assert_array_equal(c_b[position], alone[r][0][0])
            np.testing.assert_array_equal(h_b[position], alone[r][1][0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("inputs", "cols"), LINEAR_SHAPES)
def test_linear_rows_are_bit_identical_in_any_batch(inputs: int, cols: int, threads: int) -> None:
    w = kernel.transposed(random(inputs, cols), inputs)
    x, add = random(64, inputs), random(64, w.shape[0])

    def run(rows: np.ndarray, n: int) -> np.ndarray:
        padded_rows = padded(len(rows), ROWS)
        out = np.empty((padded_rows, w.shape[0]), np.float32)
        kernel.linear(pad(x[rows], padded_rows, inputs), w, pad(add[rows], padded_rows, w.shape[0]), out, n)
        return out[: len(rows)]

    alone = [run(np.array([r]), 1)[0] for r in range(64)]
    for rows in batches(seed=2):
        together = run(rows, threads)
        for position, r in enumerate(rows):
            np.testing.assert_array_equal(together[position], alone[r])


def test_lstm_steps_is_the_lstm_equations() -> None:
    units = 17
    up = padded(units, UNITS)
    w_x, w_h, bias = random(5, 4 * units), random(units, 4 * units), random(4 * units)
    x, h, c = random(3, 5), random(3, units), random(3, units)
    rows = padded(3, ROWS)
    zs = pad(kernel.gate_order(x @ w_x + bias, units), rows, 4 * up)[None]  # one time step
    hp, cp, z = pad(h, rows, up), pad(c, rows, up), np.zeros((rows, 4 * up), np.float32)
    kernel.lstm_steps(zs, kernel.gate_weights(w_h, units, up), z, cp, hp, np.zeros((1, rows, up), np.float32), 2)

    z_ref = x.astype(np.float64) @ w_x + h @ w_h + bias
    i, f, g, o = (z_ref[:, k * units : (k + 1) * units] for k in range(4))
    c_ref = f_sig(f) * c + f_sig(i) * np.tanh(g)
    np.testing.assert_allclose(cp[:3, :units], c_ref, atol=1e-5)
    np.testing.assert_allclose(hp[:3, :units], f_sig(o) * np.tanh(c_ref), atol=1e-5)
    assert not hp[:, units:].any() and not cp[:, units:].any()  # padded units stay exactly 0


def test_the_rational_tanh_is_within_1e_6_everywhere() -> None:
    """Gates saturated so that c = tanh(z_g) (i = 1, f = 0): the rational tanh against NumPy's."""
    x = np.linspace(-30, 30, 200_001).astype(np.float32)
    rows = padded(len(x), ROWS)
    zs = np.zeros((1, rows, 8), np.float32)  # two units (the smallest block): i, f, g, o blocks of 2 columns
    zs[0, :, 0], zs[0, :, 2], zs[0, : len(x), 4], zs[0, :, 6] = 60, -60, x, 60
    c, h = np.zeros((rows, 2), np.float32), np.zeros((rows, 2), np.float32)
    kernel.lstm_steps(zs, np.zeros((8, 2), np.float32), np.zeros((rows, 8), np.float32), c, h, zs[:, :, :2] * 0, 1)
    np.testing.assert_allclose(c[: len(x), 0], np.tanh(x.astype(np.float64)), atol=1e-6, rtol=0)


def f_sig(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_a_blas_product_would_change_bits_at_these_sizes() -> None:
    """Guard: the tests above can see a break, since NumPy's BLAS product does change rows' bits."""
    w, x = random(UNITS_BUNDLED, 4 * UNITS_BUNDLED), random(64, UNITS_BUNDLED)
    alone = np.concatenate([x[[r]] @ w for r in range(64)])
    assert any(not np.array_equal((x[rows] @ w), alone[rows]) for rows in batches())


def test_a_prebuilt_cache_is_copied_where_numba_can_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Docker image's read-only cache reaches NUMBA_CACHE_DIR before any kernel compiles."""
    import numba

    seed, target = tmp_path / "seed", tmp_path / "target"
    (seed / "app" / "model").mkdir(parents=True)
    (seed / "app" / "model" / "kernel.linear-1.py311.nbi").write_bytes(b"index")
    monkeypatch.setenv("CHARLSTM_NUMBA_CACHE_SEED", str(seed))
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(target), raising=False)
    jit.seed_cache()
    assert (target / "app" / "model" / "kernel.linear-1.py311.nbi").read_bytes() == b"index"
    monkeypatch.setenv("CHARLSTM_NUMBA_CACHE_SEED", str(tmp_path / "missing"))
    jit.seed_cache()  # no seed: nothing to do, no error
