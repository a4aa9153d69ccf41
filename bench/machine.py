"""The machine a bench ran on, named once for every bench: the CPU model, its cores and load, the
target the kernels were compiled for (numba's CPU name and SIMD features, read by
model/runtime/machine.py; the gemm's block shapes) and the BLAS the peers ran on.  A figure
without these cannot be compared with another machine's.

    python -m bench.machine                      # the heading every bench prints
    python -m bench.gemm --avx2                  # a bench forced to Haswell's AVX2 (AVX2_ENV)

Forcing AVX2 on an AVX-512 host: NUMBA_CPU_NAME=haswell with Haswell's NUMBA_CPU_FEATURES (the
variable replaces the whole list), OPENBLAS_CORETYPE=Haswell for the BLAS peers, set before numba
or NumPy load, so in a child process.
"""

from __future__ import annotations

import os
from typing import Any

from model.runtime import cpu_name, target_features, target_name

# Haswell's features as LLVM spells them (NUMBA_CPU_FEATURES replaces the whole list).
AVX2_FEATURES = "+64bit,+avx,+avx2,+bmi,+bmi2,+cx16,+f16c,+fma,+lzcnt,+movbe,+popcnt"
AVX2_FEATURES += ",+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3"
AVX2_ENV = {
    "NUMBA_CPU_NAME": "haswell",
    "NUMBA_CPU_FEATURES": AVX2_FEATURES,
    "OPENBLAS_CORETYPE": "Haswell",
}


def forced_avx2() -> bool:
    """Whether this process's kernels were forced to Haswell's AVX2 (AVX2_ENV)."""
    return os.environ.get("NUMBA_CPU_NAME") == AVX2_ENV["NUMBA_CPU_NAME"]


def kernel_target() -> str:
    """numba's compile target, its SIMD features, the kernel's block shapes and the BLAS core."""
    from threadpoolctl import threadpool_info

    from model.cells import gemm

    name = target_name()
    features = target_features().split(",")
    isa = [f for f in ("avx512f", "avx2", "fma", "neon") if f"+{f}" in features]
    blas: dict[str, Any] = next((i for i in threadpool_info() if i.get("user_api") == "blas"), {})
    coretype = os.environ.get("OPENBLAS_CORETYPE", "unset")
    return (
        f"numba target {name} ({', '.join(isa) or 'no SIMD FMA'}): {gemm.ISA} blocks "
        f"{gemm.SHAPES[0]}; BLAS {blas.get('internal_api')} {blas.get('version')} core "
        f"{blas.get('architecture')} (OPENBLAS_CORETYPE {coretype})"
    )


def host_has_avx2() -> bool:
    """Whether this CPU can run a Haswell target (x86 with AVX2 and FMA)."""
    from numba.core.codegen import get_host_cpu_features

    from model.cells import gemm

    features = set(get_host_cpu_features().split(","))
    return gemm.instruction_set() != "simd128" and {"+avx2", "+fma"} <= features


def heading(title: str) -> str:
    """The lines every bench's table starts with: what ran, where, and for which target."""
    label = "FORCED TO AVX2" if forced_avx2() else "native"
    return (
        f"=== {title}: {label} ===\n"
        f"CPU: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n"
        f"kernels: {kernel_target()}"
    )


if __name__ == "__main__":
    print(heading("bench.machine"))
