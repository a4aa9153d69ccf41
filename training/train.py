"""Train a char-LSTM on any UTF-8 text file (or directory of them) and write a model directory.

    python -m training.train --corpus ../shared/data/tinyshakespeare.txt \
        --out model/pretrained/shakespeare --epochs 20

Run the same command again after an interruption (even kill -9) and it resumes from the last
checkpoint in the work dir (default `checkpoints/<out name>`).  The result is `--out`:
`model.keras` (inference only), `vocab.json`, and `card.json` with the held-out loss measured
by training/evaluate.py (state carried over the last 10% of the corpus, at most its first 256K chars).

`--strategy auto` trains on every local GPU (tf.distribute.MirroredStrategy) or on the CPU;
`--strategy multi-worker` trains on the cluster described by TF_CONFIG, one process per
machine, all started with the same command (see docs/scaling.md).  Only the chief (worker 0)
writes the model directory.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from model.native_log import import_tensorflow
from training.corpus import Corpus, CorpusError, read_corpus

EVAL_CHARS = 1 << 18  # held-out chars scored for the card (±0.003 nats)
STRATEGIES = ("auto", "mirrored", "multi-worker")  # training/distribute.py makes them


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
    p.add_argument("--warmup-steps", type=int, default=50, help="steps of linear learning-rate warm-up (0: none)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW decoupled weight decay (0: plain Adam)")
    p.add_argument(
        "--ema",
        type=float,
        default=0.998,
        help="momentum of an exponential moving average of the weights, kept when it scores better (0: off)",
    )
    p.add_argument("--clipnorm", type=float, default=5.0, help="gradient clipping by global norm")
    p.add_argument("--patience", type=int, default=3, help="early stop after this many epochs without improvement")
    p.add_argument("--backup-every", type=int, default=50, help="steps between resume backups")
    p.add_argument("--sample-prompt", default="\n", help="prompt for the sample printed after each epoch")
    p.add_argument("--seed", type=int, default=1, help="seed for weights, shuffling and samples")
    p.add_argument("--max-steps", type=int, default=0, help="cap on steps per epoch and per held-out pass (0: all)")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto", help="auto: every local GPU, else the CPU")
    p.add_argument(
        "--worker-timeout", type=float, default=300.0, help="seconds a worker waits for a silent peer (multi-worker)"
    )
    args = p.parse_args(argv)
    for name in ("layers", "units", "embedding_dim", "seq_len", "batch_size", "epochs", "backup_every", "patience"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be ≥ 1")
    if not 0 <= args.dropout < 1:
        p.error("--dropout must be in [0, 1)")
    if not args.lr > 0:
        p.error("--lr must be > 0")
    if args.warmup_steps < 0:
        p.error("--warmup-steps must be ≥ 0")
    if args.weight_decay < 0:
        p.error("--weight-decay must be ≥ 0")
    if not 0 <= args.ema < 1:
        p.error("--ema must be in [0, 1)")
    if args.max_steps < 0:
        p.error("--max-steps must be ≥ 0")
    if not args.worker_timeout > 0:
        p.error("--worker-timeout must be > 0")
    return args


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


def fingerprint(args: argparse.Namespace, corpus: Corpus) -> str:
    """What every worker of one run must agree on: the corpus and the flags that shape training."""
    local = {"corpus", "out", "work_dir", "name", "strategy", "worker_timeout", "sample_prompt"}
    flags = {k: str(v) for k, v in sorted(vars(args).items()) if k not in local}
    return f"{corpus.sha256} {flags}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work_dir = args.work_dir or Path("checkpoints") / args.out.name
    try:
        # Before TensorFlow starts: MultiWorkerMirroredStrategy must be created first.
        corpus = read_corpus(args.corpus, work_dir, min_chars=args.seq_len + 2)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("TF_CONFIG") and args.strategy != "multi-worker":
        print("note: TF_CONFIG is set but ignored; pass --strategy multi-worker to train on the cluster", flush=True)
    import_tensorflow()  # its load-time log lines stay off stderr (model/native_log.py)
    import tensorflow as tf

    from training.distribute import StrategyError, check_same_run, make_strategy, role_of
    from training.fit import TrainingError, fit_model

    try:
        strategy = make_strategy(args.strategy, args.worker_timeout)
        role = role_of(strategy)
        print(f"{role.name}: {type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s)", flush=True)
        if role.num_workers > 1:
            check_same_run(strategy, fingerprint(args, corpus))
        model, info = fit_model(args, corpus, work_dir, strategy, role)
    except (StrategyError, TrainingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError) as exc:
        found = re.search(r"aborted by: (.+?)(?:\n\n|\[\[|$)", str(exc), re.S)
        cause = " ".join(found.group(1).split())[:300] if found else type(exc).__name__
        print(
            f"error: lost contact with another worker ({cause}); "
            "start every worker again with the same command to resume from the last checkpoint",
            file=sys.stderr,
        )
        return 3
    if not role.is_chief:
        print(f"{role.name}: done; the chief writes {args.out}", flush=True)
        return 0
    write_model(args, corpus, model, info)
    return 0


def write_model(args: argparse.Namespace, corpus: Corpus, model: Any, info: dict[str, Any]) -> None:
    from model.artifact import save_artifact
    from model.cell import LSTMStack
    from training.evaluate import held_out_loss

    # A bounded sample of the held-out text: 256K chars pin the loss to ~0.003 nats, and a
    # 1 GB corpus's 100M held-out chars would take hours through the NumPy step.
    scored = corpus.held_out_ids[:EVAL_CHARS]
    loss = held_out_loss(LSTMStack.from_keras(model), scored)
    card = {
        "name": args.name or args.out.name,
        "corpus": {
            "name": corpus.name,
            "sha256": corpus.sha256,
            "bytes": corpus.num_bytes,
            "chars": corpus.num_chars,
            "held_out_chars": len(corpus.held_out_ids),
            "held_out_chars_scored": len(scored),
        },
        "hyperparameters": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in {"corpus", "out", "work_dir", "name", "worker_timeout"}
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


if __name__ == "__main__":
    raise SystemExit(main())
