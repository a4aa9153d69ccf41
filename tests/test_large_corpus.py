"""A corpus larger than it is wise to hold in memory trains with flat resident memory.

The training CLI runs twice with the same flags, on a 1 MB corpus and on a 200 MB one, and
the peak RSS of each process (ru_maxrss from wait4) is compared.  The streaming pipeline
costs the big run about 35 MB more (bigger read chunks, a bigger held-out sample for the
card).  The bound is 100 MB, half a byte per corpus char: any copy of the corpus breaks it
(the text as a str is 200 MB, the ids as bytes 180 MB, as int64 1.6 GB), and so do the
id memory-map's pages left mapped in the process (~170 MB: this test caught that once).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from model.artifact import load_artifact
from tests.conftest import ROOT

MB = 1 << 20
LEAK_BOUND = 100 * MB
FLAGS = [
    "--units",
    "24",
    "--embedding-dim",
    "8",
    "--layers",
    "1",
    "--seq-len",
    "128",
    "--batch-size",
    "256",
]
FLAGS += ["--epochs", "1", "--max-steps", "20", "--backup-every", "1000"]


def write_corpus(path: Path, megabytes: int) -> Path:
    """`megabytes` MiB of random words, written 1 MiB at a time."""
    rng = random.Random(0)
    words = [
        "to",
        "be",
        "or",
        "not",
        "that",
        "is",
        "the",
        "question:",
        "whether",
        "'tis",
        "nobler\n",
        "Привет",
    ]
    block = " ".join(rng.choice(words) for _ in range(250_000)).encode()[:MB]
    block = block[: len(block.decode("utf-8", errors="ignore").encode())]  # whole chars only
    with open(path, "wb") as fh:
        for _ in range(megabytes):
            fh.write(block)
    return path


def peak_rss(corpus: Path, out: Path, work: Path, timeout: float) -> int:
    """Train on `corpus` in a child process; its peak resident set size in bytes."""
    log = out.with_suffix(".log")
    cmd = [
        sys.executable,
        "-m",
        "training.train",
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--work-dir",
        str(work),
    ]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [*cmd, *FLAGS], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    timer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, log.read_text("utf-8", errors="replace")[-3000:]
    return usage.ru_maxrss * 1024  # KiB on Linux


@pytest.mark.slow
def test_a_200_mb_corpus_trains_with_flat_resident_memory(tmp_path: Path) -> None:
    small = write_corpus(tmp_path / "small.txt", 1)
    big = write_corpus(tmp_path / "big.txt", 200)
    try:
        base = peak_rss(small, tmp_path / "m-small", tmp_path / "w-small", timeout=240)
        peak = peak_rss(big, tmp_path / "m-big", tmp_path / "w-big", timeout=420)
        card = load_artifact(tmp_path / "m-big").card
        assert card["corpus"]["bytes"] == big.stat().st_size > 199 * MB
        ids = next((tmp_path / "w-big").glob("ids-*.npy"))
        assert ids.stat().st_size < card["corpus"]["chars"] + 4096  # one byte per char on disk
        print(f"peak RSS: 1 MB corpus {base / MB:.0f} MB, 200 MB corpus {peak / MB:.0f} MB")
        assert peak - base < LEAK_BOUND, (
            f"1 MB corpus: {base / MB:.0f} MB, 200 MB corpus: {peak / MB:.0f} MB"
        )
        assert peak < 2048 * MB
    finally:  # 400 MB that pytest would otherwise keep in its last three temp dirs
        for path in (big, tmp_path / "w-big"):
            for file in [path] if path.is_file() else path.glob("ids-*.npy"):
                file.unlink(missing_ok=True)
