"""Generation speed: this engine against the known ways of sampling a char-LSTM, on the same weights.

    python -m bench.engine [--model DIR] [--rounds N]       (also `make bench`; about 2-3 minutes)

Prints one table of chars/s and the ratios the engine issues name; it never passes or fails.
Each approach is measured once per round, in turn, and the median round is printed with the
spread, so a burst of load on a shared machine hits every approach alike and shows.
Rows: (a) the engine with 1 sequence, (b) with 32 and 64 at once (aggregate); (c) the keras-io
example's loop, `model.predict` on a one-hot 40-char window per char (the same weights in a
Keras model that takes one-hot windows: a bias-free Dense holding the embedding matrix, which is
exactly an embedding lookup, then the LSTMs); (d) the TensorFlow tutorial's OneStep loop, a
`tf.function` step carrying (h, c), at batch 1 and 32; (e) the bound: only the per-char matrix
products of every layer in NumPy float32 (BLAS), at batch 1 and 32, with whichever of 1 or 2 BLAS
threads and of separate or stacked products measures faster.  Then one row per speed trick of the
step (model/cells/kernel.py) with what it buys, and priming against its own bound.  Any layer count:
shapes come from the model.  Without a trained model at DIR it measures a randomly initialised
model of the bundled shape (2×512 LSTM, embedding 64, vocab 65) and says so.
"""

from __future__ import annotations

import argparse
import os
import platform
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numba
import numpy as np

from model.cells import LSTMStack, lstm
from model.engine import Engine
from model.event import Chunk
from model.runtime import configure, import_tensorflow
from model.runtime.jit import FASTMATH
from model.sampling import Generation, GenerationRequest, SamplingParams
from model.vocab import Vocab

SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # 65
PROMPT = "ROMEO:\nWhat light through yonder window breaks?\n"


def mean_time(fn: Callable[[], Any], reps: int) -> float:
    """Seconds per call over `reps` calls."""
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


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


# --- (a), (b): this engine -------------------------------------------------------------------
class TimingSink:
    def __init__(self, done: threading.Semaphore):
        self.times: list[float] = []  # when each chunk arrived: one chunk per step here (no stop strings)
        self._done = done

    def on_chunk(self, chunk: Chunk) -> None:
        self.times.append(time.perf_counter())

    def on_done(self, generation: Generation) -> None:
        self._done.release()

    def on_error(self, exc: BaseException) -> None:
        raise SystemExit(f"engine failed: {exc!r}")


def engine_runner(
    stack: LSTMStack, vocab: Vocab, sequences: int, chars: int, engines: list[Engine]
) -> Callable[[], float]:
    """A measurement of aggregate chars/s while `sequences` requests run together on one engine.

    Counted from the moment the last sequence has its first char to the moment the first one
    finishes: every sequence gets one char per step in between (priming is measured on its own).
    The engine goes into `engines`, for the caller to stop.
    """
    engine = Engine(stack, vocab, name="bench")
    engine.start()
    engines.append(engine)

    def measure() -> float:
        done = threading.Semaphore(0)
        sinks = [TimingSink(done) for _ in range(sequences)]
        for i, sink in enumerate(sinks):
            engine.submit(GenerationRequest(PROMPT, chars, SamplingParams(0.8), seed=i), sink)
        for _ in sinks:
            done.acquire()
        start, end = max(s.times[0] for s in sinks), min(s.times[-1] for s in sinks)
        steps = [t for t in sinks[0].times if start <= t <= end]
        if len(steps) < 2:
            raise SystemExit(f"{sequences} sequences never all ran together: raise `chars` ({chars})")
        return sequences * (len(steps) - 1) / (steps[-1] - steps[0])

    measure()  # warm-up; it also leaves the prompt primed in the engine's cache
    return measure


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

    class StepModel(keras.Model):  # the tutorial's model: return_state, initial_state
        def __init__(self) -> None:
            super().__init__()
            self.embedding = keras.layers.Embedding(len(vocab), model.get_layer("embedding").output_dim)
            self.lstms = [keras.layers.LSTM(layer.units, return_sequences=True, return_state=True) for layer in lstms]
            self.dense = keras.layers.Dense(len(vocab))

        def call(self, ids: Any, states: Any) -> Any:
            x, new = self.embedding(ids), []
            for lstm, (h, c) in zip(self.lstms, states, strict=True):
                x, h, c = lstm(x, initial_state=[h, c])
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


# --- (e): the bound ---------------------------------------------------------------------------
def best_blas(settings: list[tuple[Callable[[], Any], int]], reps: int) -> tuple[Callable[[], Any], int]:
    """The fastest (function, BLAS threads) of `settings`, each timed 3 times, picked once before the rounds."""
    from threadpoolctl import threadpool_limits

    def timed(fn: Callable[[], Any], threads: int) -> float:
        with threadpool_limits(threads, user_api="blas"):
            return mean_time(fn, reps)

    return min(settings, key=lambda s: min(timed(*s) for _ in range(3)))


