"""Generation speed: the engine against NumPy's BLAS and TensorFlow on the same weights, natively
and forced to AVX2.

    python -m bench.engine [--model DIR] [--rounds N]    # native, then forced AVX2 (`make bench`)
    python -m bench.engine --native-only                 # this CPU's own instruction set only
    python -m bench.engine --avx2                        # forced to AVX2 only

About 1 minute per instruction set on 2 quiet cores (the first forced run adds about a minute
while its kernels compile into their own cache).  It prints the CPU model, the instruction set the
kernels were compiled for and OpenBLAS's core type, then per instruction set a table of chars/s,
what each speed trick buys and the ratios; at the end both sets of issue-25 ratios side by side
against their targets.  It never passes or fails.

Rows: (a) the engine with 1 sequence, (b) with 32 and 64 at once (aggregate); (c) the keras-io
example's loop, `model.predict` on a one-hot 40-char window per char (the same weights; the
embedding as a bias-free Dense on the one-hot chars); (d) the TensorFlow tutorial's OneStep loop,
a `tf.function` step carrying (h, c), at batch 1 and 32; (e) the bound: only the per-char products
of every layer in NumPy float32 (OpenBLAS sgemm), at batch 1 and 32 (bench/cells.py's
`bound_runner`).  Priming: one 1,000-char prompt alone, and 32 different ones arriving together,
at an idle engine until every first char; the recurrent bound is h @ U of every layer per char.

Forced to AVX2 the script runs itself again in a child process (bench/cells.py's
`run_forced_avx2`) with NUMBA_CPU_NAME=haswell and NUMBA_CPU_FEATURES set to Haswell's features
(bench/machine.py's AVX2_ENV, as tests/test_gemm.py uses), OPENBLAS_CORETYPE=Haswell so the bound
runs on the same instruction set, ONEDNN_MAX_CPU_ISA=AVX2 for TensorFlow, and a NUMBA_CACHE_DIR
of its own.  Where the native target is AVX2 already, the forced run is skipped unless --avx2
asks for it.  Without a trained model at DIR it measures a randomly initialised model of the
bundled shape (2×512 LSTM, embedding 64, vocab 65) and says so.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numba
import numpy as np

from bench.cells import (
    PROMPT,
    add_target_flags,
    best_blas,
    blas_rate,
    bound_runner,
    child_args,
    describe,
    engine_runner,
    mean_time,
    median,
    medians,
    native_is_avx2,
    run_forced_avx2,
    submit_all,
)
from bench.machine import cpu_name, forced_avx2, host_has_avx2
from model.cells import PRIME_CHUNK, Stack, lstm
from model.engine import Engine
from model.runtime.jit import ERROR_MODEL, FASTMATH
from model.vocab import Vocab

SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # 65
PRIME_CHARS, PRIME_PROMPTS = 1000, 32
# (name, numerator, denominator, target, higher is better): the first five are issue 25's
RATIOS: list[tuple[str, str, str, float | None, bool]] = [
    ("32 sequences / batch-32 bound", "b", "e32", 1.0, True),
    ("32 sequences / TF step at 32", "b", "d32", 2.0, True),
    ("1 sequence / batch-1 bound", "a", "e1", 0.9, True),
    ("priming 1,000 chars alone / its recurrent bound", "prime_alone", "prime_bound", 1.3, False),
    ("32 prompts × 1,000 chars together / one alone", "prime_32", "prime_alone", 3.0, False),
    ("1 sequence / TF step at 1", "a", "d1", None, True),
    ("64 sequences / 32 sequences (aggregate)", "b64", "b", None, True),
    ("1 sequence / keras-io predict loop", "a", "c", None, True),
]


def load(model_dir: Path) -> tuple[Any, Vocab, str]:
    import keras

    from model.artifact import load_artifact
    from model.cells.network import NetworkConfig, build_model

    if (model_dir / "model.keras").is_file():
        art = load_artifact(model_dir)
        return art.model, art.vocab, f"{model_dir} (trained: {art.name})"
    keras.utils.set_random_seed(0)
    model = build_model(NetworkConfig(vocab_size=65, embedding_dim=64, units=512, layers=2))
    which = f"random init, 2×512 LSTM, emb 64, vocab 65 (no trained model at {model_dir})"
    return model, Vocab.from_chars(SHAKESPEARE_CHARS), which


# --- (c): the keras-io example's loop ---------------------------------------------------------
def keras_io_rate(model: Any, vocab: Vocab, chars: int) -> float:
    import keras

    emb = model.get_layer("embedding").get_weights()[0]
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    x = inp = keras.Input((40, len(vocab)))
    x = keras.layers.Dense(emb.shape[1], use_bias=False)(x)  # one-hot @ embedding = the lookup
    for n, layer in enumerate(lstms):
        x = keras.layers.LSTM(layer.units, return_sequences=n < len(lstms) - 1)(x)
    out = keras.layers.Dense(len(vocab), activation="softmax")(x)
    window_model = keras.Model(inp, out)
    lstm_weights = [w for layer in lstms for w in layer.get_weights()]
    window_model.set_weights([emb, *lstm_weights, *model.get_layer("logits").get_weights()])
    rng = np.random.default_rng(0)
    sentence = list((PROMPT * 2)[:40])

    def next_char() -> None:
        x = np.zeros((1, 40, len(vocab)), np.float32)
        x[0, np.arange(40), vocab.encode("".join(sentence))] = 1.0
        preds = window_model.predict(x, verbose=0)[0].astype(np.float64)
        preds = np.exp(np.log(preds + 1e-12) / 0.8)  # the example's sample(preds, temperature)
        sentence.append(vocab.chars[int(np.argmax(rng.multinomial(1, preds / preds.sum())))])
        del sentence[0]

    next_char()  # warm-up: predict() builds its function on the first call
    return 1.0 / mean_time(next_char, chars)


# --- (d): the TensorFlow tutorial's OneStep loop ----------------------------------------------
def one_step_runner(model: Any, vocab: Vocab, batch: int, steps: int) -> Callable[[], float]:
    import keras
    import tensorflow as tf

    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    dim = model.get_layer("embedding").output_dim

    class StepModel(keras.Model):  # the tutorial's model: return_state, initial_state
        def __init__(self) -> None:
            super().__init__()
            self.embedding = keras.layers.Embedding(len(vocab), dim)
            cell = keras.layers.LSTM
            self.lstms = [cell(n.units, return_sequences=True, return_state=True) for n in lstms]
            self.dense = keras.layers.Dense(len(vocab))

        def call(self, ids: Any, states: Any) -> Any:
            x, new = self.embedding(ids), []
            for lstm_layer, (h, c) in zip(self.lstms, states, strict=True):
                x, h, c = lstm_layer(x, initial_state=[h, c])
                new.append((h, c))
            return self.dense(x), new

    step_model = StepModel()
    units = lstms[0].units
    states = [(tf.zeros((batch, units)), tf.zeros((batch, units))) for _ in lstms]
    step_model(tf.zeros((batch, 1), tf.int32), states)
    step_model.embedding.set_weights(model.get_layer("embedding").get_weights())
    for mine, theirs in zip(step_model.lstms, lstms, strict=True):
        mine.set_weights(theirs.get_weights())
    step_model.dense.set_weights(model.get_layer("logits").get_weights())

    @tf.function
    def one_step(ids: Any, states: Any) -> Any:
        logits, states = step_model(ids, states)
        next_ids = tf.random.categorical(logits[:, -1, :] / 0.8, num_samples=1)
        return tf.cast(next_ids, tf.int32), states

    prompt = tf.constant(np.tile(vocab.encode(PROMPT), (batch, 1)))
    _, states = step_model(prompt, states)  # priming: one call on the whole prompt
    ids = tf.fill((batch, 1), 1)

    def run_steps() -> None:
        nonlocal ids, states
        ids, states = one_step(ids, states)

    run_steps()  # traces the tf.function
    return lambda: batch / mean_time(run_steps, steps)


# --- priming ----------------------------------------------------------------------------------
def prime_engine_runner(
    stack: Stack,
    vocab: Vocab,
    prompts: int,
    engines: list[Engine],
) -> Callable[[], float]:
    """Seconds from submitting `prompts` different PRIME_CHARS-char prompts at once to an idle
    engine (no prefix cache) until the last one's first char."""
    engine = Engine(stack, vocab, name="bench-prime", prefix_cache_bytes=0)
    engine.start()
    engines.append(engine)
    rng, chars = np.random.default_rng(prompts), np.array(list(vocab.chars))

    def measure(length: int = PRIME_CHARS) -> float:
        texts = ["".join(rng.choice(chars, length)) for _ in range(prompts)]
        began = time.perf_counter()
        sinks = submit_all(engine, texts, 1)
        return max(s.times[0] if s.times else s.finished for s in sinks) - began

    measure(2 * PRIME_CHUNK)  # warm-up: the engine thread and its kernels
    return measure


