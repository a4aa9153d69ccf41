"""Import TensorFlow without the log lines its native library prints while it loads.

    from model.runtime.native_log import import_tensorflow
    import_tensorflow()          # at an entry point (CLI, server lifespan, training), before Keras

TensorFlow 2.21 logs through absl.  Its libtensorflow_framework.so sets absl's minimum level from
`TF_CPP_MIN_LOG_LEVEL` in one static initialiser, but another one (port.cc, "oneDNN custom
operations are on") logs at INFO before it, on every x86 CPU, and absl adds "WARNING: All log
messages before absl::InitializeLog() is called are written to STDERR" in front; a second shared
object carries its own copy of both, so four lines in all.  No setting reaches them: absl reads no
environment variable, and the notice is printed whatever `TF_ENABLE_ONEDNN_OPTS` says (which we
leave alone: it changes numerics).  So while the library loads, file descriptor 2 points at an
in-memory file; then the lines are written to the real stderr, minus absl's notice and the lines
below `TF_CPP_MIN_LOG_LEVEL`: the level TensorFlow itself applies to every later line.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from types import ModuleType
from typing import IO

LEVEL_VAR = "TF_CPP_MIN_LOG_LEVEL"
ABSL_NOTICE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
)
# absl's prefix: severity, MMDD hh:mm:ss.micros, thread id, file:line] (before absl is initialised
# the date is 0000 00:00 and the seconds count from the epoch).  A message's further lines have no
# prefix and are kept: better a stray line than a hidden error.
ABSL_LINE = re.compile(rb"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^ \]]+:\d+\] ")
SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def import_tensorflow(min_level: int = 2) -> ModuleType:
    """Import TensorFlow, showing only its log lines at `TF_CPP_MIN_LOG_LEVEL` or above.

    `min_level` is the default for that variable (2: errors only); a value already set wins.
    """
    os.environ.setdefault(LEVEL_VAR, str(min_level))
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    level = _level(os.environ[LEVEL_VAR])
    with filtered_stderr(level) if level > 0 else contextlib.nullcontext():
        import tensorflow

    return tensorflow


def keep(line: bytes, level: int) -> bool:
    """Whether a line printed while the library loaded goes on to stderr."""
    if line.rstrip(b"\r\n") == ABSL_NOTICE:
        return level <= 0
    match = ABSL_LINE.match(line)
    return match is None or SEVERITY[match.group(1)] >= level


@contextlib.contextmanager
def filtered_stderr(level: int) -> Iterator[None]:
    """Hold what is written to file descriptor 2 (by C++ and Python alike), then pass on what
    `keep`s.

    A file, not a pipe: the library logs while Python holds the import lock and the GIL, so no
    thread could drain a pipe, and a full pipe would hang the import.
    """
    try:
        real = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    held = _memory_file()
    sys.stderr.flush()
    os.dup2(held.fileno(), 2)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        os.dup2(real, 2)
        os.close(real)
        held.seek(0)
        kept = b"".join(line for line in held if keep(line, level))
        held.close()
        with contextlib.suppress(OSError):
            while kept:
                kept = kept[os.write(2, kept) :]


def _memory_file() -> IO[bytes]:
    # memfd: no file system needed (the Docker image runs read-only); elsewhere a temporary file.
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("tensorflow-stderr"), "w+b")
    return tempfile.TemporaryFile()


def _level(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0  # TensorFlow treats a bad value as 0: show everything
