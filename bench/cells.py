"""Each cell's engine speed against its own bound: the LSTM, GRU and plain RNN comparison models.

    python -m bench.cells [--models-dir model/pretrained] [--rounds 3]   # native, then AVX2
    python -m bench.cells --native-only            # or --avx2: forced to AVX2 only

About 1 minute per instruction set on 2 quiet cores, for the three small models.  For each of
shakespeare-lstm, shakespeare-gru and shakespeare-rnn under --models-dir (a missing one is
skipped with a note): the engine's chars/s with 1 sequence and with 32 at once (aggregate), and
the same model's bound, its per-char products alone in NumPy float32 (OpenBLAS sgemm): per layer
h @ U, the deeper layers' x @ W, and the dense product, with whichever of 1 or 2 BLAS threads and
of separate or stacked products is faster.  Target (issue 22): each cell at 32 sequences ≥ 0.9×
its own batch-32 bound.  Medians of interleaved rounds.  The forced-AVX2 run is a child process,
as bench/engine.py's (whose runners it shares: they are defined here).  Never passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from bench.gemm import SETTLE_S
from bench.machine import AVX2_ENV, forced_avx2, heading, host_has_avx2
from model.cells import Stack, gemm
from model.engine import Engine
from model.event import Chunk
from model.sampling import Generation, GenerationRequest, SamplingParams
from model.vocab import Vocab

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "ROMEO:\nWhat light through yonder window breaks?\n"
MODELS = ("shakespeare-lstm", "shakespeare-gru", "shakespeare-rnn")
TARGET_32 = 0.9  # each cell at 32 sequences / its own batch-32 bound (issue 22)


# --- the forced-AVX2 child ------------------------------------------------------------------
def describe(title: str) -> None:
    """The heading every table of this script and bench/engine.py starts with."""
    print(f"\n{heading(title)}")


def native_is_avx2() -> bool:
    return gemm.ISA == "avx2" and not forced_avx2()


def run_forced_avx2(module: str, args: list[str]) -> dict[str, Any] | None:
    """Run `python -m module --avx2 ARGS` with numba, OpenBLAS and oneDNN forced to AVX2 and a
    kernel cache of its own (kept: a second run loads instead of compiling); its output goes to
    ours.  Returns what it wrote with --report, or None when it failed."""
    cache = Path(os.environ.get("NUMBA_CACHE_DIR") or tempfile.gettempdir()) / "char-lstm-avx2"
    env = {**os.environ, **AVX2_ENV, "ONEDNN_MAX_CPU_ISA": "AVX2", "NUMBA_CACHE_DIR": str(cache)}
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        command = [sys.executable, "-m", module, "--avx2", "--report", str(report), *args]
        done = subprocess.run(command, cwd=ROOT, env=env)
        if done.returncode != 0 or not report.is_file():
            print(f"\nthe forced-AVX2 run failed (exit status {done.returncode})")
            return None
        return dict(json.loads(report.read_text()))


def add_target_flags(parser: argparse.ArgumentParser) -> None:
    """--avx2, --native-only and the child's --report."""
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--avx2", action="store_true", help="only the run forced to AVX2")
    which.add_argument("--native-only", action="store_true", help="only the native run")
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)  # the child's medians


def child_args(argv: list[str] | None) -> list[str]:
    """The command line without the target flags, for the child."""
    args = sys.argv[1:] if argv is None else argv
    return [a for a in args if a not in ("--avx2", "--native-only")]


# --- measurements ----------------------------------------------------------------------------
def mean_time(fn: Callable[[], Any], reps: int) -> float:
    """Seconds per call over `reps` calls."""
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


class TimingSink:
    def __init__(self, done: threading.Semaphore):
        self.times: list[float] = []  # when each chunk arrived: a step's char or a burst's
        self.chars: list[int] = []  # how many chars each brought
        self.finished = 0.0
        self._done = done

    def on_chunk(self, chunk: Chunk) -> None:
        self.times.append(time.perf_counter())
        self.chars.append(len(chunk.text))

    def on_done(self, generation: Generation) -> None:
        self.finished = time.perf_counter()
        self._done.release()

    def on_error(self, exc: BaseException) -> None:
        raise SystemExit(f"engine failed: {exc!r}")


