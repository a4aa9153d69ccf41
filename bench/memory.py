"""Memorisation index: a suffix array (model/reading/memory.py) against a hashed n-gram set, on one
corpus.

    .venv/bin/python -m bench.memory --corpus ../shared/data/tinyshakespeare.txt

Prints size on disk, build time and the time to mark a 5,000-char text (half copied from the
training text, half not) for each, and checks that both mark the same chars.  The n-gram set is the
sorted unique 64-bit polynomial hashes of every 24-char window: a lookup hashes every window of the
query and binary-searches them all at once (NumPy), but it answers only "is this window somewhere" —
no position, one fixed n, spans stitched from windows.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import heading
from model.reading import MemoryIndex
from model.reading.memory import read_training_text, suffix_array

N = 24
BASE = np.uint64(1_000_003)


def window_hashes(text: str, n: int = N) -> np.ndarray:
    """Polynomial hash (mod 2^64) of every n-char window, uint64 (len(text) - n + 1,)."""
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.uint64)
    count = len(codes) - n + 1
    if count <= 0:
        return np.zeros(0, np.uint64)
    h = np.zeros(count, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            h = h * BASE + codes[j : j + count]
    return h


def ngram_marks(table: np.ndarray, text: str, n: int = N) -> np.ndarray:
    """Bool per char of `text`: inside some n-char window whose hash is in `table`."""
    h = window_hashes(text, n)
    pos = np.searchsorted(table, h).clip(max=len(table) - 1)
    hit = table[pos] == h
    marks = np.zeros(len(text), bool)
    for start in np.flatnonzero(hit):
        marks[start : start + n] = True
    return marks


def sa_marks(index: MemoryIndex, text: str, n: int = N) -> np.ndarray:
    marks = np.zeros(len(text), bool)
    for span in index.copied_spans(text, n):
        marks[span["start"] : span["end"]] = True
    return marks


def timed(fn: Any, *args: Any, rounds: int = 3) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(rounds):
        began = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - began)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("../shared/data/tinyshakespeare.txt"))
    args = parser.parse_args()
    text = read_training_text(args.corpus)
    rng = np.random.default_rng(1)
    copied = "".join(text[s : s + 250] for s in rng.integers(0, len(text) - 250, 10))
    fresh = "".join(rng.choice(list("abcdefghij klmnop\n"), 2500))
    query = copied + fresh

    sa_build, sa = timed(suffix_array, text, rounds=1)
    index = MemoryIndex(text, sa)
    ng_build, table = timed(lambda t: np.unique(window_hashes(t)), text, rounds=1)
    sa_look, a = timed(sa_marks, index, query)
    ng_look, b = timed(ngram_marks, table, query)
    print(heading("bench.memory"))
    print(
        f"corpus: {args.corpus} ({len(text):,} training chars); query {len(query):,} chars, n = {N}"
    )
    print("| index | size | build s | mark 5,000 chars ms | position | any n |")
    print("|---|---|---|---|---|---|")
    sa_size = (sa.nbytes + len(text.encode())) / 1e6
    print(
        f"| suffix array + text | {sa_size:.1f} MB | {sa_build:.2f} | "
        f"{sa_look * 1e3:.1f} | yes | yes |"
    )
    print(
        f"| hashed {N}-gram set | {table.nbytes / 1e6:.1f} MB | {ng_build:.2f} | "
        f"{ng_look * 1e3:.1f} | no | no |"
    )
    print(
        f"lookup ratio n-gram / suffix array: {ng_look / sa_look:.2f}; "
        f"same chars marked: {bool((a == b).all())}"
    )
    print(
        f"marked: {int(a.sum())} of {len(copied)} copied chars, "
        f"{int(a[len(copied) :].sum())} of the fresh ones"
    )


if __name__ == "__main__":
    main()
