"""The LSTM step, written as the gate equations over the trained weights (NumPy, float32).

For each layer, with Keras's gates input, forget, candidate, output:

    z = x @ W + h @ U + b                       # (batch, 4*units)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c = f * c + i * g                           # the cell state carried over time
    h = o * tanh(c)

Generation calls `step` once per char, so nothing here goes through Keras: the per-call
overhead of `model.predict` is what makes the classic implementations slow.  The matrix
products dominate the step (bench/engine.py compares it with them alone); exact rewrites trim
the rest:
- layer 0's `embedding @ W + b` is precomputed as a (vocab, 4*units) table: a row lookup;
- deeper layers do one product `[x, h] @ [W; U]` instead of two;
- the columns are stored as (i, f, o, g) with the i, f, o columns halved (exact: a power of
  two), so one `tanh` over all of z gives the candidate and `sigmoid(z) = 0.5 + 0.5*tanh(z/2)`
  for the other three, which cannot overflow;
- work buffers are preallocated per batch size and every op writes in place.

Reproducibility: OpenBLAS's matrix product gives a row slightly different results (last bits)
depending on how many rows are multiplied with it and where the row sits (measured on this
OpenBLAS: 1 row goes to gemv, 2-3 and 4-8 rows to other kernels, and from 12 rows on, rows
fall into classes by position; small fixed-size row blocks are position-invariant but each
call repacks the whole weight matrix, which costs more than the per-row products).  So by
default (`exact=True`) each row is multiplied on its own (a stacked matmul = one
matrix-vector product per row, bit-identical to the batch-1 product), and a seed gives the
same text alone or beside other sequences.  `exact=False` uses one matrix-matrix product for
the batch: faster per core for large batches, reproducible only for the same batch composition.
Rows never mix in a step, so a batch of 4 or more rows is split in two halves stepped on two
threads (`threads=2`, the default on a machine with 2+ cores; NumPy releases the GIL): every
row's bits are the same whichever half it lands in.  The LSTM products are always computed as
two fixed column halves, so a smaller batch can put the second half on the other thread
(`SPLIT_SMALL_BATCHES`) with the same bits.  Checked against Keras in tests/test_cell.py.

    stack = LSTMStack.from_keras(keras_model)
    logits, state = stack.prime(vocab.encode("ROMEO:"))   # (vocab,), State of batch 1
    logits = stack.step(np.array([next_id]), state)        # (1, vocab); state updated in place
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

F32 = np.float32
PRIME_CHUNK = 16  # prompt chars primed per call of prime_chunk (fixed, so priming is reproducible)
SPLIT_MIN_ROWS = 4  # from this batch size on, rows are split over the threads
SPLIT_SMALL_BATCHES = False  # below it, column halves of the LSTM products (a hand-off per layer)


def default_threads() -> int:
    """Threads a step may use: 2 where the process may run on 2+ cores, else 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


def limit_blas_threads(n: int = 1) -> None:
    """Cap OpenBLAS's threads process-wide (via threadpoolctl, when installed).

    The step's products are small: extra BLAS threads mostly spin, and on a busy machine a
    spinning thread that lost its core makes a 0.2 ms product take milliseconds.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a pinned runtime dependency
        return
    threadpool_limits(n, user_api="blas")


@dataclass(frozen=True)
class LayerWeights:
    """One Keras LSTM layer's weights, columns in Keras order (i, f, g, o)."""

    kernel: np.ndarray  # (in, 4*units)
    recurrent: np.ndarray  # (units, 4*units)
    bias: np.ndarray  # (4*units,)


@dataclass
class State:
    """Recurrent state of a batch: h and c of shape (layers, batch, units)."""

    h: np.ndarray
    c: np.ndarray
    work: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # step buffers

    @classmethod
    def zeros(cls, layers: int, batch: int, units: int) -> State:
        return cls(np.zeros((layers, batch, units), F32), np.zeros((layers, batch, units), F32))

    @property
    def batch(self) -> int:
        return int(self.h.shape[1])

    def copy(self) -> State:
        return State(self.h.copy(), self.c.copy())

    def rows(self, index: Any) -> State:
        return State(np.ascontiguousarray(self.h[:, index]), np.ascontiguousarray(self.c[:, index]))

    @staticmethod
    def stack(states: list[State]) -> State:
        return State(np.concatenate([s.h for s in states], 1), np.concatenate([s.c for s in states], 1))


