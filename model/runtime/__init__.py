"""Process-wide settings of the model's native code, applied once by each entry point.

    from model.runtime import configure
    configure()      # the server's lifespan, the CLI, training, evaluate, benches, the tests

`configure` copies a prebuilt numba cache into place where the image provides one and picks
numba's TBB threading layer (model/runtime/jit.py says why), before any kernel compiles or runs.
Library code never calls it: importing any module of model/ changes no process-wide setting.
TensorFlow's quiet import (model/runtime/native_log.py) is the other entry-point call.  The
machine's names (model/runtime/machine.py: the CPU, numba's compile target) go beside every speed.
"""

from __future__ import annotations

from model.runtime.jit import seed_cache, use_tbb
from model.runtime.machine import cpu_name, target_features, target_name
from model.runtime.native_log import import_tensorflow

__all__ = ["configure", "cpu_name", "import_tensorflow", "target_features", "target_name"]


def configure() -> str:
    """Seed the kernel cache and choose the threading layer; returns the layer.  Idempotent."""
    seed_cache()
    return use_tbb()
