"""The machine the kernels run on, named wherever a speed is reported (a model's figures, the
benches): the CPU's model name, and the target numba compiles for, NUMBA_CPU_NAME and
NUMBA_CPU_FEATURES when set (forcing AVX2 on an AVX-512 host, say), else the host's.

    from model.runtime.machine import cpu_name, target_features, target_name
"""

from __future__ import annotations

import platform
from pathlib import Path

import numba
from llvmlite import binding
from numba.core.codegen import get_host_cpu_features


def cpu_name() -> str:
    """The CPU's model name (x86's /proc/cpuinfo), else what the platform says (aarch64 lists
    part numbers there, not a name)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def target_name() -> str:
    """The CPU numba compiles for, as LLVM names it: `haswell`, `znver3`, `emeraldrapids`."""
    forced = vars(numba.config).get("CPU_NAME")  # numba's reading of the variable (or None)
    return forced or binding.get_host_cpu_name()


def target_features() -> str:
    """The CPU features numba compiles for: NUMBA_CPU_FEATURES when set, else the host's."""
    forced = vars(numba.config).get("CPU_FEATURES")
    return forced if forced is not None else get_host_cpu_features()