def _reorder(w: np.ndarray, units: int) -> np.ndarray:
    """Keras columns (i, f, g, o) → (i/2, f/2, o/2, g), float32, C-contiguous."""
    i, f, g, o = (w[..., k * units : (k + 1) * units] for k in range(4))
    return np.ascontiguousarray(np.concatenate([i * 0.5, f * 0.5, o * 0.5, g], axis=-1), dtype=F32)


def _gates(z: np.ndarray, c: np.ndarray, h_out: np.ndarray, tmp: np.ndarray, units: int) -> None:
    """Gate equations on pre-activations z (batch, 4*units) in (i/2, f/2, o/2, g) order.

    Overwrites z; updates c (batch, units) in place and writes h into h_out.
    """
    np.tanh(z, out=z)
    sig = z[:, : 3 * units]  # tanh(z/2) → sigmoid(z) for i, f, o
    sig *= F32(0.5)
    sig += F32(0.5)
    c *= z[:, units : 2 * units]  # f * c
    np.multiply(z[:, :units], z[:, 3 * units :], out=tmp)  # i * g
    c += tmp
    np.tanh(c, out=tmp)
    np.multiply(z[:, 2 * units : 3 * units], tmp, out=h_out)  # o * tanh(c)


class LSTMStack:
    """The whole network as NumPy arrays: embedding table, LSTM layers, output projection."""

    def __init__(
        self,
        embedding: np.ndarray,
        layers: list[LayerWeights],
        dense_w: np.ndarray,
        dense_b: np.ndarray,
        exact: bool = True,
        threads: int | None = None,
    ):
        u = self.units = int(layers[0].recurrent.shape[0])
        self.num_layers = len(layers)
        self.vocab_size = int(dense_w.shape[1])
        self.exact = exact
        self.threads = default_threads() if threads is None else threads  # 1 or 2: see the docstring
        self._pool: ThreadPoolExecutor | None = None  # the second thread, started on first use
        self._pool_lock = threading.Lock()
        self.layers = layers  # Keras layout, kept for reference and checks
        first = layers[0]
        # Layer 0's input projection for every possible char, bias folded in: (vocab, 4*units).
        table = np.asarray(embedding, np.float64) @ first.kernel.astype(np.float64) + first.bias
        self.input_table = _reorder(table.astype(F32), u)
        self.recurrent0 = _reorder(first.recurrent, u)  # (units, 4*units)
        # Deeper layers: [W; U] stacked so [x, h] needs one product; W and U are views of it.
        self.fused = [_reorder(np.concatenate([lw.kernel, lw.recurrent]), u) for lw in layers[1:]]
        self.biases = [_reorder(lw.bias, u) for lw in layers[1:]]
        self.dense_w = np.ascontiguousarray(dense_w, F32)  # (units, vocab)
        self.dense_b = np.ascontiguousarray(dense_b, F32)  # (vocab,)
        self._half = max(16, (2 * u) // 16 * 16) if 4 * u > 16 else 2 * u  # column split of 4*units

    @classmethod
    def from_keras(cls, model: Any, exact: bool = True, threads: int | None = None) -> LSTMStack:
        embedding = np.asarray(model.get_layer("embedding").get_weights()[0], F32)
        layers = []
        n = 0
        while any(layer.name == f"lstm_{n}" for layer in model.layers):
            kernel, recurrent, bias = model.get_layer(f"lstm_{n}").get_weights()
            layers.append(LayerWeights(np.asarray(kernel, F32), np.asarray(recurrent, F32), np.asarray(bias, F32)))
            n += 1
        dense_w, dense_b = model.get_layer("logits").get_weights()
        return cls(embedding, layers, np.asarray(dense_w, F32), np.asarray(dense_b, F32), exact, threads)

    def zero_state(self, batch: int = 1) -> State:
        return State.zeros(self.num_layers, batch, self.units)

    def _product(self, x: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
        """out = x @ w for x (batch, in): one matrix-vector product per row when exact."""
        if self.exact:
            np.matmul(x[:, None, :], w, out=out[:, None, :])
        else:
            np.matmul(x, w, out=out)

    def _gate_product(self, x: np.ndarray, w: np.ndarray, out: np.ndarray, both_threads: bool) -> None:
        """out = x @ w for an LSTM weight (in, 4*units); when exact, always as two column halves.

        The halves are fixed, so a row's bits do not depend on whether they are computed one
        after the other or (`both_threads`, for batches too small to split by rows) at once.
        """
        if not self.exact:
            self._product(x, w, out)
            return
        half = self._half
        if both_threads:
            other = self._second_thread().submit(self._product, x, w[:, half:], out[:, half:])
            try:
                self._product(x, w[:, :half], out[:, :half])
            finally:
                other.result()
        else:
            self._product(x, w[:, :half], out[:, :half])
            self._product(x, w[:, half:], out[:, half:])

    def _buffers(self, state: State) -> dict[str, Any]:
        work = state.work
        if work.get("batch") != state.batch:
            b, u = state.batch, self.units
            work.clear()
            work["batch"] = b
            work["z"] = np.empty((b, 4 * u), F32)
            work["tmp"] = np.empty((b, u), F32)
            work["xh"] = [np.empty((b, w.shape[0]), F32) for w in self.fused]
            work["logits"] = np.empty((b, self.vocab_size), F32)
        return work

    def _second_thread(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="lstm-rows")
            return self._pool

    def step(self, ids: np.ndarray, state: State) -> np.ndarray:
        """One char per row: ids (batch,) → logits (batch, vocab); `state` is updated in place."""
        work = self._buffers(state)
        b = state.batch
        if self.threads > 1 and b >= SPLIT_MIN_ROWS:
            half = (b + 1) // 2  # rows [half, b) on the second thread, [0, half) here
            other = self._second_thread().submit(self._step_rows, ids, state, work, half, b, False)
            try:
                self._step_rows(ids, state, work, 0, half, False)
            finally:
                other.result()  # always wait: the other half writes into the same buffers
        else:
            self._step_rows(ids, state, work, 0, b, SPLIT_SMALL_BATCHES and self.threads > 1 and b > 0)
        return work["logits"].copy()  # callers may keep it; the buffer is reused next step

    def _step_rows(self, ids: np.ndarray, state: State, work: dict[str, Any], lo: int, hi: int, cols: bool) -> None:
        """Step rows [lo, hi) of the batch: every op reads and writes only those rows.

        `cols`: the second thread computes the right column half of each LSTM product.
        """
        u, z, tmp = self.units, work["z"][lo:hi], work["tmp"][lo:hi]
        h, c = state.h[:, lo:hi], state.c[:, lo:hi]  # h[n] is a C-contiguous block of rows
        self._gate_product(h[0], self.recurrent0, z, cols)
        z += self.input_table[ids[lo:hi]]
        _gates(z, c[0], h[0], tmp, u)
        for n, (w, b, xh_all) in enumerate(zip(self.fused, self.biases, work["xh"], strict=True), start=1):
            xh = xh_all[lo:hi]
            xh[:, :-u] = h[n - 1]
            xh[:, -u:] = h[n]
            self._gate_product(xh, w, z, cols)
            z += b
            _gates(z, c[n], h[n], tmp, u)
        logits = work["logits"][lo:hi]
        self._product(h[-1], self.dense_w, logits)
        logits += self.dense_b

    def prime_chunk(self, ids: np.ndarray, state: State) -> np.ndarray:
        """Run up to PRIME_CHUNK prompt chars (time,) through one sequence's state; logits after the last (vocab,).

        One `step` per char, so a primed state has the bits of the same text generated in any
        batch: the engine's prefix cache (model/prefix_cache.py) hands out states remembered
        from generations, and a prompt must give the same text with or without them.  (The product
        over the chunk's time steps per layer that this replaced gave other bits and was no faster
        here: 679 vs 605 ms for 1,000 chars of the bundled model, 2-core machine under load.)
        """
        logits = self.dense_b[None]
        for t in range(len(ids)):
            logits = self.step(ids[t : t + 1], state)
        return np.array(logits[0])

    def prime(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Run a whole prompt (time,) for one sequence; returns (logits after its last char, state)."""
        state = self.zero_state(1) if state is None else state
        logits = self.dense_b.copy()  # what an empty prompt gives from a zero state
        for start in range(0, len(ids), PRIME_CHUNK):
            logits = self.prime_chunk(ids[start : start + PRIME_CHUNK], state)
        return logits, state

    def logits_of(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of a batch of sequences (batch, time) by stepping; for checks."""
        state = self.zero_state(ids.shape[0])
        return np.stack([self.step(ids[:, t], state) for t in range(ids.shape[1])], axis=1)
