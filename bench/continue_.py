"""Continue without re-priming: time to the first char of a Continue, against a cold prompt.

    python -m bench.continue_ [--model DIR] [--chars 5000] [--rounds 3]

Each round generates `--chars` chars after a short prompt on an engine with its prefix cache
(model/engine/prefix_cache.py), then submits prompt + that text as a new prompt (what the page's
Continue sends) to the same engine, and the same prompt to an engine without the cache (a cold
prompt of that length).  Prints the medians of the times from submit to the first char and their
ratio (target: Continue ≤ 0.1× cold), and a branch at the middle of the text.  Never passes or
fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.machine import heading
from model.artifact import load_artifact
from model.cells import LSTMStack
from model.engine import Engine
from model.event import Chunk
from model.runtime import configure
from model.sampling import Generation, GenerationRequest, SamplingParams

PROMPT = "ROMEO:\n"


class Timed:
    """A sink that notes when the first char arrives and keeps the text."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.parts: list[str] = []
        self.ended = threading.Event()

    def on_chunk(self, chunk: Chunk) -> None:
        if self.first is None:
            self.first = time.perf_counter() - self.started
        self.parts.append(chunk.text)

    def on_done(self, generation: Generation) -> None:
        self.ended.set()

    def on_error(self, exc: BaseException) -> None:
        self.ended.set()


def run(engine: Engine, request: GenerationRequest) -> Timed:
    sink = Timed()
    engine.submit(request, sink)
    sink.ended.wait(600)
    assert sink.first is not None, "no char came"
    return sink


def main(argv: list[str] | None = None) -> int:
    configure()  # numba: kernel cache, threading layer (model/runtime)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("model/pretrained/shakespeare"))
    parser.add_argument("--chars", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    artifact = load_artifact(args.model)
    model, vocab, label = artifact.model, artifact.vocab, f"{args.model} ({artifact.name})"
    stack = LSTMStack.from_keras(model)
    warm = Engine(stack, vocab, name="cached")
    cold = Engine(stack, vocab, name="cold", prefix_cache_bytes=0)
    warm.start()
    cold.start()
    sampling = SamplingParams(0.8)
    cont, branch, fresh = [], [], []
    for r in range(args.rounds):
        text = "".join(run(warm, GenerationRequest(PROMPT, args.chars, sampling, seed=r)).parts)
        follow = GenerationRequest(PROMPT + text, 20, sampling, seed=100 + r)
        cont.append(run(warm, follow).first or 0.0)
        middle = len(text) // 2
        other = "e" if text[middle] != "e" else "a"
        branch.append(
            run(warm, GenerationRequest(PROMPT + text[:middle] + other, 20, sampling, seed=r)).first
            or 0.0
        )
        fresh.append(run(cold, follow).first or 0.0)
    warm.stop()
    cold.stop()
    print(heading("bench.continue_"))
    print(f"model: {label}; {args.rounds} rounds, medians (ms)")
    print("| first char after | ms | spread |\n|---|---|---|")
    rows = {f"cold prompt of {len(PROMPT) + args.chars:,} chars": fresh, "Continue (cached)": cont}
    rows["branch at the middle (cached)"] = branch
    for name, times in rows.items():
        spread = f"{min(times) * 1e3:.1f}–{max(times) * 1e3:.1f}"
        print(f"| {name} | {statistics.median(times) * 1e3:.1f} | {spread} |")
    f = statistics.median(fresh)
    print(f"Continue / cold: {statistics.median(cont) / f:.3f} (target ≤ 0.1)")
    print(f"branch / cold: {statistics.median(branch) / f:.3f}")
    print(f"cache: {warm.prefix_cache.stats()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
