"""The LSTM step, written as the gate equations over the trained weights (NumPy, float32).

For each layer, with Keras's gate order (input, forget, candidate, output):

    z = x @ W + h @ U + b                       # (batch, 4*units)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o)
    c = f * c + i * g                           # the cell state carried over time
    h = o * tanh(c)

Generation calls `step` once per char, so nothing here goes through Keras: the per-call
overhead of `model.predict` is what makes the classic implementations slow.  Two exact
rewrites keep the step lean: the first layer's `embedding @ W + b` is precomputed as a
(vocab, 4*units) table, so its input projection is a row lookup; and `sigmoid(x)` is
computed as `0.5 + 0.5*tanh(x/2)`, which cannot overflow.  Checked against the Keras model
in tests/test_cell.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

F32 = np.float32


@dataclass(frozen=True)
class LayerWeights:
    kernel: np.ndarray  # (in, 4*units)
    recurrent: np.ndarray  # (units, 4*units)
    bias: np.ndarray  # (4*units,)


@dataclass
class State:
    """Recurrent state of a batch: h and c of shape (layers, batch, units)."""

    h: np.ndarray
    c: np.ndarray

    @classmethod
    def zeros(cls, layers: int, batch: int, units: int) -> State:
        return cls(np.zeros((layers, batch, units), F32), np.zeros((layers, batch, units), F32))

    def rows(self, index: Any) -> State:
        return State(self.h[:, index].copy(), self.c[:, index].copy())

    @staticmethod
    def stack(states: list[State]) -> State:
        return State(np.concatenate([s.h for s in states], 1), np.concatenate([s.c for s in states], 1))


def _gates(z: np.ndarray, c: np.ndarray, units: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply the gate equations to pre-activations z (batch, 4*units); return new (h, c)."""
    ifo = np.tanh(z * F32(0.5))  # sigmoid via tanh for i, f, o; g overwritten below
    ifo *= F32(0.5)
    ifo += F32(0.5)
    g = np.tanh(z[:, 2 * units : 3 * units])
    i, f, o = ifo[:, :units], ifo[:, units : 2 * units], ifo[:, 3 * units :]
    c_new = f * c
    c_new += i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new


class LSTMStack:
    """The whole network as NumPy arrays: embedding table, LSTM layers, output projection."""

    def __init__(self, embedding: np.ndarray, layers: list[LayerWeights], dense_w: np.ndarray, dense_b: np.ndarray):
        self.units = layers[0].recurrent.shape[0]
        self.num_layers = len(layers)
        self.vocab_size = dense_w.shape[1]
        # Layer 0's input projection for every possible char, bias folded in: (vocab, 4*units).
        self.input_table = (embedding.astype(F32) @ layers[0].kernel + layers[0].bias).astype(F32)
        self.layers = layers
        self.dense_w, self.dense_b = dense_w.astype(F32), dense_b.astype(F32)

    @classmethod
    def from_keras(cls, model: Any) -> LSTMStack:
        embedding = np.asarray(model.get_layer("embedding").get_weights()[0], F32)
        layers = []
        n = 0
        while any(layer.name == f"lstm_{n}" for layer in model.layers):
            kernel, recurrent, bias = model.get_layer(f"lstm_{n}").get_weights()
            layers.append(LayerWeights(np.asarray(kernel, F32), np.asarray(recurrent, F32), np.asarray(bias, F32)))
            n += 1
        dense_w, dense_b = model.get_layer("logits").get_weights()
        return cls(embedding, layers, np.asarray(dense_w, F32), np.asarray(dense_b, F32))

    def zero_state(self, batch: int = 1) -> State:
        return State.zeros(self.num_layers, batch, self.units)

    def step(self, ids: np.ndarray, state: State) -> np.ndarray:
        """One char per row: ids (batch,) → logits (batch, vocab); `state` is updated in place."""
        x = None
        for n, layer in enumerate(self.layers):
            if n == 0:
                z = self.input_table[ids]  # (batch, 4*units), a fresh copy
            else:
                z = x @ layer.kernel
                z += layer.bias
            z += state.h[n] @ layer.recurrent
            state.h[n], state.c[n] = _gates(z, state.c[n], self.units)
            x = state.h[n]
        return x @ self.dense_w + self.dense_b

    def prime(self, ids: np.ndarray, state: State | None = None) -> tuple[np.ndarray, State]:
        """Run a prompt (time,) through the network for one sequence, layer by layer.

        Each layer's input projection for the whole prompt is one matrix product; only the
        recurrent product remains per char.  Returns (logits after the last char (vocab,), state).
        """
        state = self.zero_state(1) if state is None else state
        seq = None
        for n, layer in enumerate(self.layers):
            if n == 0:
                zs = self.input_table[ids]  # (time, 4*units)
            else:
                zs = seq @ layer.kernel + layer.bias
            h, c = state.h[n], state.c[n]  # (1, units)
            out = np.empty((len(ids), self.units), F32)
            for t in range(len(ids)):
                h, c = _gates(zs[t : t + 1] + h @ layer.recurrent, c, self.units)
                out[t] = h[0]
            state.h[n], state.c[n] = h, c
            seq = out
        assert seq is not None
        return seq[-1] @ self.dense_w + self.dense_b, state

    def logits_of(self, ids: np.ndarray) -> np.ndarray:
        """Logits for every position of a batch of sequences (batch, time) by stepping; for checks."""
        state = self.zero_state(ids.shape[0])
        return np.stack([self.step(ids[:, t], state) for t in range(ids.shape[1])], axis=1)
