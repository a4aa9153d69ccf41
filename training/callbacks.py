"""Keras callbacks for training: checkpoints, resume, early stop, logs and an epoch-end sample.

The sample goes through model/generate.py, the same loop the server and the CLI use.
"""

from __future__ import annotations

from pathlib import Path

import keras

from model.cell import LSTMStack
from model.generate import GenerationRequest, generate
from model.sampling import SamplingParams
from model.vocab import Vocab


class SampleCallback(keras.callbacks.Callback):
    """Print a short sample at the end of each epoch, so progress can be read, not just plotted."""

    def __init__(self, vocab: Vocab, prompt: str, chars: int = 200, seed: int = 0):
        super().__init__()
        # A corpus may lack the default prompt's chars (say, no newline): keep the known ones.
        self.prompt = "".join(ch for ch in prompt if ch in vocab)
        self.vocab, self.chars, self.seed = vocab, chars, seed

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        stack = LSTMStack.from_keras(self.model)
        request = GenerationRequest(self.prompt, self.chars, SamplingParams(0.8), seed=self.seed)
        text = "".join(chunk.text for chunk in generate(stack, self.vocab, request))
        print(f"\n--- sample after epoch {epoch + 1} ---\n{self.prompt}{text}\n---", flush=True)


def make_callbacks(work_dir: Path, vocab: Vocab, sample_prompt: str, patience: int, backup_every: int) -> list:
    """The training callbacks, writing everything under `work_dir`."""
    return [
        # Mid-epoch backups: a kill -9 loses at most `backup_every` steps, not the epoch.
        keras.callbacks.BackupAndRestore(str(work_dir / "backup"), save_freq=backup_every, delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(work_dir / "best.keras"), monitor="val_loss", save_best_only=True),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True),
        keras.callbacks.CSVLogger(str(work_dir / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(work_dir / "tensorboard"), update_freq="epoch"),
        SampleCallback(vocab, sample_prompt),
    ]


class ElapsedCallback(keras.callbacks.Callback):
    """Keep the total training wall time across resumed runs in `work_dir/elapsed.txt`."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.before = float(path.read_text()) if path.exists() else 0.0
        self.start = 0.0

    @property
    def total(self) -> float:
        import time

        return self.before + (time.monotonic() - self.start if self.start else 0.0)

    def on_train_begin(self, logs: dict | None = None) -> None:
        import time

        self.start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.path.write_text(f"{self.total:.1f}")
