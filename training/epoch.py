"""One epoch at a time: train on a pass of the windows, score the held-out windows, log, save.

    EpochRunner(config, corpus, train_ids, strategy, plan, state, log).run()

Each epoch is one pass over the training windows in a fresh random order (training/dataset.py),
split between the workers, then `window_loss` over the held-out windows on every replica (the
per-window mean used to pick the best epoch; training/evaluate.py's `held_out_loss`, with the
state carried over the whole text, is the card's figure).  With a weight average (--ema) the
averaged weights are scored too, and kept in best.keras when they score better; training goes
on from the raw weights.  A checkpoint is saved every --backup-every steps and after each epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from training.callbacks import EpochLog, RunState
from training.config import TrainConfig
from training.corpus import Corpus
from training.dataset import eval_dataset, window_dataset
from training.distribute import distributed, make_eval_step, make_train_step
from training.progress import Progress


@dataclass(frozen=True)
class Plan:
    """How an epoch is cut (training/fit.py's make_plan fills it from the corpus and flags)."""

    steps: int  # optimizer steps per epoch
    eval_seq_len: int
    eval_batch: int  # global held-out batch, a multiple of the replicas
    eval_steps: int


def window_loss(eval_step: Any, batches: Any, steps: int) -> float:
    """Mean loss (nats/char) over one pass of the held-out windows (each from a zero state), every
    replica."""
    total = count = 0.0
    for _ in range(steps):
        loss_sum, chars = eval_step(batches)
        total, count = total + float(loss_sum), count + float(chars)
    return total / count


@dataclass
class Scores:
    """An epoch's held-out scores; `raw` holds the trained weights while the averaged ones are in
    the model."""

    val_loss: float
    val_loss_ema: float | None = None
    raw: list[np.ndarray] | None = None

    @property
    def best(self) -> float:
        return (
            min(self.val_loss, self.val_loss_ema)
            if self.val_loss_ema is not None
            else self.val_loss
        )


class EpochRunner:
    """The epochs of one run under one strategy; every worker runs it, the chief logs."""

    def __init__(
        self,
        config: TrainConfig,
        corpus: Corpus,
        train_ids: np.ndarray,
        strategy: tf.distribute.Strategy,
        plan: Plan,
        state: RunState,
        log: EpochLog | None,
    ):
        self.config, self.plan, self.state, self.log = config, plan, state, log
        self.model, self.optimizer = state.model, state.optimizer
        self.train_step = make_train_step(strategy, self.model, self.optimizer, config.batch_size)
        self.eval_step = make_eval_step(strategy, self.model)
        self.train_ids, self.held_out_ids = train_ids, corpus.held_out_ids
        self.first_epoch = int(state.epoch.numpy())
        # a resume starts at the saved epoch's pass, past its done steps
        self.skip = int(state.batch.numpy())
        self.batches = iter(distributed(strategy, config.batch_size, self._train_data))
        self.eval_batches = iter(distributed(strategy, plan.eval_batch, self._eval_data))
        self.mark = time.monotonic()

    def _train_data(self, batch: int, shard: tuple[int, int], local: int) -> tf.data.Dataset:
        # Pass e is epoch e, so a resume draws the same windows as an uninterrupted run.
        return window_dataset(
            self.train_ids,
            self.config.seq_len,
            batch,
            self.config.seed,
            passes=None,
            first_pass=self.first_epoch,
            skip_batches=self.skip * local,
            shard=shard,
            batches_per_pass=self.plan.steps * local,
        )

    def _eval_data(self, batch: int, shard: tuple[int, int], local: int) -> tf.data.Dataset:
        per_pass, seq_len = self.plan.eval_steps * local, self.plan.eval_seq_len
        return eval_dataset(
            self.held_out_ids, seq_len, batch, shard=shard, batches_per_pass=per_pass, passes=None
        )

    def stopped(self) -> bool:
        return int(self.state.wait.numpy()) >= self.config.patience

    def run(self) -> None:
        for epoch in range(self.first_epoch, self.config.epochs):
            if self.stopped():  # a resumed run that had already stopped early
                break
            self.run_epoch(epoch)
            if self.stopped():
                print(
                    f"early stop: no held-out improvement in {self.config.patience} epochs",
                    flush=True,
                )

    def run_epoch(self, epoch: int) -> None:
        progress = None
        if self.log:  # progress on the chief only
            chars_per_step = self.config.batch_size * self.config.seq_len
            progress = Progress(
                epoch,
                self.config.epochs,
                self.plan.steps,
                int(self.state.batch.numpy()),
                chars_per_step,
            )
        start = time.monotonic()
        loss = self.train_epoch(progress)
        scores = self.validate()
        logs: dict[str, Any] = {
            "loss": loss,
            "val_loss": scores.val_loss,
            "seconds": round(time.monotonic() - start, 1),
        }
        if scores.val_loss_ema is not None:
            logs |= {
                "val_loss_ema": scores.val_loss_ema,
                "weights": "raw" if scores.raw is None else "ema",
            }
        if progress:
            logs["chars_per_s"] = round(progress.chars_per_s())
            progress.end(logs)
        self.end_epoch(epoch, scores, logs)

    def clock(self) -> None:
        """Training time accumulates in the checkpoint, across runs."""
        now = time.monotonic()
        self.state.seconds.assign_add(now - self.mark)
        self.mark = now

    def train_epoch(self, progress: Progress | None) -> float:
        """The rest of the epoch's steps (all of them unless resumed mid-epoch); their mean loss."""
        first, total = int(self.state.batch.numpy()), 0.0
        for step in range(first, self.plan.steps):
            loss = float(self.train_step(self.batches))
            total += loss
            self.state.batch.assign(step + 1)
            iteration = int(self.optimizer.iterations.numpy())
            if self.log and progress:
                self.log.step_loss(iteration, loss)
                progress.step(step + 1, loss)
            if iteration % self.config.backup_every == 0:
                self.clock()
                self.state.save()
        return total / max(1, self.plan.steps - first)

    def validate(self) -> Scores:
        """Held-out scores; the averaged weights stay in the model when they score better."""
        scores = Scores(window_loss(self.eval_step, self.eval_batches, self.plan.eval_steps))
        if not self.optimizer.use_ema:
            return scores
        raw = [v.numpy() for v in self.model.trainable_variables]
        self.optimizer.finalize_variable_values(self.model.trainable_variables)
        scores.val_loss_ema = window_loss(self.eval_step, self.eval_batches, self.plan.eval_steps)
        if scores.val_loss_ema < scores.val_loss:
            scores.raw = raw
        else:
            self._assign(raw)
        return scores

    def _assign(self, values: list[np.ndarray]) -> None:
        for variable, value in zip(self.model.trainable_variables, values, strict=True):
            variable.assign(value)

    def end_epoch(self, epoch: int, scores: Scores, logs: dict[str, Any]) -> None:
        """Counters, best.keras and the history row, the checkpoint, then a sample."""
        state = self.state
        improved = scores.best < float(state.best.numpy())
        state.best.assign(min(scores.best, float(state.best.numpy())))
        state.wait.assign(0 if improved else int(state.wait.numpy()) + 1)
        state.epoch.assign(epoch + 1)
        state.batch.assign(0)
        self.clock()
        if self.log:
            self.log.epoch_end(self.model, epoch, logs, improved)  # best.keras: the better weights
        if scores.raw is not None:  # training goes on from the raw weights
            self._assign(scores.raw)
        state.save()  # after the history row: a resume drops rows the checkpoint lacks
        if self.log:
            self.log.sample(self.model, epoch)
