"""The LSTM step: the gate equations over the trained weights, through compiled batch-invariant kernels.

For each layer, with Keras's gates input, forget, candidate, output:

    z = x @ W + h @ U + b                       # (batch, 4*units)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c = f * c + i * g                           # the cell state carried over time
    h = o * tanh(c)

Those lines are `gates` in model/cells/kernel.py, applied to z once its sums (`product`) are done.
Generation calls `step` once per char, so nothing here goes through Keras (the per-call
overhead of `model.predict` is what makes the classic implementations slow).
Layer 0's `embedding @ W + b` is precomputed at load as a (vocab, 4*units) table: a row lookup.

Reproducibility: a row's bits never depend on the batch it is in, its position there, or the
thread count (model/cells/kernel.py says how), so a seed gives the same text alone or beside other
sequences.  A step is one compiled call (`kernel.step`) that shares each product out over
`threads` threads, every core by default (`default_threads()`; bench/engine.py has a row for 1).
Checked against Keras in tests/test_cell.py, bit for bit across batches in tests/test_kernel.py.

    stack = LSTMStack.from_keras(keras_model)
    logits, state = stack.prime(vocab.encode("ROMEO:"))   # (vocab,), State of batch 1
    logits = stack.step(np.array([next_id]), state)        # (1, vocab); state updated in place
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from model.cells import kernel
from model.cells.kernel import ROWS, UNITS, padded

F32 = np.float32
PRIME_CHUNK = 16  # prompt chars primed per call of prime_chunk (fixed, so priming is reproducible)


def default_threads() -> int:
    """Threads a step may use: the cores this process may run on, at most numba's NUMBA_NUM_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


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


