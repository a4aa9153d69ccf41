"""The training loop: one custom step under the chosen tf.distribute strategy, epoch by epoch.

Called by training/train.py on every worker.  Each epoch is one pass over the training
windows in a fresh random order (training/dataset.py), split between the workers, then the
held-out loss over every replica.  A checkpoint (training/callbacks.py) is saved every
--backup-every steps and after each epoch; a restarted run resumes at the step it saved.
Only the chief restores it: its weights, optimizer state and counters are then broadcast,
so the other workers need nothing on disk.  Only the chief writes logs and best.keras.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from model.network import NetworkConfig, build_model
from training.callbacks import EpochLog, RunState
from training.corpus import Corpus
from training.dataset import eval_dataset, eval_windows, num_windows, window_dataset
from training.distribute import (
    Role,
    broadcast_from_chief,
    distributed,
    make_eval_step,
    make_train_step,
    weights_digest,
)


class TrainingError(RuntimeError):
    """Settings or a work dir that cannot train; the message says what to change."""


@dataclass(frozen=True)
class Plan:
    steps: int  # optimizer steps per epoch
    eval_seq_len: int
    eval_batch: int  # global held-out batch, a multiple of the replicas
    eval_steps: int


def make_plan(args: argparse.Namespace, corpus: Corpus, replicas: int) -> Plan:
    if args.batch_size % replicas:
        raise TrainingError(f"--batch-size {args.batch_size} must be a multiple of the {replicas} replicas")
    steps = num_windows(len(corpus.train_ids), args.seq_len) // args.batch_size
    if steps < 1:
        raise TrainingError(
            f"{corpus.name}: the training text holds fewer than --batch-size {args.batch_size} "
            f"windows of --seq-len {args.seq_len} chars"
        )
    held = len(corpus.held_out_ids)
    eval_seq_len = min(args.seq_len, held - 1)
    windows = eval_windows(held, eval_seq_len) if eval_seq_len > 0 else 0
    eval_batch = min(args.batch_size, windows // replicas * replicas)
    if eval_batch < 1:
        raise TrainingError(f"{corpus.name}: the held-out text (last 10%, {held} chars) is too short")
    eval_steps = windows // eval_batch
    if args.max_steps:
        steps, eval_steps = min(steps, args.max_steps), min(eval_steps, args.max_steps)
    return Plan(steps, eval_seq_len, eval_batch, eval_steps)


def learning_rate(args: argparse.Namespace, total_steps: int) -> Any:
    """Linear warm-up to --lr, then cosine decay to 5% of it at the last step (or constant)."""
    warmup = min(args.warmup_steps, max(0, total_steps - 1))
    if args.decay != "cosine":
        if not warmup:
            return args.lr
        return keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=1 << 40, alpha=1.0, warmup_target=args.lr, warmup_steps=warmup
        )
    if not warmup:
        return keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=total_steps, alpha=0.05)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total_steps - warmup, alpha=0.05, warmup_target=args.lr, warmup_steps=warmup
    )


def fit_model(
    args: argparse.Namespace, corpus: Corpus, work_dir: Path, strategy: tf.distribute.Strategy, role: Role
) -> tuple[keras.Model, dict[str, Any]]:
    """Train (resuming from `work_dir` if a checkpoint is there); return the best model and run facts."""
    keras.utils.set_random_seed(args.seed)
    replicas = strategy.num_replicas_in_sync
    plan = make_plan(args, corpus, replicas)
    config = NetworkConfig(len(corpus.vocab), args.embedding_dim, args.units, args.layers, args.dropout)
    lr = learning_rate(args, plan.steps * args.epochs)
    work_dir.mkdir(parents=True, exist_ok=True)
    # TF wants every worker to save; only the chief's directory is kept.
    ckpt_dir = work_dir / "ckpt" if role.is_chief else Path(tempfile.mkdtemp(prefix=".worker-ckpt-", dir=work_dir))
    with strategy.scope():
        model = build_model(config)
        # Each replica clips its share of the gradient before the all-reduce sums them:
        # clipping at clipnorm / replicas bounds the sum by clipnorm, as on one device.
        optimizer = keras.optimizers.AdamW(
            lr,
            weight_decay=args.weight_decay,
            clipnorm=args.clipnorm / replicas,
            use_ema=args.ema > 0,
            ema_momentum=args.ema or 0.99,
        )
        optimizer.exclude_from_weight_decay(var_names=["bias"])
        optimizer.build(model.trainable_variables)
        state = RunState(model, optimizer, ckpt_dir)
    log = EpochLog(work_dir, corpus.vocab, args.sample_prompt) if role.is_chief else None
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
        _loop(args, corpus, strategy, plan, model, optimizer, state, log)
    finally:
        if not role.is_chief:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    print(f"{role.name}: final weights sha256 {weights_digest(model)}", flush=True)
    best = work_dir / "best.keras"
    if role.is_chief and best.exists():
        model.load_weights(best)
    best_loss = float(state.best.numpy())
    return model, {
        "config": config.to_dict(),
        "epochs_run": int(state.epoch.numpy()),
        "val_loss_windows": round(best_loss, 4) if best_loss < float("inf") else None,
        "train_seconds": round(float(state.seconds.numpy()), 1),
        "steps_per_epoch": plan.steps,
        "distribution": {"strategy": type(strategy).__name__, "replicas": replicas, "workers": role.num_workers},
    }


def _loop(
    args: argparse.Namespace,
    corpus: Corpus,
    strategy: tf.distribute.Strategy,
    plan: Plan,
    model: keras.Model,
    optimizer: keras.Optimizer,
    state: RunState,
    log: EpochLog | None,
) -> None:
    train_step = make_train_step(strategy, model, optimizer, args.batch_size)
    eval_step = make_eval_step(strategy, model)
    mark = time.monotonic()

    def clock() -> None:  # training time accumulates in the checkpoint, across runs
        nonlocal mark
        now = time.monotonic()
        state.seconds.assign_add(now - mark)
        mark = now

    first_epoch = int(state.epoch.numpy())

    def train_data(batch: int, shard: tuple[int, int], local: int) -> tf.data.Dataset:
        # Pass e is epoch e: a resume starts at the saved epoch's pass, past its done steps.
        skip = int(state.batch.numpy()) * local
        return window_dataset(
            corpus.train_ids,
            args.seq_len,
            batch,
            args.seed,
            passes=None,
            first_pass=first_epoch,
            skip_batches=skip,
            shard=shard,
            batches_per_pass=plan.steps * local,
        )

    def eval_data(batch: int, shard: tuple[int, int], local: int) -> tf.data.Dataset:
        held = corpus.held_out_ids
        per_pass = plan.eval_steps * local
        return eval_dataset(held, plan.eval_seq_len, batch, shard=shard, batches_per_pass=per_pass, passes=None)

    batches = iter(distributed(strategy, args.batch_size, train_data))
    eval_batches = iter(distributed(strategy, plan.eval_batch, eval_data))
    for epoch in range(first_epoch, args.epochs):
        if int(state.wait.numpy()) >= args.patience:  # a resumed run that had already stopped early
            break
        print(f"Epoch {epoch + 1}/{args.epochs}", flush=True)
        start, first = time.monotonic(), int(state.batch.numpy())
        total = 0.0
        for step in range(first, plan.steps):
            total += float(train_step(batches))
            state.batch.assign(step + 1)
            if int(optimizer.iterations.numpy()) % args.backup_every == 0:
                clock()
                state.save()
        val_loss = held_out_loss(eval_step, eval_batches, plan.eval_steps)
        val_ema = averaged = None
        if optimizer.use_ema:  # score the averaged weights too; keep them in the model if better
            current = [v.numpy() for v in model.trainable_variables]
            optimizer.finalize_variable_values(model.trainable_variables)
            val_ema = held_out_loss(eval_step, eval_batches, plan.eval_steps)
            averaged = val_ema < val_loss
            if not averaged:
                for variable, value in zip(model.trainable_variables, current, strict=True):
                    variable.assign(value)
        best_now = min(val_loss, val_ema) if val_ema is not None else val_loss
        improved = best_now < float(state.best.numpy())
        state.best.assign(min(best_now, float(state.best.numpy())))
        state.wait.assign(0 if improved else int(state.wait.numpy()) + 1)
        state.epoch.assign(epoch + 1)
        state.batch.assign(0)
        clock()
        took, done = time.monotonic() - start, max(1, plan.steps - first)
        logs: dict[str, Any] = {"loss": total / done, "val_loss": val_loss, "seconds": round(took, 1)}
        if val_ema is not None:
            logs |= {"val_loss_ema": val_ema, "weights": "ema" if averaged else "raw"}
        ema_note = f" - val_loss_ema: {val_ema:.4f}" if val_ema is not None else ""
        print(
            f"{plan.steps}/{plan.steps} - {took:.0f}s - {1000 * took / done:.0f}ms/step"
            f" - loss: {logs['loss']:.4f} - val_loss: {val_loss:.4f}{ema_note}",
            flush=True,
        )
        if log:
            log.epoch_end(model, epoch, logs, improved)
        if averaged:  # training goes on from the raw weights
            for variable, value in zip(model.trainable_variables, current, strict=True):
                variable.assign(value)
        state.save()  # after the history row: a resume drops rows the checkpoint lacks
        if log:
            log.sample(model, epoch)
        if int(state.wait.numpy()) >= args.patience:
            print(f"early stop: no held-out improvement in {args.patience} epochs", flush=True)


def held_out_loss(eval_step: Any, batches: Any, steps: int) -> float:
    """Mean held-out loss (nats/char) over one pass of the held-out windows, from every replica."""
    total = count = 0.0
    for _ in range(steps):
        loss_sum, chars = eval_step(batches)
        total, count = total + float(loss_sum), count + float(chars)
    return total / count