def submit_all(engine: Engine, prompts: list[str], chars: int) -> list[TimingSink]:
    """Submit one request per prompt at once; returns their sinks once every one is done."""
    done = threading.Semaphore(0)
    sinks = [TimingSink(done) for _ in prompts]
    for i, (prompt, sink) in enumerate(zip(prompts, sinks, strict=True)):
        engine.submit(GenerationRequest(prompt, chars, SamplingParams(0.8), seed=i), sink)
    for _ in sinks:
        done.acquire()
    return sinks


def engine_runner(
    stack: Stack,
    vocab: Vocab,
    sequences: int,
    chars: int,
    engines: list[Engine],
) -> Callable[[], float]:
    """A measurement of aggregate chars/s while `sequences` requests run together on one engine.

    Counted from the moment the last sequence has its first char to the moment the first one
    finishes: the chars every sequence got in between (priming is measured apart). The
    engine goes into `engines`, for the caller to stop.
    """
    engine = Engine(stack, vocab, name="bench")
    engine.start()
    engines.append(engine)

    def measure() -> float:
        sinks = submit_all(engine, [PROMPT] * sequences, chars)
        start, end = max(s.times[0] for s in sinks), min(s.times[-1] for s in sinks)
        if sum(start < t <= end for t in sinks[0].times) < 2:
            raise SystemExit(f"{sequences} sequences never all ran together: raise chars ({chars})")
        got = sum(
            n for s in sinks for t, n in zip(s.times, s.chars, strict=True) if start < t <= end
        )
        return got / (end - start)

    measure()  # warm-up; it also leaves the prompt primed in the engine's cache
    return measure


Setting = tuple[Callable[[], Any], int]  # (a function of NumPy products, BLAS threads)


def best_blas(settings: list[Setting], reps: int) -> Setting:
    """The fastest (function, BLAS threads) of `settings`, each timed 3 times, picked once."""
    from threadpoolctl import threadpool_limits

    def timed(fn: Callable[[], Any], threads: int) -> float:
        with threadpool_limits(threads, user_api="blas"):
            return min(mean_time(fn, reps) for _ in range(3))

    return min(settings, key=lambda s: timed(*s))


def blas_rate(
    fn: Callable[[], Any],
    threads: int,
    per_call: float,
    reps: int,
) -> Callable[[], float]:
    """A measurement of per_call / (seconds per call of fn on `threads` BLAS threads)."""
    from threadpoolctl import threadpool_limits

    def measure() -> float:
        with threadpool_limits(threads, user_api="blas"):
            return per_call / mean_time(fn, reps)

    return measure


def bound_runner(stack: Stack, batch: int) -> tuple[Callable[[], float], str]:
    """chars/s of every layer's per-char products alone in NumPy float32: h @ U per layer, the
    deeper layers' x @ W, the dense product; separately or as [x, h] @ [W; U], on 1 or 2 BLAS
    threads, whichever is fastest, so the engine meets the best NumPy setting, not a slow one."""
    h = np.random.default_rng(0).normal(size=(batch, stack.units)).astype(np.float32)
    dense = stack.dense[0]
    fused = [np.concatenate([lw.kernel, lw.recurrent]) for lw in stack.layers[1:]]
    xh = np.concatenate([h, h], axis=1)

    def separate() -> Any:
        deeper = [(h @ lw.kernel, h @ lw.recurrent) for lw in stack.layers[1:]]
        return h @ stack.layers[0].recurrent, deeper, h @ dense

    def stacked() -> Any:
        return h @ stack.layers[0].recurrent, [xh @ w for w in fused], h @ dense

    reps = 100 if batch == 1 else 20
    fn, threads = best_blas([(f, n) for f in (separate, stacked) for n in (1, 2)], reps)
    how = "[x, h] @ [W; U]" if fn is stacked else "one product per matrix"
    return blas_rate(fn, threads, batch, reps), f"{how}, {threads} BLAS thread(s)"


