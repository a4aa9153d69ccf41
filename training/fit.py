"""Set up a training run under the chosen tf.distribute strategy and run it (training/epoch.py).

Called by training/train.py on every worker.  `fit_model` builds the network (from scratch,
or from a parent model with --init-from), the AdamW optimizer with its warm-up + cosine
schedule and optional weight average, and the checkpoint (training/callbacks.py); a restarted
run resumes at the step it saved.  Only the chief restores it: its weights, optimizer state and
counters are then broadcast, so the other workers need nothing on disk.  Only the chief writes
logs and best.keras.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from model.cells.network import NetworkConfig, build_model
from training.callbacks import EpochLog, RunState
from training.config import TrainConfig
from training.corpus import Corpus
from training.dataset import eval_windows, num_windows
from training.distribute import Role, broadcast_from_chief, weights_digest
from training.epoch import EpochRunner, Plan
from training.finetune import Parent, init_weights


class TrainingError(RuntimeError):
    """Settings or a work dir that cannot train; the message says what to change."""


def train_ids(config: TrainConfig, corpus: Corpus) -> np.ndarray:
    """The training split, or its first --max-chars chars (short ablation runs)."""
    return corpus.train_ids[: config.max_chars] if config.max_chars else corpus.train_ids


def make_plan(config: TrainConfig, corpus: Corpus, replicas: int) -> Plan:
    if config.batch_size % replicas:
        raise TrainingError(
            f"--batch-size {config.batch_size} must be a multiple of the {replicas} replicas"
        )
    steps = num_windows(len(train_ids(config, corpus)), config.seq_len) // config.batch_size
    if steps < 1:
        text = (
            f"the first --max-chars {config.max_chars} of the training text"
            if config.max_chars
            else "the training text"
        )
        raise TrainingError(
            f"{corpus.name}: {text} holds fewer than --batch-size {config.batch_size} "
            f"windows of --seq-len {config.seq_len} chars"
        )
    held = len(corpus.held_out_ids)
    eval_seq_len = min(config.seq_len, held - 1)
    windows = eval_windows(held, eval_seq_len) if eval_seq_len > 0 else 0
    eval_batch = min(config.batch_size, windows // replicas * replicas)
    if eval_batch < 1:
        raise TrainingError(
            f"{corpus.name}: the held-out text (last 10%, {held} chars) is too short"
        )
    eval_steps = windows // eval_batch
    if config.max_steps:
        steps, eval_steps = min(steps, config.max_steps), min(eval_steps, config.max_steps)
    return Plan(steps, eval_seq_len, eval_batch, eval_steps)


def learning_rate(config: TrainConfig, total_steps: int) -> Any:
    """Linear warm-up to --lr, then cosine decay to 5% of it at the last step (or constant)."""
    warmup = min(config.warmup_steps, max(0, total_steps - 1))
    if config.decay != "cosine":
        if not warmup:
            return config.lr
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1 << 40, alpha=1.0, warmup_target=config.lr, warmup_steps=warmup
        )
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(
            config.lr, decay_steps=total_steps, alpha=0.05
        )
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=total_steps - warmup,
        alpha=0.05,
        warmup_target=config.lr,
        warmup_steps=warmup,
    )


def network_config(config: TrainConfig, vocab_size: int) -> NetworkConfig:
    return NetworkConfig(
        vocab_size,
        config.embedding_dim,
        config.units,
        config.layers,
        config.dropout,
        locked_dropout=config.locked_dropout,
        embedding_dropout=config.embedding_dropout,
        cell=config.cell,
    )


def _build(
    config: TrainConfig, net: NetworkConfig, total_steps: int, replicas: int, parent: Parent | None
) -> tuple[keras.Model, keras.Optimizer]:
    """The model (the parent's weights, if any) and its optimizer; call under the strategy's
    scope."""
    model = build_model(net)
    if parent is not None:  # before the optimizer: its weight average starts from these weights
        init_weights(model, parent)
    # Each replica clips its share of the gradient before the all-reduce sums them:
    # clipping at clipnorm / replicas bounds the sum by clipnorm, as on one device.
    optimizer = keras.optimizers.AdamW(
        learning_rate(config, total_steps),
        weight_decay=config.weight_decay,
        clipnorm=config.clipnorm / replicas,
        use_ema=config.ema > 0,
        ema_momentum=config.ema or 0.99,
    )
    optimizer.exclude_from_weight_decay(var_names=["bias"])
    optimizer.build(model.trainable_variables)
    return model, optimizer


def fit_model(
    config: TrainConfig,
    corpus: Corpus,
    strategy: tf.distribute.Strategy,
    role: Role,
    parent: Parent | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train (resuming from the work dir if a checkpoint is there); return the best model and run
    facts."""
    keras.utils.set_random_seed(config.seed)
    replicas = strategy.num_replicas_in_sync
    plan = make_plan(config, corpus, replicas)
    net = network_config(config, len(corpus.vocab))
    work_dir = config.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    # TF wants every worker to save; only the chief's directory is kept.
    ckpt_dir = (
        work_dir / "ckpt"
        if role.is_chief
        else Path(tempfile.mkdtemp(prefix=".worker-ckpt-", dir=work_dir))
    )
    with strategy.scope():
        model, optimizer = _build(config, net, plan.steps * config.epochs, replicas, parent)
        state = RunState(model, optimizer, ckpt_dir)
    log = EpochLog(work_dir, corpus.vocab, config.sample_prompt) if role.is_chief else None
    try:
        resumed = role.is_chief and state.restore()
    except ValueError as exc:  # a checkpoint of another model
        raise TrainingError(str(exc)) from None
    try:
        if role.num_workers > 1:
            broadcast_from_chief(strategy, [*model.weights, *optimizer.variables, *state.counters])
        if log:
            log.keep_epochs(int(state.epoch.numpy()))
        epoch, batch = int(state.epoch.numpy()), int(state.batch.numpy())
        if resumed or epoch or batch:  # every worker says so: the others got the chief's state
            print(f"resuming from the checkpoint at epoch {epoch + 1}, step {batch}", flush=True)
        EpochRunner(config, corpus, train_ids(config, corpus), strategy, plan, state, log).run()
    finally:
        if not role.is_chief:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    print(f"{role.name}: final weights sha256 {weights_digest(model)}", flush=True)
    best = work_dir / "best.keras"
    if role.is_chief and best.exists():
        model.load_weights(best)
    best_loss = float(state.best.numpy())
    return model, {
        "config": net.to_dict(),
        "epochs_run": int(state.epoch.numpy()),
        "val_loss_windows": round(best_loss, 4) if best_loss < float("inf") else None,
        "weights": log.kept_weights() if log else None,
        "train_seconds": round(float(state.seconds.numpy()), 1),
        "steps_per_epoch": plan.steps,
        "distribution": {
            "strategy": type(strategy).__name__,
            "replicas": replicas,
            "workers": role.num_workers,
        },
    }
