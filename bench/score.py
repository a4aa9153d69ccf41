"""Scoring beside generation: how much a long /api/score reading slows a running stream.

    .venv/bin/python -m bench.score [--model model/pretrained/shakespeare] [--chars 3000]

On one engine: a stream of --chars chars alone; then the same stream while a text of --chars chars
is scored (model/reading/score.py's Reading, run by the engine in step-sized slices).  Prints the
stream's chars/s both ways, their ratio (the engine gives scoring one step's worth per step, so ≥
0.5 is the design) and the scoring rate.  Medians of 3 rounds; never pass/fail.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Any

from bench.machine import heading
from model.reading import Reading
from model.sampling import GenerationRequest


def stream(engine: Any, chars: int, reading: Reading | None) -> tuple[float, float | None]:
    """(stream chars/s, scoring chars/s or None) for one round."""
    done = threading.Event()

    class Sink:
        def on_chunk(self, chunk: Any) -> None:
            pass

        def on_done(self, generation: Any) -> None:
            done.set()

        def on_error(self, exc: BaseException) -> None:
            done.set()

    began = time.perf_counter()
    engine.submit(GenerationRequest(prompt="\n", max_chars=chars, seed=1), Sink())
    if reading is not None:
        engine.submit_work(reading)
    done.wait()
    stream_s = time.perf_counter() - began
    if reading is None:
        return chars / stream_s, None
    reading.finished.wait()
    return chars / stream_s, len(reading.text) / (time.perf_counter() - began)


def main() -> None:
    from model.artifact import load_artifact
    from model.cells import LSTMStack
    from model.engine import Engine
    from model.runtime import configure, import_tensorflow

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("model/pretrained/shakespeare"))
    parser.add_argument("--chars", type=int, default=3000)
    args = parser.parse_args()
    configure()  # numba: kernel cache, threading layer (model/runtime)
    import_tensorflow()
    art = load_artifact(args.model)
    stack = LSTMStack.from_keras(art.model)
    engine = Engine(stack, art.vocab, name="bench")
    engine.start()
    text = ("ROMEO:\nBut soft, what light through yonder window breaks?\n" * 200)[: args.chars]
    alone, beside, scoring = [], [], []
    try:
        for _ in range(3):
            alone.append(stream(engine, args.chars, None)[0])
            rate, score_rate = stream(engine, args.chars, Reading(stack, art.vocab, text))
            beside.append(rate)
            scoring.append(score_rate or 0.0)
    finally:
        engine.stop()
    a, b, s = statistics.median(alone), statistics.median(beside), statistics.median(scoring)
    print(heading("bench.score"))
    print(
        f"model {art.name}, {args.chars:,} chars streamed and {len(text):,} scored; "
        "medians of 3 rounds"
    )
    print("| stream | chars/s |\n|---|---|")
    print(f"| alone | {a:,.0f} |\n| while a text is scored | {b:,.0f} |")
    print(f"ratio {b / a:.2f} (design ≥ 0.5); scoring ran at {s:,.0f} chars/s beside the stream")


if __name__ == "__main__":
    main()
