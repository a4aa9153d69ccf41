"""model/cells/gemm.py: the product is right, and a row's bits are its own whatever the batch.

    .venv/bin/pytest tests/test_gemm.py      (~17 s on 2 busy cores, kernels cached; -m "not slow":
    ~5 s)

The values span six decades, so that any change in the order of a sum shows in the last bits. The
forced-AVX2 tests run a child process (this module's `_child`) with NUMBA_CPU_NAME and
NUMBA_CPU_FEATURES set before numba loads, and its own kernel cache.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import llvmlite.binding
import numba
import numpy as np
import pytest

from bench.gemm import k_loop_stack_references, stack_references
from bench.machine import AVX2_ENV
from model.cells import gemm
from model.cells.gemm import Array

ROOT = Path(__file__).resolve().parent.parent
THREADS = sorted({1, min(2, vars(numba.config)["NUMBA_NUM_THREADS"])})
BATCHES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 17, 31, 32, 33, 40, 63, 64)
K, N = 70, 100  # 7 panels: one whole group and three lone ones; K and N multiples of nothing


def spread(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Random float32 of both signs over six decades."""
    return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, shape)).astype(np.float32)


def run(x: np.ndarray, panels: np.ndarray, add: np.ndarray, threads: int = 1) -> np.ndarray:
    out = np.full((x.shape[0], panels.shape[0] * gemm.PANEL), np.nan, np.float32)
    gemm.matmul(np.ascontiguousarray(x), panels, np.ascontiguousarray(add), out, threads)
    return out


fma: Any = gemm.fma  # a numba intrinsic: callable in compiled code only


@numba.njit
def chain(x: np.ndarray, w: np.ndarray, add: np.ndarray) -> np.ndarray:
    """The definition, one scalar element at a time: from add, acc = fma(x, w, acc) in k order."""
    out = np.empty((x.shape[0], w.shape[1]), np.float32)
    for r in range(x.shape[0]):
        for n in range(w.shape[1]):
            acc = add[r, n]
            for k in range(x.shape[1]):
                acc = fma(x[r, k], w[k, n], acc)
            out[r, n] = acc
    return out


def row_identity_failures(threads: int, seed: int = 0) -> list[str]:
    """Batches of rows drawn from a pool, in random order: each row's bits against it alone."""
    rng = np.random.default_rng(seed)
    panels = gemm.pack(spread(rng, K, N))
    pool, bias = spread(rng, 80, K), spread(rng, 80, gemm.unpacked_columns(N))
    alone = np.concatenate([run(pool[i : i + 1], panels, bias[i : i + 1]) for i in range(80)])
    failures = []
    for b in BATCHES:
        pick = rng.permutation(80)[:b]
        out = run(pool[pick], panels, bias[pick], threads)
        for i in range(b):
            if out[i].tobytes() != alone[pick[i]].tobytes():
                failures.append(f"B={b}: row {pick[i]} at {i} on {threads} threads")
    return failures


SHAPES = [(1, 37, 50), (9, 37, 50), (4, 1, 1), (7, 100, 130), (3, 576, 300)]  # (B, K, N)


@pytest.mark.parametrize("b,k,n", SHAPES)
def test_matches_float64_matmul(b: int, k: int, n: int) -> None:
    rng = np.random.default_rng(b * k * n)
    x, w = rng.standard_normal((b, k), np.float32), rng.standard_normal((k, n), np.float32)
    add = rng.standard_normal((b + 2, gemm.unpacked_columns(n)), np.float32)  # more rows than x
    out = run(x, gemm.pack(w), add)
    want = x.astype(np.float64) @ w + add[:b, :n]
    scale = np.abs(x).astype(np.float64) @ np.abs(w) + np.abs(add[:b, :n])
    assert np.all(np.abs(out[:, :n] - want) <= 1e-5 * scale)
    assert np.array_equal(out[:, n:], add[:b, n:])  # the padded columns: add + 0 * x


def test_bits_are_the_scalar_fma_chain() -> None:
    rng = np.random.default_rng(1)
    x, w, add = spread(rng, 13, K), spread(rng, K, N), spread(rng, 13, gemm.unpacked_columns(N))
    assert run(x, gemm.pack(w), add)[:, :N].tobytes() == chain(x, w, add[:, :N]).tobytes()


@pytest.mark.parametrize("threads", THREADS)
def test_row_bits_do_not_depend_on_the_batch_or_the_place(threads: int) -> None:
    assert row_identity_failures(threads) == []


