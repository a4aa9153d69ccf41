"""tf.data pipelines over an id array (usually a memory-map): windows → (inputs, targets).

Training windows start at a fresh random offset each epoch (so every char boundary is seen),
are shuffled and batched, and are read from the id array batch by batch: no list of windows
is ever built, so memory stays bounded for any corpus size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf


def num_windows(num_ids: int, seq_len: int) -> int:
    """Windows that fit at any offset in [0, seq_len): each needs seq_len + 1 ids."""
    return max(0, (num_ids - 1) // seq_len - 1)


def _reader(ids: np.ndarray, seq_len: int) -> Callable[[np.ndarray], np.ndarray]:
    span = np.arange(seq_len + 1)

    def read(starts: np.ndarray) -> np.ndarray:
        return np.asarray(ids[starts[:, None] + span], dtype=np.int32)  # (batch, seq_len + 1)

    return read


def _split(block: tf.Tensor, batch_size: int, seq_len: int) -> tuple[tf.Tensor, tf.Tensor]:
    block = tf.ensure_shape(block, (batch_size, seq_len + 1))
    return block[:, :-1], block[:, 1:]


def window_dataset(ids: np.ndarray, seq_len: int, batch_size: int, seed: int) -> tf.data.Dataset:
    """Shuffled training batches; a new random offset and order on every pass."""
    n = num_windows(len(ids), seq_len)
    if n < batch_size:
        raise ValueError(f"only {n} training windows of {seq_len} chars; need at least one batch of {batch_size}")
    read = _reader(ids, seq_len)
    offsets = tf.data.Dataset.range(seq_len).shuffle(seq_len, seed=seed, reshuffle_each_iteration=True).take(1)

    def windows(offset: tf.Tensor) -> tf.data.Dataset:
        order = tf.data.Dataset.range(n).shuffle(min(n, 1 << 20), seed=seed + 1, reshuffle_each_iteration=True)
        return order.map(lambda k: k * seq_len + offset)

    starts = offsets.flat_map(windows).batch(batch_size, drop_remainder=True)
    blocks = starts.map(lambda s: tf.numpy_function(read, [s], tf.int32), num_parallel_calls=tf.data.AUTOTUNE)
    ds = blocks.map(lambda b: _split(b, batch_size, seq_len))
    return ds.apply(tf.data.experimental.assert_cardinality(n // batch_size)).prefetch(tf.data.AUTOTUNE)


def eval_dataset(ids: np.ndarray, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """Held-out batches at offset 0 in order, for the per-epoch validation loss."""
    n = max(1, (len(ids) - 1) // seq_len)
    read = _reader(ids, seq_len)
    batch = min(batch_size, n)
    starts = tf.data.Dataset.range(n).map(lambda k: k * seq_len).batch(batch, drop_remainder=True)
    blocks = starts.map(lambda s: tf.numpy_function(read, [s], tf.int32))
    return blocks.map(lambda b: _split(b, batch, seq_len)).prefetch(tf.data.AUTOTUNE)
