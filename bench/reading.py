"""Reading the model over real HTTP: the gates against scoring, influence, and the model's figures.

    python -m bench.reading [--model-dir DIR] [--rounds 7]    # (also `make bench`; about 1 min)
    python -m bench.reading --figures [--corpus FILE]         # + model.reading.figures (≤ 10 min)

Starts `uvicorn app.main:app` on a free loopback port with the bundled model (bench/http.py's
`start_server`) and times, client side, in interleaved rounds (each round a fresh slice of the
model's text, so nothing is cached; the order of score and gates alternates):
- `/api/score` on 2,000 chars and `/api/gates` on the same 2,000 chars × 16 units of the last
  layer; their ratio per round (target ≤ 1.5, issue 21);
- `/api/influence` with 256 chars of context: the first call (it builds and traces the
  TensorFlow gradient) apart from the median of the later ones (target ≤ 1 s).
With --figures, `python -m model.reading.figures` on the model (a temporary directory holding
links to its files, so the bundled model is left as it is) after the server has stopped; target
≤ 10 min for the bundled model on 2 cores.  Prints the CPU model and the kernels' instruction
set; medians with their spread.  Never passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.cells import describe
from bench.http import ROOT, start_server

DEFAULT_MODEL = ROOT / "model" / "pretrained" / "shakespeare"
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
TEXT_CHARS, UNITS, CONTEXT = 2000, 16, 256
GATES_TARGET, INFLUENCE_TARGET_S, FIGURES_TARGET_S = 1.5, 1.0, 600.0


class Texts:
    """Slices of the model's own text (memory.txt) or the corpus at random offsets."""

    def __init__(self, model_dir: Path, corpus: Path, seed: int = 0):
        found = [p for p in (model_dir / "memory.txt", corpus) if p.is_file()]
        fallback = "ROMEO:\nWhat light through yonder window breaks?\n" * 2000
        self.text = found[0].read_text("utf-8") if found else fallback
        self.rng = random.Random(seed)

    def take(self, chars: int) -> str:
        start = self.rng.randrange(len(self.text) - chars)
        return self.text[start : start + chars]


def post(client: httpx.Client, path: str, body: dict[str, Any]) -> float:
    """Seconds for one POST, its whole answer read; a non-200 answer stops the bench."""
    began = time.perf_counter()
    answer = client.post(path, json=body)
    took = time.perf_counter() - began
    if answer.status_code != 200:
        raise SystemExit(f"{path}: {answer.status_code} {answer.text[:500]}")
    return took


def shape(model_dir: Path) -> tuple[int, int]:
    """(layers, units) from the model's card."""
    config = json.loads((model_dir / "card.json").read_text("utf-8")).get("config", {})
    return int(config.get("layers", 1)), int(config.get("units", UNITS))


def measure(url: str, model_dir: Path, texts: Texts, rounds: int) -> dict[str, list[float]]:
    layers, units = shape(model_dir)
    gates = {"layer": layers - 1, "units": list(range(0, units, max(1, units // UNITS)))[:UNITS]}
    times: dict[str, list[float]] = {"score": [], "gates": [], "ratio": [], "influence": []}
    with httpx.Client(base_url=url, timeout=300) as client:
        post(client, "/api/score", {"text": texts.take(100)})  # warm-up: kernels, first requests
        post(client, "/api/gates", {"text": texts.take(100), **gates})
        times["first influence"] = [post(client, "/api/influence", influence(texts))]
        for r in range(rounds):
            text = texts.take(TEXT_CHARS)
            calls: list[tuple[str, dict[str, Any]]] = [("score", {"text": text})]
            calls.append(("gates", {"text": text, **gates}))
            for name, body in calls if r % 2 == 0 else calls[::-1]:
                times[name].append(post(client, f"/api/{name}", body))
            times["ratio"].append(times["gates"][-1] / times["score"][-1])
            times["influence"].append(post(client, "/api/influence", influence(texts)))
    return times


def influence(texts: Texts) -> dict[str, Any]:
    """A request explaining the char after CONTEXT chars of context."""
    return {"text": texts.take(CONTEXT + 1), "position": CONTEXT}


def figures_seconds(model_dir: Path, corpus: Path) -> tuple[float, str]:
    """Seconds `python -m model.reading.figures` takes on (links to) the model; its last line."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / model_dir.name
        copy.mkdir()
        for path in model_dir.iterdir():
            if path.is_file() and path.name != "figures.json":
                (copy / path.name).symlink_to(path.resolve())
        command = [sys.executable, "-m", "model.reading.figures", "--model", str(copy)]
        command += ["--corpus", str(corpus)]
        began = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        took = time.perf_counter() - began
    lines = (done.stdout + done.stderr).strip().splitlines() or [""]
    return took, lines[-1] if done.returncode == 0 else f"FAILED ({done.returncode}): {lines[-1]}"


def row(name: str, values: list[float], target: str = "", met: bool | None = None) -> None:
    spread = f"{min(values):.3f}–{max(values):.3f}" if len(values) > 1 else ""
    mark = "" if met is None else ("✓" if met else "✗")
    print(f"{name:52} {statistics.median(values):>8.3f} {spread:>13}   {target} {mark}")


def report(times: dict[str, list[float]], rounds: int) -> None:
    print(f"\n{'request (seconds, client side)':52} {'median':>8} {'spread':>13}   target")
    row(f"/api/score, {TEXT_CHARS:,} chars", times["score"])
    row(f"/api/gates, {TEXT_CHARS:,} chars × {UNITS} units, last layer", times["gates"])
    ratio = statistics.median(times["ratio"])
    target = f"≤ {GATES_TARGET}"
    row("gates / score, per round (a ratio)", times["ratio"], target, ratio <= GATES_TARGET)
    row(f"/api/influence, {CONTEXT} chars of context: first call", times["first influence"])
    later = statistics.median(times["influence"])
    target = f"≤ {INFLUENCE_TARGET_S:g} s"
    row("/api/influence: later calls", times["influence"], target, later <= INFLUENCE_TARGET_S)
    print(f"({rounds} interleaved rounds; each a fresh text)")


def main(argv: list[str] | None = None) -> int:
    what = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.reading", description=what)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--figures", action="store_true", help="also time model.reading.figures")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="for --figures")
    args = parser.parse_args(argv)
    if not (args.model_dir / "model.keras").is_file():
        raise SystemExit(f"no model at {args.model_dir} (bench.reading measures a trained model)")
    if args.figures and not args.corpus.is_file():
        raise SystemExit(f"--figures needs the model's corpus: no file at {args.corpus}")
    describe(f"bench.reading: {args.model_dir}")
    texts = Texts(args.model_dir, args.corpus)
    server, url = start_server(args.model_dir, TEXT_CHARS, 1)
    try:
        times = measure(url, args.model_dir, texts, args.rounds)
    finally:
        server.terminate()
        server.wait(30)
    report(times, args.rounds)
    if args.figures:
        seconds, line = figures_seconds(args.model_dir, args.corpus)
        met = seconds <= FIGURES_TARGET_S
        mark = "✓" if met else "✗"
        print(f"\npython -m model.reading.figures: {seconds:.0f} s (target ≤ 10 min) {mark}")
        print(f"  {line}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