def blas_rate(fn: Callable[[], Any], threads: int, per_call: float, reps: int) -> Callable[[], float]:
    from threadpoolctl import threadpool_limits

    def measure() -> float:
        with threadpool_limits(threads, user_api="blas"):
            return per_call / mean_time(fn, reps)

    return measure


def bound_runner(stack: LSTMStack, batch: int) -> tuple[Callable[[], float], str]:
    """chars/s of every layer's per-char products alone, NumPy float32, one shared product per matrix.

    Each deeper layer as x @ W + h @ U or [x, h] @ [W; U], with 1 or 2 BLAS threads, whichever is
    fastest, so the engine is compared with the best NumPy setting, not with a slow one.
    """
    rng = np.random.default_rng(0)
    h = rng.normal(size=(batch, stack.units)).astype(np.float32)
    dense = stack.dense[0]
    fused = [np.concatenate([lw.kernel, lw.recurrent]) for lw in stack.layers[1:]]
    xh = np.concatenate([h, h], axis=1)

    def separate() -> Any:
        deeper = [(h @ lw.kernel, h @ lw.recurrent) for lw in stack.layers[1:]]
        return h @ stack.layers[0].recurrent, deeper, h @ dense

    def stacked() -> Any:
        return h @ stack.layers[0].recurrent, [xh @ w for w in fused], h @ dense

    reps = 100 if batch == 1 else 10
    fn, threads = best_blas([(f, n) for f in (separate, stacked) for n in (1, 2)], reps)
    how = f"{'[x, h] @ [W; U]' if fn is stacked else 'one product per matrix'}, {threads} BLAS thread(s)"
    return blas_rate(fn, threads, batch, reps), how


def recurrent_bound_runner(stack: LSTMStack, length: int) -> Callable[[], float]:
    """Seconds of the sequential part of priming `length` chars: h @ U of every layer per char, batch 1."""
    h = np.random.default_rng(0).normal(size=(1, stack.units)).astype(np.float32)

    def products() -> Any:
        return [h @ lw.recurrent for lw in stack.layers]

    fn, threads = best_blas([(products, 1), (products, 2)], 100)
    rate = blas_rate(fn, threads, 1.0, 100)
    return lambda: length / rate()


