"""The network laid out for the kernels: char table, recurrent layers (LSTM, GRU or RNN), output.

    stack = Stack.from_keras(keras_model)                   # any cell Keras trained here
    logits, state = stack.prime(vocab.encode("ROMEO:"))     # (vocab,), State of batch 1
    logits = stack.step(np.array([next_id]), state)         # (1, vocab); state updated in place

Generation calls `step` once per char, so nothing here goes through Keras (the per-call overhead
of `model.predict` is what makes the classic implementations slow).  The cell's equations are its
own short file (lstm.py, gru.py, rnn.py); the products are the shared kernel's (kernel.py).  Layer
0's `embedding @ W + b` is precomputed at load as a (vocab, columns) table: a row lookup.

Reproducibility: a row's bits never depend on the batch it is in, its position there, the thread
count or the vector width (model/cells/gemm.py says how), so a seed gives the same text alone or
beside other sequences, and priming (`prime_chunk`, `prime_rows`: the same compiled code over
time) gives a state the bits of stepping char by char.  A step is one compiled call that shares
each product over `threads` threads, every core by default (`default_threads()`).
Checked against Keras in tests/test_cell.py, bit for bit across batches in tests/test_kernel.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np

from model.cells import kernel
from model.cells.kernel import CELL_KINDS, CELLS, columns

F32 = np.float32
PRIME_CHUNK = 16  # prompt chars primed per call of prime_chunk (fixed, so priming is reproducible)
LAYER_PREFIXES = {"lstm": "lstm_", "gru": "gru_", "rnn": "rnn_"}  # model/cells/network.py's names


def default_threads() -> int:
    """Threads a step may use: the cores this process may run on, at most NUMBA_NUM_THREADS."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LayerWeights:
    """One recurrent layer's weights in Keras's layout and block order (lstm.py, gru.py say
    which)."""

    kernel: np.ndarray  # W (in, blocks*units)
    recurrent: np.ndarray  # U (units, blocks*units)
    bias: np.ndarray  # b_in (blocks*units,)
    recurrent_bias: np.ndarray | None = None  # b_rec (blocks*units,): the GRU's; None: zero


@dataclass
class State:
    """Recurrent state of a batch: h (layers, batch, units); c the same for an LSTM, else width
    0."""

    h: np.ndarray
    c: np.ndarray
    work: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # step buffers

    @classmethod
    def zeros(cls, layers: int, batch: int, units: int, cell_units: int | None = None) -> State:
        c_units = units if cell_units is None else cell_units
        return cls(np.zeros((layers, batch, units), F32), np.zeros((layers, batch, c_units), F32))

    @property
    def batch(self) -> int:
        return int(self.h.shape[1])

    def copy(self) -> State:
        return State(self.h.copy(), self.c.copy())

    def rows(self, index: Any) -> State:
        return State(np.ascontiguousarray(self.h[:, index]), np.ascontiguousarray(self.c[:, index]))

    @staticmethod
    def stack(states: list[State]) -> State:
        return State(
            np.concatenate([s.h for s in states], 1), np.concatenate([s.c for s in states], 1)
        )


