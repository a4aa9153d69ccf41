"""Pick a tf.distribute strategy and run the training and evaluation steps under it.

    strategy = make_strategy("multi-worker", worker_timeout=300)   # reads TF_CONFIG
    role = role_of(strategy)                                       # chief? which worker?
    train_step = make_train_step(strategy, model, optimizer, global_batch=64)

`auto` is MirroredStrategy over the local GPUs when there are any, else TF's default
strategy (one device); `mirrored` is MirroredStrategy (all local GPUs); `multi-worker` is
MultiWorkerMirroredStrategy over the cluster in the standard TF_CONFIG variable.

One custom step (`strategy.run` + `strategy.reduce`) runs under every strategy: Keras 3's
`model.fit` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585), and a single
code path means the one-CPU tests exercise what runs on GPUs and clusters.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from training.config import STRATEGIES

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


class StrategyError(ValueError):
    """A distribution setting that cannot work; the message says what to fix."""


@dataclass(frozen=True)
class Role:
    """This process's place in the run: only the chief writes the model and logs."""

    name: str  # "worker 1 of 2", or "single worker"
    task_id: int
    num_workers: int
    is_chief: bool


def _cluster_problem(config: Any) -> str | None:
    """What is wrong with a parsed TF_CONFIG, or None."""
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        return 'no "cluster" object'
    cluster, task = config["cluster"], config.get("task")
    if set(cluster) - {"chief", "worker"}:
        others = sorted(set(cluster) - {"chief", "worker"})
        return f"only 'chief' and 'worker' jobs are supported, not {others}"
    if not isinstance(task, dict) or task.get("type") not in cluster:
        return 'no "task" naming one of the cluster\'s jobs'
    members, index = cluster[task["type"]], task.get("index", 0)
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        return f"task index {index!r} is not in the {task['type']!r} list"
    return None


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        raise StrategyError(
            f"--strategy multi-worker needs the TF_CONFIG variable, e.g. {TF_CONFIG_EXAMPLE}"
        )
    try:
        problem = _cluster_problem(json.loads(raw))
    except ValueError as exc:
        problem = f"not valid JSON ({exc})"
    if problem:
        raise StrategyError(
            f"TF_CONFIG is not a usable cluster: {problem}; expected e.g. {TF_CONFIG_EXAMPLE}"
        )


def make_strategy(kind: str, worker_timeout: float) -> tf.distribute.Strategy:
    """The strategy for `kind`; call before any other TensorFlow work (TF requires it for
    multi-worker)."""
    if kind == "multi-worker":
        _check_tf_config()
        # Bounds how long a worker waits for a silent (hung, partitioned) peer in one collective;
        # a peer that dies outright is noticed at once (connection reset).
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=worker_timeout)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        # TF's preemption notifier swallows SIGTERM; a supervisor's stop must stop the worker
        # (the run resumes from the last checkpoint when every worker is started again).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return strategy
    if kind == "mirrored" or (kind == "auto" and tf.config.list_physical_devices("GPU")):
        return tf.distribute.MirroredStrategy()
    if kind != "auto":
        raise StrategyError(f"unknown strategy {kind!r}; choose from {', '.join(STRATEGIES)}")
    return tf.distribute.get_strategy()


def role_of(strategy: tf.distribute.Strategy) -> Role:
    resolver: Any = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not spec:
        return Role("single worker", 0, 1, True)
    # TF numbers the chief (if any) first, then the workers: the chief holds replica 0.
    order = [(job, i) for job in ("chief", "worker") for i in range(len(spec.get(job, [])))]
    index = order.index((resolver.task_type, int(resolver.task_id)))
    return Role(f"worker {index} of {len(order)}", index, len(order), index == 0)


def check_same_run(strategy: tf.distribute.Strategy, fingerprint: str) -> None:
    """Fail clearly (on every worker) unless all workers got the same corpus and settings."""
    # < 2**20: exact squares
    value = float(int(hashlib.sha256(fingerprint.encode()).hexdigest()[:5], 16))

    @tf.function
    def moments() -> tf.Tensor:
        per_replica = strategy.run(lambda: tf.constant([value, value * value], tf.float64))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

    mean, mean_square = (float(v) for v in moments())
    if mean_square != mean * mean:  # zero variance ⇔ every worker has the same value
        raise StrategyError(
            "workers disagree on the corpus or the training flags: start all with the same ones"
        )


def broadcast_from_chief(strategy: tf.distribute.Strategy, variables: Sequence[Any]) -> None:
    """Copy the chief's values of `variables` to every worker (after the chief restored a
    checkpoint)."""
    tf_vars = [v.value if isinstance(v, keras.Variable) else v for v in variables]

    @tf.function
    def sync() -> None:
        def replica_fn() -> list[tf.Tensor]:
            ctx = tf.distribute.get_replica_context()
            first = tf.equal(ctx.replica_id_in_sync_group, 0)
            # One all-reduce per variable: a batched one would concatenate mixed dtypes.
            return [
                ctx.all_reduce(
                    tf.distribute.ReduceOp.SUM,
                    tf.where(first, tf.convert_to_tensor(v), tf.zeros_like(v)),
                )
                for v in tf_vars
            ]

        values = strategy.run(replica_fn)
        for var, value in zip(tf_vars, values, strict=True):
            var.assign(strategy.experimental_local_results(value)[0])

    sync()


def distributed(
    strategy: tf.distribute.Strategy,
    global_batch: int,
    make: Callable[[int, tuple[int, int], int], tf.data.Dataset],
) -> Any:
    """`make(per_replica_batch, (pipelines, this pipeline), local_replicas)` on every worker."""

    def dataset_fn(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
        shard = (ctx.num_input_pipelines, ctx.input_pipeline_id)
        return make(
            ctx.get_per_replica_batch_size(global_batch),
            shard,
            ctx.num_replicas_in_sync // shard[0],
        )

    return strategy.distribute_datasets_from_function(dataset_fn)


def make_train_step(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    optimizer: keras.Optimizer,
    global_batch: int,
) -> Callable[[Any], tf.Tensor]:
    """One optimizer step on the next batch of every replica; returns the mean loss (nats/char)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica_step(inputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)  # (batch, time, vocab)
            per_window = tf.reduce_mean(loss_fn(targets, logits), axis=1)  # (batch,)
            # Divided by the global batch: the all-reduce sums the replicas' gradients.
            loss = tf.nn.compute_average_loss(per_window, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))  # all-reduces
        return loss

    @tf.function
    def step(iterator: Any) -> tf.Tensor:
        per_replica = strategy.run(replica_step, args=next(iterator))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return step


def make_eval_step(
    strategy: tf.distribute.Strategy, model: keras.Model
) -> Callable[[Any], tuple[Any, Any]]:
    """Summed loss and char count of the next held-out batch of every replica (the same on all
    workers)."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)

    def replica_eval(inputs: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        per_char = loss_fn(targets, model(inputs, training=False))  # (batch, time)
        return tf.reduce_sum(per_char), tf.cast(tf.size(per_char), tf.float32)

    @tf.function
    def step(iterator: Any) -> tuple[tf.Tensor, tf.Tensor]:
        total, count = strategy.run(replica_eval, args=next(iterator))
        sum_op = tf.distribute.ReduceOp.SUM
        return strategy.reduce(sum_op, total, axis=None), strategy.reduce(sum_op, count, axis=None)

    return step


def weights_digest(model: keras.Model) -> str:
    """sha256 of the weights: equal on every worker when they trained in sync."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(weight.tobytes())
    return digest.hexdigest()
