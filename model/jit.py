"""How the step's kernels are compiled and threaded (numba): one place for the process-wide choices.

    from model.jit import FASTMATH, compiled
    @compiled("void(float32[:, ::1])", parallel=True)     # eager, cached on disk, one signature
    def kernel(x): ...

`compiled` is numba.njit with a fixed signature, the fast-math flags that keep every row's bits
the same (model/kernel.py says why) and an on-disk cache.  At import this module copies a
prebuilt cache into place (`seed_cache`, for the read-only Docker image) and picks numba's TBB
threading layer (`use_tbb`, measured below); both must happen before the first kernel compiles
or runs, and model/kernel.py imports this module first.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

import numba

log = logging.getLogger(__name__)
FASTMATH = {"contract", "reassoc"}  # FMAs and a vectorised sum over k, both fixed at compile time


def seed_cache() -> None:
    """Copy a prebuilt kernel cache (CHARLSTM_NUMBA_CACHE_SEED) into NUMBA_CACHE_DIR, once.

    The Docker image compiles the kernels at build time into a read-only directory; numba only
    loads from a directory it can write, so the server copies it to NUMBA_CACHE_DIR (under /tmp)
    before the first kernel is compiled, and loads in well under a second instead of compiling.
    """
    seed, target = os.environ.get("CHARLSTM_NUMBA_CACHE_SEED"), getattr(numba.config, "CACHE_DIR", "")
    if not seed or not target or not os.path.isdir(seed) or os.path.realpath(seed) == os.path.realpath(target):
        return
    try:
        shutil.copytree(seed, target, dirs_exist_ok=True)
    except OSError as exc:  # the kernels then compile instead: slower start, same bits
        log.info("could not copy the numba cache from %s: %s", seed, exc)


def compiled(signature: str, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """numba.njit with a fixed signature, cached on disk where a cache directory is writable.

    FASTMATH and nogil unless `options` say otherwise (model/draw.py keeps strict IEEE maths)."""

    def wrap(fn: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(**{"fastmath": FASTMATH, "nogil": True, **options})(fn)
        try:
            dispatcher.enable_caching()  # the first process compiles (seconds), later ones load (~0.1 s)
        except RuntimeError as exc:  # e.g. a read-only tree and no NUMBA_CACHE_DIR
            log.info("numba cache unavailable, compiling at import: %s", exc)
        dispatcher.compile(signature)  # from the cache when there
        dispatcher.disable_compile()  # other argument types are an error, never a second set of bits
        return dispatcher

    return wrap


def use_tbb() -> str:
    """Run the parallel kernels on numba's TBB threading layer; returns the layer chosen.

    Measured on the 2-core AMD EPYC dev VM (2026-11-30): with GNU OpenMP (numba's default) every
    parallel call made from a thread other than the process's first costs ~55 µs more (a
    (2, 512) @ (512, 2048) product: 37 µs from the main thread, 93 µs from the engine's), so the
    server's engine thread ran a one-sequence step slower on 2 threads than on 1.  TBB's shared
    pool gives 37 µs from any thread.  The `tbb` wheel installs libtbb under the environment's
    lib/, where numba does not look, so it is loaded here by path.  NUMBA_THREADING_LAYER, when
    set, wins; without the wheel numba's default stays (same bits: the layer never changes them).
    """
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return os.environ["NUMBA_THREADING_LAYER"]
    try:
        found = [f for f in importlib.metadata.files("tbb") or () if f.name == "libtbb.so.12"]
        ctypes.CDLL(str(found[0].locate()), mode=ctypes.RTLD_GLOBAL)
    except (importlib.metadata.PackageNotFoundError, IndexError, OSError) as exc:
        log.info("TBB unavailable (%s); numba picks its default threading layer", exc)
        return "default"
    numba.config.THREADING_LAYER = "tbb"  # type: ignore[attr-defined]  # read at the first parallel call
    return "tbb"


seed_cache()  # before any kernel compiles (or loads) itself
use_tbb()