class Stack:
    """The whole network laid out for the kernels: char table, recurrent layers, output
    projection."""

    # The engine may run several steps and draws in one call (model/engine/burst.py), which never
    # calls `step`: a subclass that replaces `step` sets this False.
    bursts = True

    def __init__(
        self,
        embedding: np.ndarray,
        layers: list[LayerWeights],
        dense_w: np.ndarray,
        dense_b: np.ndarray,
        threads: int | None = None,
        cell: str = "lstm",
    ):
        if cell not in CELLS:
            raise ValueError(f"cell: must be one of {sorted(CELLS)}")
        self.cell, self.kind, equations = cell, CELL_KINDS[cell], CELLS[cell]
        self.gate_names: tuple[str, ...] = equations.GATES
        u = self.units = int(layers[0].recurrent.shape[0])
        n = equations.BLOCKS * u  # the cell's z columns; the work arrays have columns(n)
        self.cell_units = u if equations.HAS_CELL_STATE else 0  # c's width
        self.num_layers = len(layers)
        self.vocab_size = int(dense_w.shape[1])
        self.threads = default_threads() if threads is None else threads  # bits never depend on it
        # Keras layout
        self.embedding, self.layers, self.dense = embedding, layers, (dense_w, dense_b)
        first = layers[0]
        # Layer 0's input projection for every possible char, bias folded in: (vocab, columns).
        table = np.asarray(embedding, np.float64) @ first.kernel.astype(np.float64) + first.bias
        self.table = np.zeros((len(table), columns(n)), F32)
        self.table[:, :n] = table
        self.w_rec = kernel.packed_layers([lw.recurrent for lw in layers], u, n)  # U per layer
        self.w_in = kernel.packed_layers([lw.kernel for lw in layers[1:]], u, n)  # W, layers 1..
        self.b_in = np.zeros((len(layers), columns(n)), F32)  # row 0 unused: in the table
        self.b_rec = np.zeros((len(layers), columns(n)), F32)
        for i, lw in enumerate(layers):
            self.b_in[i, :n] = lw.bias
            if lw.recurrent_bias is not None:
                self.b_rec[i, :n] = lw.recurrent_bias
        self.dense_w = kernel.packed(dense_w)  # (panels, units, PANEL)
        self.dense_b = np.zeros(columns(self.vocab_size), F32)
        self.dense_b[: self.vocab_size] = dense_b
        self.step(np.zeros(1, np.int64), self.zero_state(1))  # the first call loads the kernels

    @classmethod
    def from_keras(cls, model: Any, threads: int | None = None) -> Stack:
        names = {layer.name for layer in model.layers}
        cell = next((c for c, p in LAYER_PREFIXES.items() if f"{p}0" in names), None)
        if cell is None:
            raise ValueError("the model has no lstm_0, gru_0 or rnn_0 layer")
        embedding = np.asarray(model.get_layer("embedding").get_weights()[0], F32)
        layers, n = [], 0
        while f"{LAYER_PREFIXES[cell]}{n}" in names:
            layers.append(keras_layer(model.get_layer(f"{LAYER_PREFIXES[cell]}{n}"), cell))
            n += 1
        dense_w, dense_b = model.get_layer("logits").get_weights()
        return cls(
            embedding, layers, np.asarray(dense_w, F32), np.asarray(dense_b, F32), threads, cell
        )

    def zero_state(self, batch: int = 1) -> State:
        return State.zeros(self.num_layers, batch, self.units, self.cell_units)

    def buffers(self, state: State) -> dict[str, Any]:
        """The step's work arrays for the state's rows, kept with it: the per-row biases, x, r and
        the logits (`step` and model/engine/burst.py)."""
        rows, work = state.batch, state.work
        if work.get("rows") != rows:
            n, cols = self.num_layers, self.b_in.shape[1]
            work.clear()
            work["rows"] = rows
            work["b_in"] = np.zeros((n - 1, rows, cols), F32) + self.b_in[1:, None]
            work["b_rec"] = np.zeros((n, rows, cols), F32) + self.b_rec[:, None]
            work["x"], work["r"] = np.zeros((rows, cols), F32), np.zeros((rows, cols), F32)
            work["dense_b"] = np.zeros((rows, len(self.dense_b)), F32) + self.dense_b
            work["logits"] = np.zeros((rows, len(self.dense_b)), F32)
        return work

    def step(self, ids: np.ndarray, state: State) -> np.ndarray:
        """One char per row: ids (batch,) → logits (batch, vocab); `state` is updated in place."""
        work = self.buffers(state)
        ids = np.ascontiguousarray(ids, np.int64)
        kernel.step(
            self.kind,
            ids,
            self.table,
            self.w_in,
            self.w_rec,
            work["b_in"],
            work["b_rec"],
            (self.dense_w, work["dense_b"]),
            state.c,
            state.h,
            work["x"],
            work["r"],
            work["logits"],
            self.threads,
        )
        return work["logits"][
            :, : self.vocab_size
        ].copy()  # callers may keep it; the buffer is reused

    def run_layer(
        self, n: int, xs: np.ndarray, h: np.ndarray, c: np.ndarray, record: bool = False
    ) -> dict[str, np.ndarray]:
        """Layer n over time for a few rows: xs (time, rows, columns) its inputs x @ W + b; h and c
        (rows, units) in place.  Returns hs (time, rows, units) and, with `record`, cs and rs."""
        t_len, rows, cols = xs.shape
        hs = np.zeros((t_len, rows, self.units), F32)
        cs = np.zeros((t_len if record else 0, rows, self.cell_units), F32)
        rs = np.zeros((t_len if record else 0, rows, cols), F32)
        b_rec = np.zeros((rows, cols), F32) + self.b_rec[n]
        kernel.steps(
            self.kind,
            xs,
            self.w_rec[n],
            b_rec,
            np.zeros((rows, cols), F32),
            c,
            h,
            hs,
            cs,
            rs,
            self.threads,
        )
        return {"hs": hs, "cs": cs, "rs": rs}

    def run_layers(
        self, ids: np.ndarray, state: State, layers: int | None = None, record: bool = False
    ) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """The first `layers` layers (all by default) over a chunk of chars, ids (time, rows),
        from `state` (its rows those of ids), which advances in place: layer by layer, each
        layer's input projection one product and its recurrence one kernel call (priming's path,
        the bits of stepping).  Returns each layer's (xs, run_layer's dict)."""
        out: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
        below: np.ndarray | None = None
        for n in range(self.num_layers if layers is None else layers):
            h, c = state.h[n].copy(), state.c[n].copy()
            xs = np.ascontiguousarray(self.layer_inputs(n, ids, below))
            run = self.run_layer(n, xs, h, c, record)
            state.h[n], state.c[n], below = h, c, run["hs"]
            out.append((xs, run))
        return out

    def layer_inputs(self, n: int, ids: np.ndarray, below: np.ndarray | None) -> np.ndarray:
        """x = x_in @ W + b for layer n at every char: ids (time, rows) for layer 0, else the layer
        below's hs (time, rows, units) → (time, rows, columns), one product for all of them."""
        if n == 0:
            return self.table[ids]
        assert below is not None
        t_len, rows, _ = below.shape
        flat = np.ascontiguousarray(below.reshape(t_len * rows, self.units))
        out = np.zeros((t_len * rows, self.b_in.shape[1]), F32) + self.b_in[n]
        kernel.linear(flat, self.w_in[n - 1], out, out, self.threads)
        return out.reshape(t_len, rows, -1)

    def logits_after(self, h: np.ndarray) -> np.ndarray:
        """The output layer on h (rows, units) of the last layer → logits (rows, vocab)."""
        out = np.zeros((len(h), len(self.dense_b)), F32) + self.dense_b
        kernel.linear(np.ascontiguousarray(h), self.dense_w, out, out, self.threads)
        return out[:, : self.vocab_size]

    def prime_chunk(self, ids: np.ndarray, state: State) -> np.ndarray:
        """Run 1 to PRIME_CHUNK prompt chars (time,) through one sequence's state, layer by layer:
        each layer's input projection one product for the chunk, the recurrence one kernel call.
        Bit for bit the state and logits of stepping char by char.  Returns the last logits."""
        return self.prime_rows([np.asarray(ids)], [state])[0]

    def prime_rows(self, chunks: list[np.ndarray], states: list[State]) -> list[np.ndarray]:
        """Prime several sequences together: chunks[j] (1 to PRIME_CHUNK chars) through states[j]
        (batch 1), as rows of one product per char and layer; a row that ends before the others
        leaves at its last char (the time loop runs in segments, the rows still going first). Each
        state and logits have the bits of priming that sequence alone.  Returns each
        sequence's last logits."""
        lengths = [len(ids) for ids in chunks]
        # still going: a prefix of rows
        order = sorted(range(len(chunks)), key=lambda j: -lengths[j])
        t_len, rows = lengths[order[0]], len(chunks)
        ids = np.zeros((t_len, rows), np.int64)  # (time, row); past a row's end: char 0, never kept
        for r, j in enumerate(order):
            ids[: lengths[j], r] = chunks[j]
        ends = sorted(set(lengths))
        hs: np.ndarray | None = None
        h = np.zeros((rows, self.units), F32)
        for n in range(self.num_layers):
            xs = self.layer_inputs(n, ids, hs)
            c = np.zeros((rows, self.cell_units), F32)
            for r, j in enumerate(order):
                h[r], c[r] = states[j].h[n, 0], states[j].c[n, 0]
            hs = np.zeros((t_len, rows, self.units), F32)
            start = 0
            for end in ends:  # rows [0, going) run chars [start, end); the others have left
                going = sum(length >= end for length in lengths)
                h_seg, c_seg = h[:going].copy(), c[:going].copy()
                run = self.run_layer(n, np.ascontiguousarray(xs[start:end, :going]), h_seg, c_seg)
                hs[start:end, :going] = run["hs"]
                h[:going], c[:going] = h_seg, c_seg
                start = end
            for r, j in enumerate(order):
                states[j].h[n, 0], states[j].c[n, 0] = h[r], c[r]
        logits = self.logits_after(h)
        out: list[np.ndarray] = [np.empty(0, F32)] * len(chunks)
        for r, j in enumerate(order):
            out[j] = logits[r].copy()
        return out

    def prime(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Run a whole prompt (time,) for one sequence; returns (logits after its last char,
        state)."""
        state = self.zero_state(1) if state is None else state
        logits = self.dense_b[
            : self.vocab_size
        ].copy()  # what an empty prompt gives from a zero state
        for start in range(0, len(ids), PRIME_CHUNK):
            logits = self.prime_chunk(ids[start : start + PRIME_CHUNK], state)
        return logits, state

    def logits_of(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of a batch of sequences (batch, time) by stepping; for
        checks."""
        state = self.zero_state(ids.shape[0])
        return np.stack([self.step(ids[:, t], state) for t in range(ids.shape[1])], axis=1)


LSTMStack = Stack  # the name from before the GRU and RNN cells


def keras_layer(layer: Any, cell: str) -> LayerWeights:
    """A Keras LSTM, GRU (reset_after) or SimpleRNN layer's weights as LayerWeights."""
    weights = [np.asarray(w, F32) for w in layer.get_weights()]
    kernel_w, recurrent, bias = weights
    if cell == "gru":
        if bias.ndim != 2:
            raise ValueError(
                f"{layer.name}: only GRUs with reset_after=True (Keras's default) are served"
            )
        return LayerWeights(kernel_w, recurrent, bias[0], bias[1])
    return LayerWeights(kernel_w, recurrent, bias)
