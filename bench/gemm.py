"""The register-blocked product (model/cells/gemm.py) against OpenBLAS sgemm on the same shapes.

    python -m bench.gemm [--rounds 7] [--threads 2]    # natively (AVX-512 where the CPU has it)
    python -m bench.gemm --avx2                         # numba and OpenBLAS both forced to AVX2
    python -m bench.gemm --threads 1 --cpu-time         # on a busy machine: CPU time, 1 thread

Times `(B, K) @ (K, 2048)` float32 for K in {512, 576, 1024} and B in {1, 32, 64}: the kernel
(`matmul`, with its `+ add`) and NumPy's `x @ w` (OpenBLAS sgemm on as many threads).  Each round
times every case once both ways, in turn, so a burst of load hits both alike; the table gives the
median µs per product and the median of the rounds' ratios, BLAS time / kernel time (> 1: faster
than BLAS), and `best/best`, the ratio of each side's fastest round (the least disturbed by load).
It prints the CPU model, the instruction set the kernel was compiled for, OpenBLAS's core type,
and the stack references in the kernel's k loops (0: its sums never leave registers).  `--avx2`
runs this script again in a child process with NUMBA_CPU_NAME / NUMBA_CPU_FEATURES set to
Haswell's and OPENBLAS_CORETYPE=Haswell, both read at load, so both sides use the same
instruction set.  `--cpu-time` times CPU instead of wall time: on a machine busy with other work,
with one thread, that is each product's own cost.  It never passes or fails.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.machine import AVX2_ENV, forced_avx2, heading

N = 2048
KS = (512, 576, 1024)  # the bundled model's products are K = 512 (h @ U, a deeper layer's x @ W)
CASES = [(k, b) for k in KS for b in (1, 32, 64)]
# A pause before each measurement, for the threads the one before left spinning to park: OpenBLAS's
# spin about 0.1 s after a product, TensorFlow's pool a while too, and meanwhile they hold a core.
# Measured (2-core Xeon): priming 1,000 chars took 210-218 ms right after BLAS products, 127-148
# ms after a 0.3 s pause.
SETTLE_S = 0.3


def stack_references() -> list[int]:
    """Stack operands in each k loop of the kernel, compiled afresh for numba's target: 0 = no
    spill.  Afresh, because inspect_asm() is empty for a kernel loaded from the cache."""
    import numba

    from model.cells import gemm

    fresh = numba.njit(gemm.SIGNATURE, parallel=True)(gemm._matmul.py_func)
    return k_loop_stack_references(fresh.inspect_asm(fresh.signatures[0]))


def k_loop_stack_references(asm: str) -> list[int]:
    """Stack operands in each k loop of x86-64 (AT&T) or aarch64 assembly.  A k loop: an innermost
    loop with FMAs and no vector store to anywhere but the stack (where spilled sums would go)."""
    lines = asm.splitlines()
    labels: dict[str, int] = {}
    loops: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        if label := re.match(r"\s*(\.?L\w+):", line):
            labels[label[1]] = i
        jump = re.match(r"\s*(j|b|cb|tb)\S*\s+(\S+,\s*)*(\.?L\w+)\s*$", line)
        if jump and jump[3] in labels:
            loops.append((labels[jump[3]], i))  # a branch back to an earlier label
    counts = []
    for a, b in loops:
        if any(a <= c and d <= b and (c, d) != (a, b) for c, d in loops):
            continue  # holds another loop
        body = lines[a : b + 1]
        stack = [line for line in body if re.search(r"\(%rsp\)|\[(sp|x29)\b", line)]
        vector_store = r"vmov\w*\s+%[xyz]mm\d+,\s*[^%\s]|\bst(r|p|1)\s+q"
        stores = [line for line in body if re.search(vector_store, line)]
        if any(re.search(r"vfmadd|fmla", line) for line in body) and set(stores) <= set(stack):
            counts.append(len(stack))
    return counts


def per_call(fn: Callable[[], Any], clock: Callable[[], float], budget_s: float = 0.02) -> float:
    """Seconds per call, over as many calls as fill budget_s (the timer's cost stays out)."""
    time.sleep(SETTLE_S)  # the other side's spinning worker threads go back to sleep first
    fn()
    calls, began = 0, clock()
    while (elapsed := clock() - began) < budget_s:
        fn()
        calls += 1
    return elapsed / calls


def describe(threads: int) -> None:
    """The machine (bench/machine.py), the kernel's block shapes and its spills."""
    from model.cells import gemm

    spills = stack_references()
    print(heading("bench.gemm: the kernel against OpenBLAS sgemm"))
    print(f"  (rows, panels) {gemm.SHAPES} of {gemm.PANEL} columns, {gemm.LANES} lanes")
    print(f"  stack references in its {len(spills)} k loops: {sum(spills)}")
    print(f"\n(B, K) @ (K, {N}) float32, {threads} threads each")


def main(argv: list[str] | None = None) -> int:
    what = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.gemm", description=what)
    parser.add_argument("--avx2", action="store_true", help="force numba and OpenBLAS to AVX2")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--threads", type=int, default=2, help="threads of both (default 2)")
    parser.add_argument("--cpu-time", action="store_true", help="time CPU, not wall (1 thread)")
    args = parser.parse_args(argv)
    if args.avx2 and not forced_avx2():  # the target is read at load
        rest = [arg for arg in (sys.argv[1:] if argv is None else argv) if arg != "--avx2"]
        command = [sys.executable, "-m", "bench.gemm", "--avx2", *rest]
        return subprocess.run(command, env={**os.environ, **AVX2_ENV}).returncode
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)  # read when NumPy loads OpenBLAS

    import numpy as np

    from model.cells import gemm
    from model.runtime import configure

    configure()  # numba's kernel cache and threading layer, as the server has them
    describe(args.threads)
    # On a busy machine wall time counts other processes' time slices; CPU time does not.
    clock = time.process_time if args.cpu_time else time.perf_counter
    rng = np.random.default_rng(0)
    weights = {k: rng.standard_normal((k, N), np.float32) for k in KS}
    panels = {k: gemm.pack(w) for k, w in weights.items()}
    runs: dict[tuple[int, int], tuple[Callable[[], Any], Callable[[], Any]]] = {}
    for k, b in CASES:
        x, add = rng.standard_normal((b, k), np.float32), np.zeros((b, N), np.float32)
        out, blas_out = np.empty((b, N), np.float32), np.empty((b, N), np.float32)
        runs[k, b] = (
            partial(gemm.matmul, x, panels[k], add, out, args.threads),
            partial(np.matmul, x, weights[k], out=blas_out),
        )
    times: dict[tuple[int, int], list[tuple[float, float]]] = {case: [] for case in runs}
    for _ in range(args.rounds):
        for case, (kernel, sgemm) in runs.items():
            times[case].append((per_call(kernel, clock), per_call(sgemm, clock)))

    print(f"medians of {args.rounds} interleaved rounds, {'CPU' if args.cpu_time else 'wall'} time")
    print(f"{'K':>5} {'B':>3} {'kernel µs':>10} {'BLAS µs':>9} {'BLAS/kernel':>12}", end=" ")
    print(f"{'GFLOP/s':>8} {'best/best':>10}")
    for (k, b), pairs in times.items():
        kernel_s, blas_s = (statistics.median(p[side] for p in pairs) for side in (0, 1))
        ratio = statistics.median(blas / kernel for kernel, blas in pairs)  # a round's load: both
        best = min(p[1] for p in pairs) / min(p[0] for p in pairs)  # each side's least disturbed
        gflops = 2 * b * k * N / kernel_s / 1e9
        print(f"{k:>5} {b:>3} {kernel_s * 1e6:>10.1f} {blas_s * 1e6:>9.1f}", end=" ")
        print(f"{ratio:>11.2f}× {gflops:>8.1f} {best:>9.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