def test_product_inside_a_parallel_kernel() -> None:
    """Layer after layer in one parallel kernel, as the LSTM step runs, even one compiled with
    fastmath (numba then flags every float operation it finds): matmul's bits."""

    @numba.njit(parallel=True, fastmath=True)
    def layers(h: Array, weights: Array, add: Array) -> None:  # h[n + 1] = h[n] @ W[n] + add
        for n in range(weights.shape[0]):
            gemm.product(h[n], weights[n], add, h[n + 1])

    rng = np.random.default_rng(2)
    weights = np.stack([gemm.pack(spread(rng, 48, 48)) for _ in range(2)])
    h, add = np.zeros((3, 5, 48), np.float32), spread(rng, 5, 48)
    h[0] = spread(rng, 5, 48)
    layers(h, weights, add)
    assert h[2].tobytes() == run(run(h[0], weights[0], add), weights[1], add).tobytes()


def test_pack_pads_and_aligns() -> None:
    w = np.arange(3 * 20, dtype=np.float32).reshape(3, 20)
    panels = gemm.pack(w)
    assert panels.shape == (2, 3, gemm.PANEL) and panels.ctypes.data % 64 == 0
    assert np.array_equal(panels.transpose(1, 0, 2).reshape(3, 32)[:, :20], w)
    assert not panels[1, :, 4:].any() and gemm.unpacked_columns(20) == 32


def test_rejects_mismatched_shapes() -> None:
    panels = gemm.pack(np.ones((8, 16), np.float32))
    with pytest.raises(ValueError):
        run(np.ones((2, 9), np.float32), panels, np.zeros((2, 16), np.float32))
    with pytest.raises(ValueError):
        run(np.ones((2, 8), np.float32), panels, np.zeros((1, 16), np.float32))


SPILLED_X86 = """
.LBB4_51:
	vmovups	(%rdx,%r8), %ymm7
	vbroadcastss	(%r12,%rsi,4), %ymm8
	vmovups	912(%rsp), %ymm0
	vfmadd231ps	%ymm7, %ymm8, %ymm0
	vmovups	%ymm0, 912(%rsp)
	vmovaps	%ymm15, %ymm0
	jne	.LBB4_51
"""
STORING_ARM = """
.LBB4_48:
	ldp	q1, q27, [x10]
	ld1r	{ v0.4s }, [x13], #4
	fmla	v9.4s, v2.4s, v0.4s
	str	q9, [x8]
	b.ne	.LBB4_48
"""


def test_spill_counter_sees_spills() -> None:
    """It finds a k loop and its two stack operands; a loop that stores results is no k loop."""
    assert k_loop_stack_references(SPILLED_X86) == [2]
    assert k_loop_stack_references(STORING_ARM) == []
    spilled_arm = STORING_ARM.replace("str\tq9, [x8]", "ldr\tq20, [sp, #128]")
    assert k_loop_stack_references(spilled_arm) == [1]


@pytest.mark.slow
def test_accumulators_stay_in_registers() -> None:
    counts = stack_references()  # one per k loop found in the assembly
    assert len(counts) >= 4 and not any(counts)


def fixed_product() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return spread(rng, 33, 300), gemm.pack(spread(rng, 300, 200)), spread(rng, 33, 208)


def _child(folder: str) -> None:
    """In the forced-AVX2 process: the fixed product's bytes, the row identity and the spills."""
    out = run(*fixed_product(), threads=THREADS[-1])
    np.save(Path(folder) / "out.npy", out)
    report = {
        "isa": gemm.ISA,
        "failures": [f for t in THREADS for f in row_identity_failures(t)],
        "stack_references": stack_references(),
    }
    (Path(folder) / "report.json").write_text(json.dumps(report))


def host_has_avx2() -> bool:
    features = llvmlite.binding.get_host_cpu_features()
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    return x86 and bool(features.get("avx2", False)) and bool(features.get("fma", False))


@pytest.fixture(scope="module")
def avx2_child(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, np.ndarray]:
    if not host_has_avx2():
        pytest.skip("this CPU has no AVX2 + FMA to force the target to")
    folder = tmp_path_factory.mktemp("avx2")
    env = {**os.environ, **AVX2_ENV, "NUMBA_CACHE_DIR": str(folder / "numba")}
    code = f"from tests.test_gemm import _child; _child({str(folder)!r})"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=240)
    return json.loads((folder / "report.json").read_text()), np.load(folder / "out.npy")


@pytest.mark.slow
def test_forced_avx2_gives_the_native_bits(avx2_child: tuple[dict, np.ndarray]) -> None:
    report, out = avx2_child
    assert report["isa"] == "avx2"
    assert out.tobytes() == run(*fixed_product(), threads=THREADS[-1]).tobytes()


@pytest.mark.slow
def test_forced_avx2_row_bits_and_registers(avx2_child: tuple[dict, np.ndarray]) -> None:
    report, _ = avx2_child
    assert report["failures"] == []
    assert len(report["stack_references"]) >= 4 and not any(report["stack_references"])