def prime_runner(stack: LSTMStack, vocab: Vocab, length: int) -> Callable[[], float]:
    """Seconds to prime one sequence with a `length`-char prompt, from the zero state."""
    ids = vocab.encode((PROMPT * (length // len(PROMPT) + 1))[:length])
    return lambda: mean_time(lambda: stack.prime(ids), 20 if length <= 10 else 2)


# --- what each trick of the step buys ---------------------------------------------------------
def gates_runner(batch: int, units: int, vectorised: bool) -> Callable[[], float]:
    """µs for the gate equations of `batch` × `units` cells: kernel.gates (Eigen's rational tanh,
    vectorised) or the same loop with NumPy's exp/tanh in numba (libm calls, one element at a time)."""

    @numba.njit(fastmath=FASTMATH)
    def libm_gates(x: Any, z: Any, c: Any, h: Any) -> None:
        u = c.shape[1]
        for r in range(c.shape[0]):
            for j in range(u):
                i, f = 1 / (1 + np.exp(-x[r, j] - z[r, j])), 1 / (1 + np.exp(-x[r, u + j] - z[r, u + j]))
                g, o = np.tanh(x[r, 2 * u + j] + z[r, 2 * u + j]), 1 / (1 + np.exp(-x[r, 3 * u + j] - z[r, 3 * u + j]))
                c[r, j] = f * c[r, j] + i * g
                h[r, j] = o * np.tanh(c[r, j])

    rng = np.random.default_rng(0)
    x, z = (rng.normal(size=(batch, 4 * units)).astype(np.float32) for _ in range(2))
    c, h = np.zeros((batch, units), np.float32), np.zeros((batch, units), np.float32)
    fn = numba.njit(fastmath=FASTMATH)(lstm.gates.py_func) if vectorised else libm_gates
    fn(x, z, c, h)
    return lambda: 1e6 * mean_time(lambda: fn(x, z, c, h), 50)


def step_primer_runner(stack: LSTMStack, vocab: Vocab, length: int) -> Callable[[], float]:
    """Seconds to prime `length` chars one batch-1 step each (what chunked priming replaces; same bits)."""
    ids = vocab.encode((PROMPT * (length // len(PROMPT) + 1))[:length])

    def prime() -> None:
        state = stack.zero_state(1)
        for t in range(len(ids)):
            stack.step(ids[t : t + 1], state)

    return lambda: mean_time(prime, 2)


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("model/pretrained/shakespeare"), metavar="DIR")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are printed (default 3)")
    args = parser.parse_args(argv)
    configure()  # numba: kernel cache, threading layer (model/runtime)
    import_tensorflow()  # its load-time log lines stay off the tables (model/runtime/native_log.py)
    began, load_before = time.perf_counter(), os.getloadavg()[0]
    model, vocab, which = load(args.model)
    stack = LSTMStack.from_keras(model)  # as served: every core (default_threads())
    one_thread = LSTMStack.from_keras(model, threads=1)
    bound1, how1 = bound_runner(stack, 1)
    bound32, how32 = bound_runner(stack, 32)
    engines: list[Engine] = []
    runners = {  # every round measures each once, in turn, so a burst of load hits all of them alike
        "a": engine_runner(stack, vocab, 1, 600, engines),
        "a_one": engine_runner(one_thread, vocab, 1, 600, engines),
        "b": engine_runner(stack, vocab, 32, 100, engines),
        "b_one": engine_runner(one_thread, vocab, 32, 100, engines),
        "b64": engine_runner(stack, vocab, 64, 400, engines),
        "d1": one_step_runner(model, vocab, 1, 100),
        "d32": one_step_runner(model, vocab, 32, 20),
        "e1": bound1,
        "e32": bound32,
        "prime1000": prime_runner(stack, vocab, 1000),
        "prime_bound": recurrent_bound_runner(stack, 1000),
        "gates": gates_runner(32, stack.units, True),
        "gates_libm": gates_runner(32, stack.units, False),
        "prime_steps": step_primer_runner(stack, vocab, 1000),
    }
    results: dict[str, list[float]] = {key: [] for key in runners}
    for _ in range(args.rounds):
        for key, measure in runners.items():
            results[key].append(measure())
    for engine in engines:
        engine.stop()
    med = {key: float(np.median(values)) for key, values in results.items()}
    med["c"] = keras_io_rate(model, vocab, 6)
    results["c"] = [med["c"]]

    print(f"\nEngine benchmark: {which}; {stack.num_layers} × LSTM {stack.units}")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {load_before:.1f} → "
        f"{os.getloadavg()[0]:.1f}; TensorFlow with its defaults"
    )
    print(
        f"engine: {stack.threads} thread(s) per step, numba threading layer {numba.threading_layer()}; "
        f"bound at 1: {how1}; bound at 32: {how32}"
    )
    rows = [
        ("a", "(a) this engine, 1 sequence", 1),
        ("a_one", "    same, 1 thread", 1),
        ("b", "(b) this engine, 32 sequences (aggregate)", 32),
        ("b_one", "    same, 1 thread", 32),
        ("b64", "(b) this engine, 64 sequences (aggregate)", 64),
        ("c", "(c) keras-io loop: model.predict on a one-hot 40-char window", 1),
        ("d1", "(d) TF tutorial OneStep: tf.function step carrying states", 1),
        ("d32", "(d) TF tutorial OneStep: tf.function step carrying states", 32),
        ("e1", "(e) bound: the per-char matrix products only, NumPy float32", 1),
        ("e32", "(e) bound: the per-char matrix products only, NumPy float32", 32),
    ]
    print(f"\n{'approach':64} {'batch':>5} {'chars/s':>9} {'ms/step':>8}   spread over rounds")
    for key, name, batch in rows:
        spread = f"{min(results[key]):,.0f}–{max(results[key]):,.0f}" if len(results[key]) > 1 else ""
        print(f"{name:64} {batch:>5} {med[key]:>9,.0f} {1000 * batch / med[key]:>8.3f}   {spread}")
    print(f"\n{'trick (model/cells/kernel.py, model/cells/stack.py)':64} {'with':>9} {'without':>9}  buys")
    for name, with_, without, scale in [
        ("gates of 32 × units cells, µs: rational tanh, vectorised (vs libm)", "gates", "gates_libm", 1),
        ("priming 1,000 chars, ms: in slices (vs one step per char)", "prime1000", "prime_steps", 1000),
        (f"1 sequence, ms/char: {stack.threads} threads (vs one)", "a", "a_one", -1),
        (f"32 sequences, ms/step: {stack.threads} threads (vs one)", "b", "b_one", -32),
    ]:
        w, wo = (scale * med[k] if scale > 0 else -scale * 1000 / med[k] for k in (with_, without))
        print(f"{name:64} {w:>9.2f} {wo:>9.2f}  {wo / w:.2f}×")
    print(
        f"\npriming one sequence: 1,000 chars {1000 * med['prime1000']:.1f} ms; the bound for its sequential "
        f"recurrent products {1000 * med['prime_bound']:.1f} ms; a repeated prompt comes from the engine's cache"
    )
    print(f"\n{'ratio (medians)':44} {'value':>8}  target")
    for name, value, target in [
        ("1 sequence / batch-1 bound", med["a"] / med["e1"], "≥ 0.8"),
        ("1 sequence / tf.function loop at 1", med["a"] / med["d1"], "≥ 4"),
        ("32 sequences / batch-32 bound", med["b"] / med["e32"], "≥ 0.8"),
        ("32 sequences / tf.function loop at 32", med["b"] / med["d32"], "≥ 2"),
        ("64 sequences / 32 sequences (aggregate)", med["b64"] / med["b"], "≥ 1"),
        ("1 sequence / keras-io predict loop", med["a"] / med["c"], ""),
        ("prime 1,000 chars / its recurrent bound", med["prime1000"] / med["prime_bound"], "≤ 1.5"),
    ]:
        print(f"{name:44} {value:>8.2f}  {target}")
    print(f"\n({time.perf_counter() - began:.0f} s in all; medians of {args.rounds} interleaved rounds, each a mean)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
