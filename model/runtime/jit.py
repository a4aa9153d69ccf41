"""How the step's kernels are compiled and threaded (numba): one place for the process-wide choices.

    from model.runtime.jit import FASTMATH, compiled
    @compiled("void(float32[:, ::1])", parallel=True)     # eager, cached on disk, one signature
    def kernel(x): ...

`compiled` is numba.njit with a fixed signature, the fast-math flags that keep every row's bits
the same (model/cells/kernel.py says why), NumPy's error model and an on-disk cache keyed on every
source file the kernels compile in (`SourcesCache`).  A kernel compiles (or loads from
the cache) at its first call, not at import: the entry points first call model.runtime.configure,
which copies a prebuilt cache into place (`seed_cache`, for the read-only Docker image) and picks
numba's TBB threading layer (`use_tbb`, measured below).  Importing this module changes nothing.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.metadata
import logging
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numba
from numba.core.caching import FunctionCache

log = logging.getLogger(__name__)
FASTMATH = {"contract", "reassoc"}  # FMAs and a vectorised sum over k, both fixed at compile time
# Division by zero gives inf or NaN as in NumPy, instead of a Python exception: numba's default
# ("python") checks every division, and the branch stops LLVM vectorising a loop with one.  Parallel
# regions compile this way already; this is for the code between them (the rational tanh over 32 ×
# 512 cells outside one: 275 µs checked, 31 µs vectorised).
ERROR_MODEL: Literal["numpy"] = "numpy"
MODEL = Path(__file__).resolve().parent.parent
# The files whose code the kernels compile in: the kernels inline the cells and the products, and
# the burst kernel calls the draw.  numba keys a cached kernel on its own file only, so a change to
# gemm.py left the burst kernel loading its old machine code; `sources_digest` joins the key.
KERNEL_SOURCES = ("cells", "sampling/draw.py", "engine/burst.py", "runtime/jit.py")


def kernel_sources() -> list[Path]:
    """Every file of KERNEL_SOURCES, in a fixed order."""
    paths = [MODEL / entry for entry in KERNEL_SOURCES]
    return [f for p in paths for f in (sorted(p.glob("*.py")) if p.is_dir() else [p])]


@functools.cache
def sources_digest() -> str:
    """A hash of the kernels' source files: any change to one recompiles every kernel."""
    digest = hashlib.sha256()
    for file in kernel_sources():
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


class SourcesCache(FunctionCache):
    """numba's on-disk cache of one kernel, its key also naming the kernels' sources."""

    def _index_key(self, sig: Any, codegen: Any) -> Any:
        return (*super()._index_key(sig, codegen), sources_digest())


def seed_cache() -> None:
    """Copy a prebuilt kernel cache (CHARLSTM_NUMBA_CACHE_SEED) into NUMBA_CACHE_DIR, once.

    The Docker image compiles the kernels at build time into a read-only directory; numba only loads
    from a directory it can write, so the server copies it to NUMBA_CACHE_DIR (under /tmp) before
    the first kernel is compiled, and loads in well under a second instead of compiling.
    """
    seed, target = (
        os.environ.get("CHARLSTM_NUMBA_CACHE_SEED"),
        getattr(numba.config, "CACHE_DIR", ""),
    )
    if (
        not seed
        or not target
        or not os.path.isdir(seed)
        or os.path.realpath(seed) == os.path.realpath(target)
    ):
        return
    try:
        shutil.copytree(seed, target, dirs_exist_ok=True)
    except OSError as exc:  # the kernels then compile instead: slower start, same bits
        log.info("could not copy the numba cache from %s: %s", seed, exc)


class Kernel:
    """A numba dispatcher compiled for one signature at its first call (or `ready()`), then only
    that signature: other argument types are an error, never a second set of bits."""

    def __init__(self, fn: Callable[..., Any], signature: str, options: dict[str, Any]) -> None:
        self.py_func, self.signature, self._options = fn, signature, options
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__
        self._dispatcher: Any = None
        self._lock = threading.Lock()

    def ready(self) -> Any:
        """The compiled dispatcher (compiled, or loaded from the on-disk cache, on first use)."""
        if self._dispatcher is None:
            with self._lock:
                if self._dispatcher is None:
                    self._dispatcher = self._compile()
        return self._dispatcher

    def _compile(self) -> Any:
        dispatcher = numba.njit(**self._options)(self.py_func)
        try:  # the first process compiles (seconds), later ones load (dispatcher.enable_caching)
            dispatcher._cache = SourcesCache(self.py_func)
        except RuntimeError as exc:  # e.g. a read-only tree and no NUMBA_CACHE_DIR
            log.info("numba cache unavailable, compiling in memory: %s", exc)
        dispatcher.compile(self.signature)  # from the cache when there
        dispatcher.disable_compile()
        return dispatcher

    def __call__(self, *args: Any) -> Any:
        return (self._dispatcher or self.ready())(*args)


def ready_all(*modules: ModuleType) -> int:
    """Compile (or load) every kernel of these modules now; returns how many (the Docker build)."""
    kernels = [k for m in modules for k in vars(m).values() if isinstance(k, Kernel)]
    for k in kernels:
        k.ready()
    return len(kernels)


def compiled(signature: str, **options: Any) -> Callable[[Callable[..., Any]], Kernel]:
    """numba.njit with a fixed signature, cached on disk where a cache directory is writable.

    FASTMATH, nogil and ERROR_MODEL unless `options` say otherwise (model/sampling/draw.py keeps
    strict IEEE maths).  Compiled at the first call, so importing a module of kernels does no
    work."""

    def wrap(fn: Callable[..., Any]) -> Kernel:
        defaults = {"fastmath": FASTMATH, "nogil": True, "error_model": ERROR_MODEL}
        return Kernel(fn, signature, {**defaults, **options})

    return wrap


def use_tbb() -> str:
    """Run the parallel kernels on numba's TBB threading layer; returns the layer chosen.

    Measured on the 2-core AMD EPYC dev VM (2026-11-30): with GNU OpenMP (numba's default) every
    parallel call made from a thread other than the process's first costs ~55 µs more (a (2, 512) @
    (512, 2048) product: 37 µs from the main thread, 93 µs from the engine's), so the server's
    engine thread ran a one-sequence step slower on 2 threads than on 1.  TBB's shared pool gives 37
    µs from any thread.  The `tbb` wheel installs libtbb under the environment's lib/, where numba
    does not look, so it is loaded here by path.  NUMBA_THREADING_LAYER, when set, wins; without the
    wheel numba's default stays (same bits: the layer never changes them).
    """
    chosen = os.environ.get("NUMBA_THREADING_LAYER")
    if chosen and chosen != "tbb":
        return chosen
    try:
        found = [f for f in importlib.metadata.files("tbb") or () if f.name == "libtbb.so.12"]
        ctypes.CDLL(str(found[0].locate()), mode=ctypes.RTLD_GLOBAL)
    except (importlib.metadata.PackageNotFoundError, IndexError, OSError) as exc:
        log.info("TBB unavailable (%s); numba picks its default threading layer", exc)
        return chosen or "default"
    # Not in the environment: a child process that does not call this would ask for TBB without
    # having loaded it.  Read at the first parallel call, so no kernel may run before this one.
    numba.config.THREADING_LAYER = "tbb"  # type: ignore[attr-defined]
    return "tbb"