def medians(runners: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Every runner once per round, in turn, so a burst of load hits them all alike."""
    results: dict[str, list[float]] = {key: [] for key in runners}
    for _ in range(rounds):
        for key, measure in runners.items():
            time.sleep(SETTLE_S)
            results[key].append(measure())
    return results


def median(values: list[float]) -> float:
    return float(np.median(values))


# --- this script ---------------------------------------------------------------------------
def measure_models(models_dir: Path, rounds: int) -> dict[str, dict[str, float]]:
    """Per model present: chars/s at 1 and 32 sequences and of its bounds (medians)."""
    from model.artifact import load_artifact

    runners: dict[str, Callable[[], float]] = {}
    engines: list[Engine] = []
    for name in MODELS:
        if not (models_dir / name / "model.keras").is_file():
            print(f"{name}: skipped, no model at {models_dir / name} yet")
            continue
        art = load_artifact(models_dir / name)
        stack = Stack.from_keras(art.model)
        shape = f"{stack.cell} {stack.num_layers}×{stack.units}"
        runners[f"{name}|{shape}|1"] = engine_runner(stack, art.vocab, 1, 1000, engines)
        runners[f"{name}|{shape}|32"] = engine_runner(stack, art.vocab, 32, 200, engines)
        runners[f"{name}|{shape}|e1"] = bound_runner(stack, 1)[0]
        runners[f"{name}|{shape}|e32"] = bound_runner(stack, 32)[0]
    try:
        results = medians(runners, rounds)
    finally:
        for engine in engines:
            engine.stop()
    out: dict[str, dict[str, float]] = {}
    for key, values in results.items():
        name, shape, which = key.split("|")
        out.setdefault(f"{name} ({shape})", {})[which] = median(values)
    return out


def report(rows: dict[str, dict[str, float]]) -> None:
    head = f"{'model':32} {'1 seq chars/s':>13} {'bound':>8} {'ratio':>6}"
    print(f"\n{head} {'32 seq chars/s':>14} {'bound':>8} {'ratio':>6}  target ≥ {TARGET_32}")
    for name, m in rows.items():
        r1, r32 = m["1"] / m["e1"], m["32"] / m["e32"]
        mark = "✓" if r32 >= TARGET_32 else "✗"
        print(f"{name:32} {m['1']:>13,.0f} {m['e1']:>8,.0f} {r1:>6.2f}", end=" ")
        print(f"{m['32']:>14,.0f} {m['e32']:>8,.0f} {r32:>6.2f}  {mark}")


def main(argv: list[str] | None = None) -> int:
    what = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.cells", description=what)
    parser.add_argument("--models-dir", type=Path, default=ROOT / "model" / "pretrained")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add_target_flags(parser)
    args = parser.parse_args(argv)
    if args.avx2 and not forced_avx2():
        return 0 if run_forced_avx2("bench.cells", child_args(argv)) is not None else 1
    from model.runtime import configure, import_tensorflow

    configure()  # numba: kernel cache, threading layer (model/runtime)
    import_tensorflow()  # its load-time log lines stay off the tables
    began = time.perf_counter()
    describe("bench.cells: each cell at 1 and 32 sequences against its own bound")
    rows = measure_models(args.models_dir, args.rounds)
    report(rows)
    print(f"({time.perf_counter() - began:.0f} s; medians of {args.rounds} interleaved rounds)")
    if args.report:
        args.report.write_text(json.dumps(rows))
        return 0
    if args.native_only or not rows:
        return 0
    if native_is_avx2():
        print("\n(the native target is AVX2 already: no forced run; --avx2 forces one)")
        return 0
    if not host_has_avx2():
        print("\n(this CPU has no AVX2 + FMA to force the kernels to)")
        return 0
    forced = run_forced_avx2("bench.cells", child_args(argv))
    if forced:
        print(f"\n32 sequences / own batch-32 bound (target ≥ {TARGET_32}):  native   AVX2")
        for name, m in rows.items():
            f = forced.get(name, {})
            avx2 = f"{f['32'] / f['e32']:>6.2f}" if f else "     -"
            print(f"  {name:54} {m['32'] / m['e32']:>6.2f} {avx2}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
