"""The cell finder: which LSTM cells track simple features of the text, measured on held-out text.

    python -m model.reading.finder --model model/pretrained/shakespeare --corpus
    ../shared/data/tinyshakespeare.txt

reads the held-out text (the last 10% of the corpus, as training splits it) through the network
and, for every layer, cell and state (h, the output; c, the cell state), the Pearson correlation
of its value after each char with these features of the text at that char:

    in_quotes      inside a "double-quoted" passage
    in_brackets    inside (), [] or {}
    line_position  chars since the last newline
    speaker_line   on a line that names a speaker ("ROMEO:" alone on its line)
    word_start     the char begins a word (a letter after a non-letter)
    newline_next   the next char is a newline

and writes the best few per feature (largest |r|) to `cells.json` in the model directory, which
`GET /api/models/{name}/cells` serves.  As in Karpathy, Johnson & Fei-Fei (2015), "Visualizing and
Understanding Recurrent Networks".  The text runs as STREAMS parallel slices through the step API,
with sums accumulated per step, so memory stays small whatever the text length.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CELLS_FILE = "cells.json"
STREAMS = 16
BEST = 5


def _in_quotes(text: str) -> np.ndarray:
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    return (np.cumsum(codes == ord('"')) % 2 == 1).astype(np.float64)


def _in_brackets(text: str) -> np.ndarray:
    codes = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    opens = np.isin(codes, [ord(c) for c in "([{"]).astype(np.int64)
    closes = np.isin(codes, [ord(c) for c in ")]}"]).astype(np.int64)
    return (np.cumsum(opens - closes) > 0).astype(np.float64)  # a closing char is already outside


def _line_position(text: str) -> np.ndarray:
    out, col = np.empty(len(text)), 0
    for t, ch in enumerate(text):
        col = 0 if ch == "\n" else col + 1
        out[t] = col
    return out


def _speaker_line(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    for m in re.finditer(r"^[A-Z][A-Za-z' ]{0,40}:$", text, re.MULTILINE):
        out[m.start() : m.end()] = 1
    return out


def _word_start(text: str) -> np.ndarray:
    return np.array(
        [ch.isalpha() and (t == 0 or not text[t - 1].isalpha()) for t, ch in enumerate(text)],
        np.float64,
    )


def _newline_next(text: str) -> np.ndarray:
    return np.array([text[t + 1 : t + 2] == "\n" for t in range(len(text))], np.float64)


FEATURES: dict[str, tuple[str, Callable[[str], np.ndarray]]] = {
    "in_quotes": ('inside a "double-quoted" passage', _in_quotes),
    "in_brackets": ("inside (), [] or {}", _in_brackets),
    "line_position": ("chars since the last newline", _line_position),
    "speaker_line": ('on a speaker\'s name line ("ROMEO:")', _speaker_line),
    "word_start": ("the char begins a word", _word_start),
    "newline_next": ("a newline comes next", _newline_next),
}


def feature_matrix(text: str) -> np.ndarray:
    """(len(text), features) in the order of FEATURES."""
    return np.stack([fn(text) for _, fn in FEATURES.values()], axis=1)


def correlations(
    stack: Any, vocab: Any, text: str, streams: int = STREAMS
) -> dict[str, np.ndarray]:
    """Pearson r of every cell with every feature: {"h"|"c": (layers, units, features)}; chars
    outside the vocab are dropped first.  NaN where a feature never varies."""
    text = "".join(ch for ch in text if ch in vocab)
    feats = feature_matrix(text)
    streams = max(1, min(streams, len(text) // 2))
    length = len(text) // streams
    ids = vocab.encode(text[: streams * length]).reshape(streams, length)
    f = feats[: streams * length].reshape(streams, length, -1)  # (streams, time, features)
    n = streams * length
    state = stack.zero_state(streams)
    kinds = "hc" if state.c.shape[-1] else "h"  # a GRU or a plain RNN has no cell state
    sums = {
        w: [np.zeros((stack.num_layers, stack.units)) for _ in range(2)] for w in kinds
    }  # Σa, Σa²
    cross = {w: np.zeros((stack.num_layers, stack.units, f.shape[2])) for w in kinds}  # Σa·f
    for t in range(length):
        stack.step(ids[:, t], state)
        for w, a in (("h", state.h), ("c", state.c))[: len(kinds)]:
            a64 = a.astype(np.float64)  # (layers, streams, units)
            sums[w][0] += a64.sum(1)
            sums[w][1] += (a64 * a64).sum(1)
            cross[w] += np.einsum("lbu,bf->luf", a64, f[:, t])
    fs, fs2 = f.sum((0, 1)), (f * f).sum((0, 1))
    out = {}
    for w in kinds:
        sa, sa2 = sums[w]
        cov = cross[w] - sa[..., None] * fs / n
        var_a = np.maximum(sa2 - sa * sa / n, 0)[..., None]
        var_f = np.maximum(fs2 - fs * fs / n, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cov / np.sqrt(var_a * var_f)
        r[:, :, var_f <= 1e-12] = np.nan
        out[w] = r
    return out


def best_cells(r: dict[str, np.ndarray], best: int = BEST) -> dict[str, Any]:
    """Per feature, the `best` cells by |r|: [{"layer", "unit", "what", "r"}, ...]."""
    found: dict[str, Any] = {}
    for k, (name, (description, _)) in enumerate(FEATURES.items()):
        rows = [
            (float(r[w][lay, u, k]), lay, u, w) for w in r for lay, u in np.ndindex(r[w].shape[:2])
        ]
        rows = [row for row in rows if not np.isnan(row[0])]
        rows.sort(key=lambda row: -abs(row[0]))
        cells = [
            {"layer": int(lay), "unit": int(u), "what": w, "r": round(v, 4)}
            for v, lay, u, w in rows[:best]
        ]
        found[name] = {"description": description, "cells": cells}
    return found


def held_out_text(corpus: Path) -> str:
    """The held-out part of a corpus: the last 10%, as training splits it."""
    from model.reading.memory import corpus_text

    text, split = corpus_text(corpus)
    return text[split:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.reading.finder", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", type=Path, required=True, help="a trained model directory")
    parser.add_argument(
        "--corpus", type=Path, required=True, help="the UTF-8 corpus it was trained on"
    )
    parser.add_argument(
        "--max-chars", type=int, default=200_000, help="held-out chars read at most"
    )
    args = parser.parse_args(argv)
    from model.artifact import ArtifactError, load_artifact
    from model.cells.stack import LSTMStack
    from model.runtime import configure, import_tensorflow

    configure()  # numba: kernel cache, threading layer (model/runtime)

    import_tensorflow()  # its load-time log lines stay off stderr
    # small products: extra BLAS threads only spin (model/cells/stack.py)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    try:
        art = load_artifact(args.model)
        text = held_out_text(args.corpus)[: args.max_chars]
    except (ArtifactError, OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    r = correlations(LSTMStack.from_keras(art.model), art.vocab, text)
    result = {
        "model": art.name,
        "corpus": args.corpus.name,
        "held_out_chars": len(text),
        "features": best_cells(r),
    }
    tmp = args.model / f".{CELLS_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False), "utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, args.model / CELLS_FILE)
    for name, entry in result["features"].items():
        top = entry["cells"][0] if entry["cells"] else None
        print(
            f"{name:14} "
            + (
                f"layer {top['layer']} {top['what']}[{top['unit']}] r={top['r']:+.3f}"
                if top
                else "-"
            )
        )
    print(f"wrote {args.model / CELLS_FILE} from {len(text):,} held-out chars")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
