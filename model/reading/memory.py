"""What the model copied: an index of its training text, and the verbatim spans a text shares with
it.

    python -m model.reading.memory --model model/pretrained/shakespeare --corpus
    ../shared/data/tinyshakespeare.txt

writes `memory.txt` (the training text: the first 90% of the corpus, as training splits it) and
`memory.sa.npy` (its suffix array, int32, one entry per char) into the model directory;
training.train writes them too when the corpus is small enough.  Then

    index = MemoryIndex.load(model_dir)
    index.copied_spans(text, min_chars=24)   # [{"start", "end", "source": {"offset", "line",
    "line_text"}}]

returns every maximal run of ≥ min_chars chars of `text` that appears verbatim in the training
text, with one place where it appears.  A suffix array rather than a hashed n-gram set
(bench/memory.py measures both): 4 bytes per char against 8, any min_chars, the exact longest
match and where it is; a lookup is one binary search per position of the text.
"""

from __future__ import annotations

import argparse
import array
import os
import sys
from bisect import bisect_left, bisect_right
from pathlib import Path
from typing import Any

import numpy as np

INDEX_FILE, TEXT_FILE = "memory.sa.npy", "memory.txt"
HELD_OUT_FRACTION = 0.1  # as training/corpus.py: the last 10% is never trained on
MAX_INDEX_CHARS = (
    20_000_000  # training writes an index up to this size (the build needs ~40 bytes/char)
)
LINE_CHARS = 300


def suffix_array(text: str) -> np.ndarray:
    """Start offsets of the suffixes of `text` in sorted order (prefix doubling in NumPy), int32."""
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int32)
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    rank = np.unique(codes, return_inverse=True)[1].astype(np.int64)
    k = 1
    while True:
        second = np.zeros(n, np.int64)  # 0: past the end, which sorts first
        second[: n - k] = rank[k:] + 1
        key = rank * (n + 1) + second  # < n * (n + 2): fits int64 for any corpus this is meant for
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        new = np.concatenate([[0], np.cumsum(sorted_key[1:] != sorted_key[:-1])])
        rank = np.empty(n, np.int64)
        rank[order] = new
        if new[-1] == n - 1 or k >= n:
            return order.astype(np.int32)
        k *= 2


def write_index(model_dir: Path, text: str) -> None:
    """Write the index of `text` into `model_dir` (each file replaced atomically, text first)."""
    sa = suffix_array(text)
    for name in (TEXT_FILE, INDEX_FILE):
        tmp = model_dir / f".{name}.tmp-{os.getpid()}"
        with open(tmp, "wb") as fh:
            if name == TEXT_FILE:
                fh.write(text.encode("utf-8"))
            else:
                np.save(fh, sa)
        tmp.chmod(0o644)
        os.replace(tmp, model_dir / name)


def index_after_training(
    model_dir: Path, vocab: Any, train_ids: np.ndarray, mode: str = "auto"
) -> str:
    """training.train's hook: index the training text unless `mode` is "no" or ("auto") it is too
    big."""
    if mode == "no" or (mode == "auto" and len(train_ids) > MAX_INDEX_CHARS):
        why = "--memory-index no" if mode == "no" else "corpus over the limit"
        return f"no memorisation index ({why})"
    text = "".join(np.asarray(vocab.chars, dtype=object)[np.asarray(train_ids)])
    write_index(model_dir, text)
    return f"memorisation index of {len(text):,} chars"