class LSTMStack:
    """The whole network laid out for the kernels: char table, LSTM layers, output projection."""

    def __init__(
        self,
        embedding: np.ndarray,
        layers: list[LayerWeights],
        dense_w: np.ndarray,
        dense_b: np.ndarray,
        threads: int | None = None,
    ):
        u = self.units = int(layers[0].recurrent.shape[0])
        up = padded(u, UNITS)  # units as the kernels see them; the padding stays exactly 0
        self.num_layers = len(layers)
        self.vocab_size = int(dense_w.shape[1])
        self.threads = default_threads() if threads is None else threads  # bits never depend on it
        self.embedding, self.layers, self.dense = embedding, layers, (dense_w, dense_b)  # Keras layout, for checks
        first = layers[0]
        # Layer 0's input projection for every possible char, bias folded in: (vocab, 4*units).
        table = np.asarray(embedding, np.float64) @ first.kernel.astype(np.float64) + first.bias
        self.table = kernel.gate_order(table.astype(F32), u)
        # Laid out once for the kernels (model/cells/kernel.py): transposed, gate blocks padded to `up` units.
        # U and the deeper layers' W, stacked for the one-call step: (layers, 4*units, units), (layers-1, ...)
        self.w_rec3 = np.stack([kernel.gate_weights(lw.recurrent, u, up) for lw in layers])
        self.w_in3, self.w_bias = np.zeros((len(layers) - 1, 4 * up, up), F32), np.zeros((len(layers) - 1, 4 * up), F32)
        for n, lw in enumerate(layers[1:]):
            self.w_in3[n], self.w_bias[n] = kernel.gate_weights(lw.kernel, u, up), kernel.gate_order(lw.bias, u)
        # Views of the same, per layer (layer 0's input is the table), for priming.
        self.w_rec, self.w_in = list(self.w_rec3), [np.zeros((4 * up, 0), F32), *self.w_in3]
        self.biases = [np.zeros(4 * up, F32), *self.w_bias]
        self.dense_w = kernel.transposed(dense_w, up)  # (vocab padded, units)
        self.dense_b = np.zeros(self.dense_w.shape[0], F32)
        self.dense_b[: self.vocab_size] = dense_b
        self.step(np.zeros(1, np.int64), self.zero_state(1))  # the first call costs ~0.5 s: here, not in a request

    @classmethod
    def from_keras(cls, model: Any, threads: int | None = None) -> LSTMStack:
        embedding = np.asarray(model.get_layer("embedding").get_weights()[0], F32)
        layers = []
        n = 0
        while any(layer.name == f"lstm_{n}" for layer in model.layers):
            kernel_w, recurrent, bias = model.get_layer(f"lstm_{n}").get_weights()
            layers.append(LayerWeights(np.asarray(kernel_w, F32), np.asarray(recurrent, F32), np.asarray(bias, F32)))
            n += 1
        dense_w, dense_b = model.get_layer("logits").get_weights()
        return cls(embedding, layers, np.asarray(dense_w, F32), np.asarray(dense_b, F32), threads)

    def zero_state(self, batch: int = 1) -> State:
        return State.zeros(self.num_layers, batch, self.units)

    def _buffers(self, rows: int, work: dict[str, Any]) -> dict[str, Any]:
        """Work arrays for `rows` rows padded to ROWS, zero-initialised so the padding stays finite."""
        if work.get("rows") != rows:
            n, rp, up = self.num_layers, padded(max(rows, 1), ROWS), self.w_rec[0].shape[1]
            work.clear()
            work["rows"] = rows
            work["bias"] = np.zeros((n - 1, rp, 4 * up), F32) + self.w_bias[:, None]  # deeper layers' b per row
            work["x"], work["z"] = np.zeros((rp, 4 * up), F32), np.zeros((rp, 4 * up), F32)
            work["c"], work["h"] = np.zeros((n, rp, up), F32), np.zeros((n, rp, up), F32)
            work["dense_b"] = np.zeros((rp, len(self.dense_b)), F32) + self.dense_b
            work["logits"] = np.zeros((rp, len(self.dense_b)), F32)
        return work

    def step(self, ids: np.ndarray, state: State) -> np.ndarray:
        """One char per row: ids (batch,) → logits (batch, vocab); `state` is updated in place."""
        b, u = state.batch, self.units
        work = self._buffers(b, state.work)
        c, h = work["c"], work["h"]
        c[:, :b, :u], h[:, :b, :u] = state.c, state.h
        ids = np.ascontiguousarray(ids, np.int64)
        dense = (self.dense_w, work["dense_b"])
        kernel.step(ids, self.table, self.w_in3, self.w_rec3, work["bias"], dense, c, h, work["x"], work["z"],
                    work["logits"], self.threads)  # fmt: skip
        state.c[...], state.h[...] = c[:, :b, :u], h[:, :b, :u]
        return work["logits"][:b, : self.vocab_size].copy()  # callers may keep it; the buffer is reused

    def prime_chunk(self, ids: np.ndarray, state: State) -> np.ndarray:
        """Run 1 to PRIME_CHUNK prompt chars (time,) through one sequence's state, layer by layer.

        Each deeper layer's input projection is one product for the whole chunk and the recurrence
        one kernel call; every row's bits are the step's (the kernels are batch-invariant), so the
        state and logits are bit for bit those of stepping char by char.  Returns the last logits.
        """
        t_len, u, up, threads = len(ids), self.units, self.w_rec[0].shape[1], self.threads
        rows = padded(t_len, ROWS)
        zs = np.zeros((t_len, ROWS, 4 * up), F32)  # [t, 0]: char t's x @ W + b; [t, 1]: padding
        hs = np.zeros((t_len, ROWS, up), F32)
        seq, proj = np.zeros((rows, up), F32), np.zeros((rows, 4 * up), F32)  # the layer below's h per char
        z, h, c = np.zeros((ROWS, 4 * up), F32), np.zeros((ROWS, up), F32), np.zeros((ROWS, up), F32)
        for n in range(self.num_layers):
            if n == 0:
                zs[:, 0] = self.table[ids]
            else:
                kernel.linear(seq, self.w_in[n], proj * 0 + self.biases[n], proj, threads)
                zs[:, 0] = proj[:t_len]
            h[0, :u], c[0, :u] = state.h[n, 0], state.c[n, 0]
            kernel.lstm_steps(zs, self.w_rec[n], z, c, h, hs, threads)
            seq[:t_len] = hs[:, 0]
            state.h[n, 0], state.c[n, 0] = h[0, :u], c[0, :u]
        logits = np.zeros((ROWS, len(self.dense_b)), F32)
        kernel.linear(h, self.dense_w, logits + self.dense_b, logits, threads)
        return logits[0, : self.vocab_size]

    def prime(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Run a whole prompt (time,) for one sequence; returns (logits after its last char, state)."""
        state = self.zero_state(1) if state is None else state
        logits = self.dense_b[: self.vocab_size].copy()  # what an empty prompt gives from a zero state
        for start in range(0, len(ids), PRIME_CHUNK):
            logits = self.prime_chunk(ids[start : start + PRIME_CHUNK], state)
        return logits, state

    def logits_of(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of a batch of sequences (batch, time) by stepping; for checks."""
        state = self.zero_state(ids.shape[0])
        return np.stack([self.step(ids[:, t], state) for t in range(ids.shape[1])], axis=1)
