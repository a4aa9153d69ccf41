"""model/runtime/machine.py names the machine behind every speed figure: the CPU, and the target
the kernels are compiled for, which NUMBA_CPU_NAME / NUMBA_CPU_FEATURES override (a forced AVX2
run must say haswell, not the host's AVX-512 CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.machine import AVX2_ENV, heading
from model.runtime.machine import cpu_name, target_features, target_name

ROOT = Path(__file__).resolve().parent.parent


def test_the_cpu_and_the_host_target_are_named() -> None:
    assert cpu_name().strip()
    assert target_name().strip()
    assert all(f[0] in "+-" for f in target_features().split(","))


def test_a_forced_target_is_the_one_named() -> None:
    env = {**os.environ, **AVX2_ENV}
    code = (
        "from model.runtime.machine import target_features, target_name; "
        "print(target_name()); print(target_features())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    name, features = out.stdout.split()
    assert name == "haswell"
    assert features == AVX2_ENV["NUMBA_CPU_FEATURES"]


def test_every_bench_heading_names_the_cpu_and_the_kernels_target() -> None:
    lines = heading("bench.test").splitlines()
    assert lines[0] == "=== bench.test: native ==="
    assert cpu_name() in lines[1] and f"{os.cpu_count()} cores" in lines[1]
    assert lines[2].startswith(f"kernels: numba target {target_name()} (")