class MemoryIndex:
    def __init__(self, text: str, sa: np.ndarray):
        self.text = text
        # Python ints on indexing: fast bisect
        self.sa = array.array("i", np.asarray(sa, np.int32).tobytes())
        codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        self.newlines = np.flatnonzero(codes == 10)

    @classmethod
    def load(cls, model_dir: Path) -> MemoryIndex:
        text = (Path(model_dir) / TEXT_FILE).read_text("utf-8")
        sa = np.load(Path(model_dir) / INDEX_FILE)
        if len(sa) != len(text):
            raise ValueError(f"{model_dir / INDEX_FILE}: {len(sa)} entries for {len(text)} chars")
        return cls(text, sa)

    def find(self, pattern: str) -> tuple[int, int]:
        """The range of suffix-array rows whose suffixes start with `pattern` (empty: lo == hi)."""
        text, sa, k = self.text, self.sa, len(pattern)

        def key(j: int) -> str:
            return text[sa[j] : sa[j] + k]

        lo = bisect_left(range(len(sa)), pattern, key=key)
        return lo, bisect_right(range(lo, len(sa)), pattern, key=key) + lo

    def _longest(self, text: str, i: int, known: int) -> int:
        """Longest L ≥ known such that text[i:i+L] is in the training text (text[i:i+known] is)."""
        good, step, bad = known, known, None
        while bad is None:  # gallop: double until it fails or reaches the end
            trial = min(good + step, len(text) - i)
            if trial == good:
                return good
            lo, hi = self.find(text[i : i + trial])
            if lo == hi:
                bad = trial
            else:
                good, step = trial, step * 2
        while bad - good > 1:  # then bisect between the last success and the failure
            mid = (good + bad) // 2
            lo, hi = self.find(text[i : i + mid])
            good, bad = (mid, bad) if lo < hi else (good, mid)
        return good

    def copied_spans(self, text: str, min_chars: int = 24) -> list[dict[str, Any]]:
        """Every maximal run of ≥ min_chars chars of `text` found verbatim, in order of start."""
        spans: list[dict[str, Any]] = []
        end = 0  # end of the last span: a run starting later counts only if it reaches past it
        for i in range(len(text)):
            need = max(min_chars, end - i + 1)
            if i + need > len(text):
                break
            lo, hi = self.find(text[i : i + need])
            if lo == hi:
                continue
            end = i + self._longest(text, i, need)
            lo, hi = self.find(text[i:end])
            first = min(self.sa[lo : min(hi, lo + 1000)])  # the earliest of (the first 1000) places
            spans.append({"start": i, "end": end, "source": self.source(first)})
        return spans

    def source(self, offset: int) -> dict[str, Any]:
        """Where `offset` is in the training text: {"offset", "line" (1-based), "line_text"}."""
        before = int(np.searchsorted(self.newlines, offset))  # newlines before offset
        start = int(self.newlines[before - 1]) + 1 if before else 0
        stop = int(self.newlines[before]) if before < len(self.newlines) else len(self.text)
        return {
            "offset": int(offset),
            "line": before + 1,
            "line_text": self.text[start : min(stop, start + LINE_CHARS)],
        }


def corpus_text(corpus: Path) -> tuple[str, int]:
    """A corpus (a UTF-8 file or a directory of them, sorted) as training reads it, and its
    split."""
    files = [corpus]
    if corpus.is_dir():
        files = sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("."))
    text = "".join(f.read_text("utf-8") for f in files)
    return text, len(text) - int(len(text) * HELD_OUT_FRACTION)


def read_training_text(corpus: Path) -> str:
    """The training part of a corpus: all but the last 10%."""
    text, split = corpus_text(corpus)
    return text[:split]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.reading.memory", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory")
    parser.add_argument(
        "--corpus", type=Path, required=True, help="the UTF-8 corpus it was trained on"
    )
    args = parser.parse_args(argv)
    if not args.model.is_dir() or not args.corpus.exists():
        print(
            f"error: {args.model if not args.model.is_dir() else args.corpus}: not found",
            file=sys.stderr,
        )
        return 2
    try:
        text = read_training_text(args.corpus)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: {args.corpus}: {exc}", file=sys.stderr)
        return 2
    write_index(args.model, text)
    size = (args.model / INDEX_FILE).stat().st_size + (args.model / TEXT_FILE).stat().st_size
    print(f"indexed {len(text):,} training chars into {args.model} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
