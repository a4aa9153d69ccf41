"""The compiled step of every cell: right sums and equations, and every row's bits the same in any
batch, position and thread count.

The invariance comes from the arithmetic (model/cells/gemm.py: each output element one FMA chain
in k order), so it is pinned here bit for bit: for each cell, at the bundled model's size and at
odd ones, each of 64 rows stepped alone is compared with the same row in batches of 1 to 64 rows
at random positions, with 1 and 2 threads.  tests/test_gemm.py checks the product on its own,
and under a forced AVX2 target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from model.cells import kernel
from model.cells.stack import LayerWeights, Stack, State
from model.runtime import jit

ROOT = Path(__file__).resolve().parent.parent
CELL_BLOCKS = {"lstm": 4, "gru": 3, "rnn": 1}


def bundled_shape() -> tuple[int, int, int]:
    """(embedding, units, vocab) of the bundled model, from its card; 64, 512, 65 without one."""
    card = ROOT / "model" / "pretrained" / "shakespeare" / "card.json"
    if not card.exists():
        return 64, 512, 65
    config = json.loads(card.read_text())["config"]
    return int(config["embedding_dim"]), int(config["units"]), int(config["vocab_size"])


EMB, UNITS_BUNDLED, VOCAB = bundled_shape()
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


def random_stack(
    cell: str, units: int, layers: int = 2, emb: int = 7, vocab: int = 23, threads: int = 1
) -> Stack:
    blocks = CELL_BLOCKS[cell]
    weights = [
        LayerWeights(
            random(emb if n == 0 else units, blocks * units),
            random(units, blocks * units),
            random(blocks * units),
            random(blocks * units) if cell == "gru" else None,
        )
        for n in range(layers)
    ]
    return Stack(random(vocab, emb), weights, random(units, vocab), random(vocab), threads, cell)


def random_state(stack: Stack, batch: int) -> State:
    state = stack.zero_state(batch)
    state.h[...] = random(*state.h.shape)
    state.c[...] = random(*state.c.shape)
    return state


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("cell", "units"), [("lstm", 17), ("gru", 3), ("rnn", 300), ("lstm", UNITS_BUNDLED)]
)
def test_step_rows_are_bit_identical_in_any_batch(cell: str, units: int, threads: int) -> None:
    """Two steps of the whole stack (so the second reads a state the kernel wrote)."""
    stack = random_stack(cell, units, vocab=VOCAB if units == UNITS_BUNDLED else 23)
    pool = random_state(stack, 64)
    ids = rng.integers(0, stack.vocab_size, (2, 64))

    def run(rows: np.ndarray, n: int) -> tuple[np.ndarray, State]:
        stack.threads = n
        state = pool.rows(rows)
        stack.step(ids[0, rows], state)
        return stack.step(ids[1, rows], state), state

    alone = [run(np.array([r]), 1) for r in range(64)]
    sizes = batches() if units < UNITS_BUNDLED else batches()[::7]  # the bundled size: every 7th
    for rows in sizes:
        logits, state = run(rows, threads)
        for position, r in enumerate(rows):
            np.testing.assert_array_equal(logits[position], alone[r][0][0])
            np.testing.assert_array_equal(state.h[:, position], alone[r][1].h[:, 0])
            np.testing.assert_array_equal(state.c[:, position], alone[r][1].c[:, 0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("inputs", "cols"), [(UNITS_BUNDLED, VOCAB), (3, 5), (17, 23), (300, 1200)]
)
def test_linear_rows_are_bit_identical_in_any_batch(inputs: int, cols: int, threads: int) -> None:
    panels = kernel.packed(random(inputs, cols))
    x, add = random(64, inputs), random(64, kernel.columns(cols))

    def run(rows: np.ndarray, n: int) -> np.ndarray:
        out = np.empty((len(rows), kernel.columns(cols)), np.float32)
        kernel.linear(
            np.ascontiguousarray(x[rows]), panels, np.ascontiguousarray(add[rows]), out, n
        )
        return out

    alone = [run(np.array([r]), 1)[0] for r in range(64)]
    for rows in batches(seed=2):
        together = run(rows, threads)
        for position, r in enumerate(rows):
            np.testing.assert_array_equal(together[position], alone[r])


def sig(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_one_step_is_the_cells_equations(cell: str) -> None:
    """One layer, one step, against the textbook equations in float64 (Keras's block order)."""
    units, emb = 17, 5
    stack = random_stack(cell, units, layers=1, emb=emb)
    state = random_state(stack, 3)
    h, c = state.h[0].astype(np.float64), state.c[0].astype(np.float64)
    ids = np.array([4, 0, 9])
    lw = stack.layers[0]
    x = stack.embedding[ids].astype(np.float64) @ lw.kernel + lw.bias
    r = h @ lw.recurrent + (lw.recurrent_bias if lw.recurrent_bias is not None else 0)
    stack.step(ids, state)
    blocks = [slice(k * units, (k + 1) * units) for k in range(CELL_BLOCKS[cell])]
    if cell == "lstm":
        i, f, g, o = (x[:, b] + r[:, b] for b in blocks)
        c_ref = sig(f) * c + sig(i) * np.tanh(g)
        h_ref = sig(o) * np.tanh(c_ref)
        np.testing.assert_allclose(state.c[0], c_ref, atol=1e-5)
    elif cell == "gru":
        z, rr = sig(x[:, blocks[0]] + r[:, blocks[0]]), sig(x[:, blocks[1]] + r[:, blocks[1]])
        n = np.tanh(x[:, blocks[2]] + rr * r[:, blocks[2]])
        h_ref = (1 - z) * n + z * h
        assert state.c.shape[-1] == 0  # no cell state
    else:
        h_ref = np.tanh(x + r)
    np.testing.assert_allclose(state.h[0], h_ref, atol=1e-5)


def test_the_rational_tanh_is_within_1e_6_everywhere() -> None:
    """A plain RNN with x = the inputs and no recurrence: h = tanh(x), against NumPy's tanh."""
    x = np.linspace(-30, 30, 200_001).astype(np.float32)
    stack = random_stack("rnn", 1, layers=1, emb=1, vocab=2)
    xs = np.zeros((1, len(x), stack.table.shape[1]), np.float32)
    xs[0, :, 0] = x
    h, c = np.zeros((len(x), 1), np.float32), np.zeros((len(x), 0), np.float32)
    stack.b_rec[...] = 0
    stack.w_rec[...] = 0
    stack.run_layer(0, xs, h, c)
    np.testing.assert_allclose(h[:, 0], np.tanh(x.astype(np.float64)), atol=1e-6, rtol=0)


def test_a_blas_product_would_change_bits_at_these_sizes() -> None:
    """Guard: the tests above can see a break, since NumPy's BLAS product does change rows' bits."""
    w, x = random(UNITS_BUNDLED, 4 * UNITS_BUNDLED), random(64, UNITS_BUNDLED)
    alone = np.concatenate([x[[r]] @ w for r in range(64)])
    assert any(not np.array_equal((x[rows] @ w), alone[rows]) for rows in batches())


def test_a_prebuilt_cache_is_copied_where_numba_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_a_cached_kernel_is_keyed_on_every_source_it_compiles_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numba keys a cached kernel on its own file; the burst kernel inlines gemm.py's products and
    the cells' equations, so a change there must not leave it loading old machine code."""
    names = {path.relative_to(jit.MODEL).as_posix() for path in jit.kernel_sources()}
    assert {"cells/gemm.py", "cells/kernel.py", "cells/lstm.py", "engine/burst.py"} <= names
    assert {"sampling/draw.py", "runtime/jit.py"} <= names
    dispatcher = kernel._linear.ready()
    if not isinstance(dispatcher._cache, jit.SourcesCache):
        pytest.skip("no writable numba cache here")
    sig, codegen = dispatcher.signatures[0], dispatcher.targetctx.codegen()
    key = dispatcher._cache._index_key(sig, codegen)
    assert key[-1] == jit.sources_digest()
    monkeypatch.setattr(jit, "sources_digest", lambda: "another source")
    assert dispatcher._cache._index_key(sig, codegen) != key


def test_kernels_compile_with_numpys_error_model() -> None:
    """A checked division stops LLVM vectorising the gates between parallel regions."""
    assert all(k._options["error_model"] == "numpy" for k in (kernel._step, kernel._steps))


def test_importing_the_kernels_changes_no_process_wide_setting() -> None:
    """Importing model/ compiles nothing and leaves numba's threading layer alone (STYLE.md)."""
    import subprocess
    import sys

    code = (
        "import numba, model.cells, model.sampling, model.engine, model.reading\n"
        "from model.cells import gemm\n"
        "assert gemm._matmul._dispatcher is None, 'compiled at import'\n"
        "from model.cells import kernel\n"
        "assert kernel._step._dispatcher is None, 'compiled at import'\n"
        "print(numba.config.THREADING_LAYER)"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}  # configure()'s
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, env=env
    )
    assert out.stdout.strip() == "default"


