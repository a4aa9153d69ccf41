"""Process-wide settings of the model's native code, applied once by each entry point.

    from model.runtime import configure
    configure()      # the server's lifespan, the CLI, training, evaluate, the bench scripts, the
    tests

`configure` copies a prebuilt numba cache into place where the image provides one and picks
numba's TBB threading layer (model/runtime/jit.py says why), before any kernel compiles or runs.
Library code never calls it: importing any module of model/ changes no process-wide setting.
TensorFlow's quiet import (model/runtime/native_log.py) is the other entry-point call.
"""

from __future__ import annotations

from model.runtime.jit import seed_cache, use_tbb
from model.runtime.native_log import import_tensorflow

__all__ = ["configure", "import_tensorflow"]


def configure() -> str:
    """Seed the kernel cache and choose the threading layer; returns the layer.  Idempotent."""
    seed_cache()
    return use_tbb()