def recurrent_bound_runner(stack: Stack, length: int) -> Callable[[], float]:
    """Seconds of priming's sequential part for `length` chars: h @ U of every layer, batch 1."""
    h = np.random.default_rng(0).normal(size=(1, stack.units)).astype(np.float32)

    def products() -> Any:
        return [h @ lw.recurrent for lw in stack.layers]

    fn, threads = best_blas([(products, 1), (products, 2)], 100)
    rate = blas_rate(fn, threads, 1.0, 100)
    return lambda: length / rate()


def prompt_ids(vocab: Vocab, length: int) -> np.ndarray:
    return vocab.encode((PROMPT * (length // len(PROMPT) + 1))[:length])


def prime_runner(stack: Stack, vocab: Vocab, length: int) -> Callable[[], float]:
    """Seconds for Stack.prime of one `length`-char prompt from the zero state (in slices)."""
    ids = prompt_ids(vocab, length)
    return lambda: mean_time(lambda: stack.prime(ids), 1)


def step_primer_runner(stack: Stack, vocab: Vocab, length: int) -> Callable[[], float]:
    """Seconds to prime `length` chars one batch-1 step each (what slices replace; same bits)."""
    ids = prompt_ids(vocab, length)

    def prime() -> None:
        state = stack.zero_state(1)
        for t in range(len(ids)):
            stack.step(ids[t : t + 1], state)

    return lambda: mean_time(prime, 1)


# --- what the gates' arithmetic buys ----------------------------------------------------------
def gates_runner(batch: int, units: int, vectorised: bool) -> Callable[[], float]:
    """µs for the LSTM equations on `batch` × `units` cells: lstm.gates as compiled in the step
    (model/cells/activation.py's rational tanh: plain arithmetic, vectorised), or the same loop
    with NumPy's exp and tanh in numba (a libm call per element, one element at a time)."""

    @numba.njit(fastmath=FASTMATH)
    def libm_gates(x: Any, z: Any, c: Any, h: Any) -> None:
        u = c.shape[1]
        for r in range(c.shape[0]):
            for j in range(u):
                i = 1 / (1 + np.exp(-x[r, j] - z[r, j]))
                f = 1 / (1 + np.exp(-x[r, u + j] - z[r, u + j]))
                g = np.tanh(x[r, 2 * u + j] + z[r, 2 * u + j])
                o = 1 / (1 + np.exp(-x[r, 3 * u + j] - z[r, 3 * u + j]))
                c[r, j] = f * c[r, j] + i * g
                h[r, j] = o * np.tanh(c[r, j])

    rng = np.random.default_rng(0)
    x, z = (rng.normal(size=(batch, 4 * units)).astype(np.float32) for _ in range(2))
    c, h = np.zeros((batch, units), np.float32), np.zeros((batch, units), np.float32)
    # The step's error model too: numba's default checks each division and stops vectorising.
    rational = numba.njit(fastmath=FASTMATH, error_model=ERROR_MODEL)(lstm.gates.py_func)
    fn = rational if vectorised else libm_gates
    fn(x, z, c, h)
    return lambda: 1e6 * mean_time(lambda: fn(x, z, c, h), 50)


# --- the run ----------------------------------------------------------------------------------
def measure(model: Any, vocab: Vocab, rounds: int) -> tuple[Stack, dict[str, list[float]], str]:
    """Every row's measurements over `rounds` interleaved rounds; returns the served stack too."""
    stack = Stack.from_keras(model)  # as served: every core (default_threads())
    if stack.cell != "lstm":
        raise SystemExit(f"a {stack.cell}: bench.engine is for LSTMs; bench.cells takes any cell")
    one_thread = Stack.from_keras(model, threads=1)
    bound1, how1 = bound_runner(stack, 1)
    bound32, how32 = bound_runner(stack, 32)
    engines: list[Engine] = []
    try:
        runners = {
            "a": engine_runner(stack, vocab, 1, 2000, engines),
            "a_one": engine_runner(one_thread, vocab, 1, 1000, engines),
            "b": engine_runner(stack, vocab, 32, 400, engines),
            "b_one": engine_runner(one_thread, vocab, 32, 200, engines),
            "b64": engine_runner(stack, vocab, 64, 200, engines),
            "d1": one_step_runner(model, vocab, 1, 100),
            "d32": one_step_runner(model, vocab, 32, 20),
            "e1": bound1,
            "e32": bound32,
            "prime_alone": prime_engine_runner(stack, vocab, 1, engines),
            "prime_32": prime_engine_runner(stack, vocab, PRIME_PROMPTS, engines),
            "prime_bound": recurrent_bound_runner(stack, PRIME_CHARS),
            "prime_slices": prime_runner(stack, vocab, PRIME_CHARS),
            "prime_steps": step_primer_runner(stack, vocab, PRIME_CHARS),
            "gates": gates_runner(32, stack.units, True),
            "gates_libm": gates_runner(32, stack.units, False),
        }
        results = medians(runners, rounds)
    finally:
        for engine in engines:
            engine.stop()
    results["c"] = [keras_io_rate(model, vocab, 6)]
    return stack, results, f"bound at 1: {how1}; at 32: {how32}"


def ratios(med: dict[str, float]) -> dict[str, float]:
    return {name: med[top] / med[bottom] for name, top, bottom, _, _ in RATIOS}


def verdict(value: float, target: float | None, higher: bool) -> str:
    if target is None:
        return " "
    return "✓" if (value >= target if higher else value <= target) else "✗"


def report(
    stack: Stack,
    results: dict[str, list[float]],
    which: str,
    bounds: str,
) -> dict[str, float]:
    """Print the tables of one run; returns its ratios."""
    med = {key: median(values) for key, values in results.items()}
    print(f"model: {which}; {stack.num_layers} × {stack.cell.upper()} {stack.units}")
    layer = numba.threading_layer()
    print(f"engine: {stack.threads} thread(s) a step, numba threading layer {layer}; {bounds}")
    print(f"\n{'approach':62} {'batch':>5} {'chars/s':>9} {'ms/step':>8}   spread over rounds")
    for key, name, batch in [
        ("a", "(a) this engine, 1 sequence", 1),
        ("b", "(b) this engine, 32 sequences (aggregate)", 32),
        ("b64", "(b) this engine, 64 sequences (aggregate)", 64),
        ("c", "(c) keras-io loop: model.predict on a one-hot 40-char window", 1),
        ("d1", "(d) TF tutorial OneStep: tf.function step carrying states", 1),
        ("d32", "(d) TF tutorial OneStep: tf.function step carrying states", 32),
        ("e1", "(e) bound: the per-char products only, NumPy float32", 1),
        ("e32", "(e) bound: the per-char products only, NumPy float32", 32),
    ]:
        low, high = min(results[key]), max(results[key])
        spread = f"{low:,.0f}–{high:,.0f}" if len(results[key]) > 1 else ""
        print(f"{name:62} {batch:>5} {med[key]:>9,.0f} {1000 * batch / med[key]:>8.3f}   {spread}")
    print(f"\npriming {PRIME_CHARS:,} chars (ms){'':36} {'median':>9}   spread over rounds")
    for key, name in [
        ("prime_alone", "one prompt alone, engine, to its first char"),
        ("prime_32", f"{PRIME_PROMPTS} different prompts at once, engine, to the last first char"),
        ("prime_slices", "one prompt, Stack.prime (slices of 16 chars)"),
        ("prime_bound", "bound: h @ U of every layer per char, NumPy, batch 1"),
    ]:
        spread = "–".join(f"{1000 * f(results[key]):,.0f}" for f in (min, max))
        spread = spread if len(results[key]) > 1 else ""
        print(f"{name:70} {1000 * med[key]:>9,.0f}   {spread}")
    print(f"\n{'trick':62} {'with':>9} {'without':>9}  buys")
    for name, with_, without, scale in [
        ("LSTM gates of 32 × units cells, µs: rational tanh (vs libm)", "gates", "gates_libm", 1),
        ("priming 1,000 chars, ms: slices (vs a step a char)", "prime_slices", "prime_steps", 1000),
        (f"1 sequence, ms/char: {stack.threads} threads (vs 1)", "a", "a_one", -1),
        (f"32 sequences, ms/step: {stack.threads} threads (vs 1)", "b", "b_one", -32),
    ]:
        w, wo = (scale * med[k] if scale > 0 else -scale * 1000 / med[k] for k in (with_, without))
        print(f"{name:62} {w:>9.2f} {wo:>9.2f}  {wo / w:.2f}×")
    values = ratios(med)
    print(f"\n{'ratio (medians)':50} {'value':>7}  target")
    for name, _, _, target, higher in RATIOS:
        goal = f"{'≥' if higher else '≤'} {target}" if target is not None else ""
        print(f"{name:50} {values[name]:>7.2f}  {goal} {verdict(values[name], target, higher)}")
    return values


def side_by_side(native: dict[str, float], avx2: dict[str, float]) -> None:
    print(f"\n=== issue 25's ratios, {cpu_name()} ===")
    print(f"{'ratio (medians)':50} {'native':>8} {'AVX2':>8}  target")
    for name, _, _, target, higher in RATIOS:
        goal = f"{'≥' if higher else '≤'} {target}" if target is not None else ""
        cells = [f"{v[name]:>6.2f} {verdict(v[name], target, higher)}" for v in (native, avx2)]
        print(f"{name:50} {cells[0]:>8} {cells[1]:>8}  {goal}")


def main(argv: list[str] | None = None) -> int:
    what = __doc__.split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=what)
    bundled = Path("model/pretrained/shakespeare")
    parser.add_argument("--model", type=Path, default=bundled, metavar="DIR")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add_target_flags(parser)
    args = parser.parse_args(argv)
    if args.avx2 and not forced_avx2():
        return 0 if run_forced_avx2("bench.engine", child_args(argv)) is not None else 1
    from model.runtime import configure, import_tensorflow

    configure()  # numba: kernel cache, threading layer (model/runtime)
    import_tensorflow()  # its load-time log lines stay off the tables
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    model, vocab, which = load(args.model)
    stack, results, bounds = measure(model, vocab, args.rounds)
    describe("bench.engine: generation and priming speed")
    print(f"load average {load_before:.1f} at the start; TensorFlow with its defaults", end="")
    print(" but ONEDNN_MAX_CPU_ISA=AVX2" if forced_avx2() else "")
    values = report(stack, results, which, bounds)
    print(f"\n({time.perf_counter() - began:.0f} s; medians of {args.rounds} interleaved rounds)")
    if args.report:
        args.report.write_text(json.dumps(values))
        return 0
    if args.native_only:
        return 0
    if native_is_avx2() or not host_has_avx2():
        print("\n(no forced-AVX2 run: the native target is AVX2, or the CPU has no AVX2 + FMA)")
        return 0
    forced = run_forced_avx2("bench.engine", child_args(argv))
    if forced:
        side_by_side(values, forced)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