STEP_BYTES = """
import hashlib, sys
import numpy as np
sys.path.insert(0, "tests")
from test_kernel import random_stack, random_state
from model.cells import gemm
out = []
for cell, units in (("lstm", 37), ("gru", 29), ("rnn", 64)):
    stack = random_stack(cell, units, vocab=23, threads=2)
    state = random_state(stack, 5)
    for t in range(3):
        out.append(stack.step(np.arange(5) + t, state).tobytes())
    out.append(stack.prime(np.arange(20) % 23)[0].tobytes())
print(gemm.ISA, hashlib.sha256(b"".join(out)).hexdigest())
"""


@pytest.mark.slow
@pytest.mark.timeout(900)  # two fresh compiles of every kernel (about a minute on a quiet machine)
def test_a_row_has_the_same_bits_under_avx2_and_the_native_target(tmp_path: Path) -> None:
    """The whole step and priming, for every cell, compiled for the host and for a forced AVX2
    target (each in its own process and kernel cache): the same bytes."""
    import os
    import subprocess
    import sys

    from bench.machine import AVX2_ENV

    flags = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            flags = cpuinfo.read()
    if " avx2 " not in flags or " fma " not in flags:
        pytest.skip("this CPU has no AVX2 and FMA: no AVX2 code to compare with")

    def run(env: dict[str, str], cache: str) -> list[str]:
        full = {
            **os.environ,
            **env,
            "NUMBA_CACHE_DIR": str(tmp_path / cache),
            "PYTHONPATH": str(ROOT),
        }
        done = subprocess.run(
            [sys.executable, "-c", STEP_BYTES], cwd=ROOT, env=full, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split()

    native = run({}, "native")
    avx2 = run({k: v for k, v in AVX2_ENV.items() if k.startswith("NUMBA")}, "avx2")
    assert avx2[0] == "avx2"
    assert native[1] == avx2[1], f"{native[0]} and avx2 steps differ"
