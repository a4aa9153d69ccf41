"""tf.data pipelines over an id array (usually a memory-map): windows → (inputs, targets).

    ds = window_dataset(corpus.train_ids, seq_len=128, batch_size=64, seed=1, passes=None)

Each pass over the training windows starts at a random char offset (so every char boundary
is seen) and visits the windows in a random order drawn by `index_shuffle`: a stateless
permutation of the window numbers, so there is no shuffle buffer and the shuffle is global
whatever the corpus size.  Pass p's offset and order depend only on (seed, p), so every
worker of a cluster draws the same permutation and takes its own share of it (`shard`),
and a resumed run can start at pass p, batch b without replaying what came before.
Windows are read from the id array batch by batch, with pread when it is a memory-mapped
file, so resident memory stays flat over an epoch whatever the corpus size (the OS page
cache keeps the file's pages while there is room, outside this process).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

RELEASE_BYTES = 32 << 20  # mapped pages touched between drops: bounds the corpus's share of RSS
FAULT_AROUND = 64 << 10  # Linux maps up to 64 KB of cached file pages around each faulting one


def num_windows(num_ids: int, seq_len: int) -> int:
    """Windows that fit at any offset in [0, seq_len): each needs seq_len + 1 ids."""
    return max(0, (num_ids - 1) // seq_len - 1)


def _file_span(ids: np.ndarray) -> tuple[str, int] | None:
    """(file, byte offset of ids[0]) when `ids` is (a contiguous slice of) a memory-mapped .npy
    array."""
    root: Any = ids
    while isinstance(root.base, np.ndarray):
        root = root.base
    if not (
        isinstance(root, np.memmap) and isinstance(root.base, mmap.mmap) and ids.flags.c_contiguous
    ):
        return None
    return str(root.filename), int(root.offset) + ids.ctypes.data - root.ctypes.data


def _reader(ids: np.ndarray, seq_len: int) -> Callable[[np.ndarray], np.ndarray]:
    """starts (batch,) → ids of each window and its next char (batch, seq_len + 1), as int32."""
    span = np.arange(seq_len + 1)
    where = _file_span(ids)
    if where is None:  # an array in memory
        return lambda starts: np.asarray(ids[starts[:, None] + span], dtype=np.int32)
    # A mapped file is read with pread, not through the mapping: touching a mapping maps whole
    # page-cache folios (up to MBs per window on recent kernels), and they would count in this
    # process's RSS until unmapped; pread copies just the window from the page cache.
    fh = open(where[0], "rb", buffering=0)  # noqa: SIM115 (lives as long as the dataset)
    base, item = where[1], ids.itemsize

    def read(starts: np.ndarray) -> np.ndarray:
        block = np.empty((len(starts), seq_len + 1), dtype=ids.dtype)
        for row, start in zip(block, starts.tolist(), strict=True):
            os.preadv(fh.fileno(), [row], base + start * item)
        return block.astype(np.int32)

    return read


def _split(block: tf.Tensor, batch_size: int, seq_len: int) -> tuple[tf.Tensor, tf.Tensor]:
    block = tf.ensure_shape(block, (batch_size, seq_len + 1))
    return block[:, :-1], block[:, 1:]


def window_dataset(
    ids: np.ndarray,
    seq_len: int,
    batch_size: int,
    seed: int,
    *,
    passes: int | None = 1,
    first_pass: int = 0,
    skip_batches: int = 0,
    shard: tuple[int, int] = (1, 0),
    batches_per_pass: int | None = None,
) -> tf.data.Dataset:
    """Training batches of `batch_size` windows, pass after pass (`passes=None`: forever).

    `shard=(count, index)`: this pipeline takes every count-th window of each pass's order (one
    pipeline per worker).  `batches_per_pass` cuts each pass short (so that passes line up with
    epochs); `skip_batches` skips the start of the first pass (a resume).
    """
    n = num_windows(len(ids), seq_len)
    count, index = shard
    if n // count < batch_size:
        raise ValueError(
            f"only {n} training windows of {seq_len} chars; need at least one batch of {batch_size}"
        )
    read = _reader(ids, seq_len)

    def one_pass(p: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), p])
        offset = tf.random.stateless_uniform([], key, 0, seq_len, tf.int64)
        positions = tf.data.Dataset.range(index, n, count).batch(batch_size, drop_remainder=True)
        positions = positions.take(-1 if batches_per_pass is None else batches_per_pass)
        positions = positions.skip(tf.cast(tf.equal(p, first_pass), tf.int64) * skip_batches)
        # A stateless permutation of [0, n): the same for every worker, no buffer held.
        return positions.map(
            lambda k: tf.random.experimental.index_shuffle(k, key, n - 1) * seq_len + offset
        )

    last = first_pass + passes if passes is not None else np.iinfo(np.int64).max
    starts = tf.data.Dataset.range(first_pass, last).flat_map(one_pass)
    blocks = starts.map(
        lambda s: tf.numpy_function(read, [s], tf.int32), num_parallel_calls=tf.data.AUTOTUNE
    )
    return blocks.map(lambda b: _split(b, batch_size, seq_len)).prefetch(tf.data.AUTOTUNE)


def eval_windows(num_ids: int, seq_len: int) -> int:
    """Held-out windows at offset 0."""
    return max(0, (num_ids - 1) // seq_len)


def eval_dataset(
    ids: np.ndarray,
    seq_len: int,
    batch_size: int,
    *,
    shard: tuple[int, int] = (1, 0),
    batches_per_pass: int | None = None,
    passes: int | None = 1,
) -> tf.data.Dataset:
    """Held-out batches at offset 0 in order, the same ones on every pass (the per-epoch validation
    loss)."""
    n = eval_windows(len(ids), seq_len)
    count, index = shard
    read = _reader(ids, seq_len)
    starts = (
        tf.data.Dataset.range(index, n, count)
        .map(lambda k: k * seq_len)
        .batch(batch_size, drop_remainder=True)
    )
    starts = starts.take(-1 if batches_per_pass is None else batches_per_pass).repeat(passes)
    blocks = starts.map(lambda s: tf.numpy_function(read, [s], tf.int32))
    return blocks.map(lambda b: _split(b, batch_size, seq_len)).prefetch(tf.data.AUTOTUNE)
