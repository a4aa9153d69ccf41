"""The training run itself: build, compile and fit the model with Keras callbacks.

Called by training/train.py; kept apart so the CLI reads as argument handling and reporting.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import keras

from model.network import NetworkConfig, build_model
from training.callbacks import ElapsedCallback, make_callbacks
from training.corpus import Corpus
from training.dataset import eval_dataset, num_windows, window_dataset


def fit_model(args: argparse.Namespace, corpus: Corpus, work_dir: Path) -> tuple[keras.Model, dict[str, Any]]:
    """Train (resuming from `work_dir` if a backup is there); return the best model and run facts."""
    from training.train import best_val_loss, epochs_logged

    keras.utils.set_random_seed(args.seed)
    config = NetworkConfig(len(corpus.vocab), args.embedding_dim, args.units, args.layers, args.dropout)
    model = build_model(config)
    train_ds = window_dataset(corpus.train_ids, args.seq_len, args.batch_size, args.seed)
    val_ds = eval_dataset(corpus.held_out_ids, min(args.seq_len, len(corpus.held_out_ids) - 1), args.batch_size)
    steps = num_windows(len(corpus.train_ids), args.seq_len) // args.batch_size
    if args.max_steps:
        steps = min(steps, args.max_steps)
    lr: Any = args.lr
    if args.decay == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(args.lr, decay_steps=steps * args.epochs, alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(lr, clipnorm=args.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    callbacks = make_callbacks(work_dir, corpus.vocab, args.sample_prompt, args.patience, args.backup_every)
    previous_best = best_val_loss(work_dir / "history.csv")
    if previous_best is not None:
        for cb in callbacks:
            if isinstance(cb, keras.callbacks.ModelCheckpoint):
                cb.best = previous_best
    elapsed = ElapsedCallback(work_dir / "elapsed.txt")
    history = model.fit(
        train_ds.repeat() if args.max_steps else train_ds,
        validation_data=val_ds,
        epochs=args.epochs,
        steps_per_epoch=steps,
        callbacks=[*callbacks, elapsed],
        verbose=2,
    )
    best = work_dir / "best.keras"
    if best.exists():
        model.load_weights(best)
    losses = history.history.get("val_loss", [])
    return model, {
        "config": config.to_dict(),
        "epochs_run": epochs_logged(work_dir / "history.csv"),
        "val_loss_windows": round(min(losses), 4) if losses else previous_best,
        "train_seconds": round(elapsed.total, 1),
        "steps_per_epoch": steps,
    }
