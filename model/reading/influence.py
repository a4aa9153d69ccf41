"""What the model remembers: how much each earlier char moves the prediction at a position.

    curve = influence(keras_model, ids, position=200)   # (k,) for k = 1 .. min(position, 512)
    curve[k - 1] == ‖∂ log p(x_t | x_<t) / ∂ e(x_{t−k})‖  with t = position

The gradient of the log-probability of the char at `position` with respect to the embedding
of the char k steps back (Distill's "connectivity", Madsen 2019), computed by TensorFlow on the
loaded Keras model: the network after its embedding layer is run on the embeddings themselves,
so the tape can differentiate through every recurrent layer.  A batch of positions is one
forward and one backward pass (`influence_rows`): rows never mix, so each row's gradient is its
own.  `memory_span` turns an averaged curve into the distance where influence falls below 1% of
the nearest char's.

Works for every cell Keras trains here (LSTM, GRU, SimpleRNN): only the layers' own calls run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MAX_CONTEXT = 512  # chars before the position that the gradient reaches back over
SPAN_FRACTION = 0.01  # memory span: where influence falls below this fraction of the nearest char's


class Influence:
    """The Keras model split at its embedding, with a compiled gradient of one char's
    log-probability."""

    def __init__(self, model: Any):
        import tensorflow as tf

        layers = [layer for layer in model.layers if layer.name not in ("ids",)]
        if not layers or layers[0].name != "embedding":
            raise ValueError("the model has no embedding layer to differentiate against")
        self.table = layers[0].embeddings  # (vocab, dim)
        self.rest = layers[1:]  # dropout, recurrent layers, dense: each called in inference mode

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, None), tf.int32),  # ids (rows, time): the context
                tf.TensorSpec((None,), tf.int32),  # the char predicted after each row's context
            ],
            reduce_retracing=True,
        )
        def norms(ids: Any, targets: Any) -> Any:
            x = tf.gather(self.table, ids)  # (rows, time, dim)
            with tf.GradientTape() as tape:
                tape.watch(x)
                h = x
                for layer in self.rest:
                    h = layer(h, training=False)
                last = h[:, -1, :]  # (rows, vocab): the logits after the whole context
                log_p = tf.nn.log_softmax(last, axis=-1)
                picked = tf.gather(log_p, targets, axis=1, batch_dims=1)  # (rows,)
                total = tf.reduce_sum(picked)  # rows never mix: each row's gradient is its own
            grad = tape.gradient(total, x)  # (rows, time, dim)
            return tf.norm(grad, axis=-1), picked

        self._norms = norms

    def rows(self, contexts: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For contexts (rows, time) and targets (rows,): influence (rows, time), k = 1 last, and
        each target's log-probability (rows,)."""
        norm, log_p = self._norms(np.asarray(contexts, np.int32), np.asarray(targets, np.int32))
        return np.asarray(norm)[:, ::-1].copy(), np.asarray(log_p)  # column k-1: k chars back

    def at(self, ids: np.ndarray, position: int) -> tuple[np.ndarray, float]:
        """Influence of each char before `position` (at most MAX_CONTEXT of them) on predicting
        ids[position]: (k,) with k = 1 first, and that char's log-probability (nats)."""
        if not 1 <= position < len(ids):
            raise ValueError(f"position: Pick a position from 1 to {len(ids) - 1}.")
        start = max(0, position - MAX_CONTEXT)
        curve, log_p = self.rows(ids[None, start:position], np.array([ids[position]]))
        return curve[0], float(log_p[0])


def memory_span(curve: np.ndarray, fraction: float = SPAN_FRACTION) -> int:
    """The first distance k (1-based) where the curve falls below `fraction` of its value at k = 1;
    the curve's length + 1 when it never does (the span reaches past the context)."""
    curve = np.asarray(curve, np.float64)
    if not curve.size or curve[0] <= 0:
        return 1
    below = np.flatnonzero(curve < fraction * curve[0])
    return int(below[0]) + 1 if below.size else len(curve) + 1


def average_curve(
    influence: Influence,
    ids: np.ndarray,
    positions: int,
    context: int,
    seed: int = 0,
    batch: int = 32,
) -> np.ndarray:
    """The mean influence curve over `positions` random positions of `ids`, each with `context`
    chars before it, in batches of rows (one forward and backward pass each)."""
    if len(ids) <= context:
        raise ValueError(f"the text needs more than {context} chars")
    rng = np.random.default_rng(seed)
    picks = np.sort(rng.choice(np.arange(context, len(ids)), size=positions, replace=False))
    total = np.zeros(context)
    for start in range(0, positions, batch):
        at = picks[start : start + batch]
        contexts = np.stack([ids[p - context : p] for p in at])
        curves, _ = influence.rows(contexts, ids[at])
        total += curves.sum(axis=0)
    return total / positions
