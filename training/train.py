"""Train a char-LSTM on any UTF-8 text file (or directory of them) and write a model directory.

    python -m training.train --corpus ../shared/data/tinyshakespeare.txt \
        --out model/pretrained/shakespeare --epochs 20

Run the same command again after an interruption (even kill -9) and it resumes from the last
backup in the work dir (default `checkpoints/<out name>`).  The result is `--out`:
`model.keras` (inference only), `vocab.json`, and `card.json` with the held-out loss measured
by training/evaluate.py (state carried over the last 10% of the corpus).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train", description="Train a char-LSTM language model.")
    p.add_argument("--corpus", type=Path, required=True, help="UTF-8 text file, or a directory of them")
    p.add_argument("--out", type=Path, required=True, help="model directory to write (replaced atomically)")
    p.add_argument("--work-dir", type=Path, help="backups, best checkpoint, logs (default: checkpoints/<out name>)")
    p.add_argument("--name", help="model name shown by the server (default: the out directory's name)")
    p.add_argument("--layers", type=int, default=2, help="stacked LSTM layers")
    p.add_argument("--units", type=int, default=512, help="units per LSTM layer")
    p.add_argument("--embedding-dim", type=int, default=64, help="char embedding size")
    p.add_argument("--dropout", type=float, default=0.25, help="dropout between layers")
    p.add_argument("--seq-len", type=int, default=128, help="chars per training window")
    p.add_argument("--batch-size", type=int, default=64, help="windows per batch")
    p.add_argument("--epochs", type=int, default=20, help="maximum epochs")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate (peak)")
    p.add_argument("--decay", choices=["cosine", "none"], default="cosine", help="learning-rate schedule")
    p.add_argument("--clipnorm", type=float, default=5.0, help="gradient clipping by global norm")
    p.add_argument("--patience", type=int, default=3, help="early stop after this many epochs without improvement")
    p.add_argument("--backup-every", type=int, default=50, help="steps between resume backups")
    p.add_argument("--sample-prompt", default="\n", help="prompt for the sample printed after each epoch")
    p.add_argument("--seed", type=int, default=1, help="seed for weights, shuffling and samples")
    p.add_argument("--max-steps", type=int, default=0, help="stop each epoch after this many steps (0: all; for tests)")
    args = p.parse_args(argv)
    for name in ("layers", "units", "embedding_dim", "seq_len", "batch_size", "epochs", "backup_every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be ≥ 1")
    if not 0 <= args.dropout < 1:
        p.error("--dropout must be in [0, 1)")
    if not args.lr > 0:
        p.error("--lr must be > 0")
    return args


def best_val_loss(history: Path) -> float | None:
    """The best val_loss logged by earlier (interrupted) runs, so a resume keeps the true best."""
    if not history.exists():
        return None
    with open(history, newline="") as fh:
        values = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss")]
    return min(values) if values else None


def epochs_logged(history: Path) -> int:
    """Epochs completed over all runs (interrupted ones included), from the CSV log."""
    if not history.exists():
        return 0
    with open(history, newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def hardware() -> dict[str, Any]:
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "platform": platform.platform(),
    }


def versions() -> dict[str, str]:
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = args.work_dir or Path("checkpoints") / args.out.name
    from training.corpus import CorpusError, read_corpus

    try:
        corpus = read_corpus(args.corpus, work_dir, min_chars=args.seq_len + 2)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from training.fit import fit_model

    model, info = fit_model(args, corpus, work_dir)

    from model.artifact import save_artifact
    from model.cell import LSTMStack
    from training.evaluate import held_out_loss

    loss = held_out_loss(LSTMStack.from_keras(model), corpus.held_out_ids)
    card = {
        "name": args.name or args.out.name,
        "corpus": {
            "name": corpus.name,
            "sha256": corpus.sha256,
            "bytes": corpus.num_bytes,
            "chars": corpus.num_chars,
            "held_out_chars": len(corpus.held_out_ids),
        },
        "hyperparameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in {"corpus", "out", "work_dir", "name"}
        },
        **info,
        "held_out_loss_nats": round(loss, 4),
        "held_out_bits_per_char": round(loss / math.log(2), 4),
        "vocab_size": len(corpus.vocab),
        "params": int(model.count_params()),
        "hardware": hardware(),
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    save_artifact(args.out, model, corpus.vocab, card)
    print(f"held-out loss {loss:.4f} nats/char ({loss / math.log(2):.4f} bits/char); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
