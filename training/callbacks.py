"""What the training loop (training/fit.py) keeps between runs and reports after each epoch.

`RunState` is the resumable part: the model, the optimizer and the counters (epochs done,
steps done in the current one, best held-out loss, epochs without improvement, seconds
trained), saved by `tf.train.CheckpointManager` every --backup-every steps and after every
epoch.  Every worker saves (TF requires it), but only the chief's directory is kept: other
workers write to a private temporary directory that is removed when they finish.

`EpochLog` is the chief's output: the training loss of every step in TensorBoard, and after
each epoch a row in history.csv, TensorBoard scalars, best.keras when the held-out loss
improves (written atomically), and a short sample through model/sampling/generate.py, the same loop
the server and the CLI use.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from model.cells import LSTMStack
from model.sampling import GenerationRequest, SamplingParams, generate
from model.vocab import Vocab

HISTORY_FIELDS = ["epoch", "loss", "val_loss", "val_loss_ema", "weights", "seconds", "chars_per_s"]


class RunState:
    """Model + optimizer + counters in one checkpoint, created under the strategy's scope."""

    def __init__(self, model: keras.Model, optimizer: keras.Optimizer, directory: Path):
        self.model, self.optimizer = model, optimizer
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # epochs completed
        # steps done in the current epoch
        self.batch = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.best = tf.Variable(math.inf, dtype=tf.float64, trainable=False)  # best held-out loss
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False)  # epochs since it improved
        # training time, all runs
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        counters = {"epoch": self.epoch, "batch": self.batch, "best": self.best, "wait": self.wait}
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, seconds=self.seconds, **counters
        )
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(directory), max_to_keep=2)

    @property
    def counters(self) -> list[tf.Variable]:
        return [self.epoch, self.batch, self.best, self.wait, self.seconds]

    def restore(self) -> bool:
        """Load the latest checkpoint, if any; True when there was one."""
        path = self.manager.latest_checkpoint
        if path:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (ValueError, AssertionError, tf.errors.OpError) as exc:
                raise ValueError(
                    f"{path}: a checkpoint of another model or corpus ({type(exc).__name__}); "
                    "use another --work-dir, or delete this one to start over"
                ) from None
        return bool(path)

    def save(self) -> None:
        self.manager.save()


class EpochLog:
    """The chief's per-epoch outputs in `work_dir`."""

    def __init__(self, work_dir: Path, vocab: Vocab, sample_prompt: str):
        self.history = work_dir / "history.csv"
        self.best_path = work_dir / "best.keras"
        self.writers = {
            name: tf.summary.create_file_writer(str(work_dir / "tensorboard" / name))
            for name in ("train", "validation")
        }
        # A corpus may lack the default prompt's chars (say, no newline): keep the known ones.
        self.prompt = "".join(ch for ch in sample_prompt if ch in vocab)
        self.vocab = vocab

    def keep_epochs(self, done: int) -> None:
        """Drop history rows of epochs the checkpoint does not have (a kill between the two
        writes)."""
        if done == 0:  # a fresh start: a best.keras left here belongs to another run
            self.best_path.unlink(missing_ok=True)
        if not self.history.exists():
            return
        with open(self.history, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if int(r["epoch"]) < done]
        self._write_rows(rows, "w")

    def _write_rows(self, rows: list[dict[str, Any]], mode: str) -> None:
        header = mode == "w" or not self.history.exists()
        with open(self.history, mode, newline="") as fh:
            writer = csv.DictWriter(fh, HISTORY_FIELDS, extrasaction="ignore")
            if header:
                writer.writeheader()
            writer.writerows(rows)

    def step_loss(self, iteration: int, loss: float) -> None:
        """The training loss of one optimizer step (TensorBoard's `step_loss`, by global step)."""
        with self.writers["train"].as_default():
            tf.summary.scalar("step_loss", loss, step=iteration)

    def kept_weights(self) -> str | None:
        """Which weights best.keras holds, "ema" or "raw": those of the best epoch in
        history.csv."""
        if not self.history.exists():
            return None
        with open(self.history, newline="") as fh:
            rows = list(csv.DictReader(fh))
        if not rows:
            return None
        scores = [min(float(r["val_loss"]), float(r.get("val_loss_ema") or math.inf)) for r in rows]
        best = rows[
            scores.index(min(scores))
        ]  # the first best: best.keras is replaced only on improvement
        return best.get("weights") or "raw"

    def epoch_end(
        self, model: keras.Model, epoch: int, logs: dict[str, Any], improved: bool
    ) -> None:
        if improved:
            tmp = self.best_path.with_name(f".{self.best_path.name}.partial.keras")
            model.save(tmp)
            os.replace(tmp, self.best_path)
        self._write_rows([{"epoch": epoch, **logs}], "a")
        for name, key in (("train", "loss"), ("validation", "val_loss")):
            with self.writers[name].as_default():
                tf.summary.scalar("epoch_loss", logs[key], step=epoch)
            if name == "validation" and "val_loss_ema" in logs:
                tf.summary.scalar("epoch_loss_ema", logs["val_loss_ema"], step=epoch)
            self.writers[name].flush()

    def sample(self, model: keras.Model, epoch: int, chars: int = 200, seed: int = 0) -> None:
        """Print a short sample, so progress can be read, not just plotted."""
        stack = LSTMStack.from_keras(model)
        request = GenerationRequest(self.prompt, chars, SamplingParams(0.8), seed=seed)
        text = "".join(chunk.text for chunk in generate(stack, self.vocab, request))
        print(f"\n--- sample after epoch {epoch + 1} ---\n{self.prompt}{text}\n---", flush=True)
