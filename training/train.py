"""Train a char-LSTM on any UTF-8 text file (or directory of them) and write a model directory.

    python -m training.train --corpus ../shared/data/tinyshakespeare.txt \\
        --out model/pretrained/shakespeare --epochs 20
    python -m training.train --corpus mine.txt --out models/mine --init-from
    model/pretrained/shakespeare

Run the same command again after an interruption (even kill -9) and it resumes from the last
checkpoint in the work dir (default `checkpoints/<out name>`).  The result is `--out`:
`model.keras` (inference only), `vocab.json`, and `card.json` with the held-out loss measured
by training/evaluate.py (state carried over the last 10% of the corpus, at most its first 256K
chars) and the whole training config.  `--init-from DIR` fine-tunes a trained model (its vocab
and layer sizes; `--extend-vocab` adds the corpus's new chars: training/finetune.py).

`--strategy auto` trains on every local GPU (tf.distribute.MirroredStrategy) or on the CPU;
`--strategy multi-worker` trains on the cluster described by TF_CONFIG, one process per
machine, all started with the same command (see docs/scaling.md).  Only the chief (worker 0)
writes the model directory.  Flags and defaults: `--help`, or docs/training.md.
"""

from __future__ import annotations

import math
import os
import platform
import re
import sys
from datetime import UTC, datetime
from typing import Any

from model.artifact import ArtifactError
from model.runtime import configure, cpu_name, import_tensorflow
from model.vocab import Vocab
from training.config import TrainConfig, parse_args
from training.corpus import Corpus, CorpusError, UnknownCharsError, read_corpus
from training.finetune import Parent, parent_vocab

MIN_FIGURES_CHARS = 10_000  # figures.json below this would describe noise
EVAL_CHARS = 1 << 18  # held-out chars scored for the card (±0.003 nats)
LOCAL_FLAGS = {
    "corpus",
    "out",
    "work_dir",
    "name",
    "strategy",
    "worker_timeout",
    "sample_prompt",
    "init_from",
}


def hardware() -> dict[str, Any]:
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "cpu": cpu_name(),  # the model name: a card's training speed is read against it
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


def fingerprint(config: TrainConfig, corpus: Corpus) -> str:
    """What every worker of one run must agree on: the corpus and the flags that shape training."""
    flags = {k: str(v) for k, v in sorted(config.to_dict().items()) if k not in LOCAL_FLAGS}
    return f"{corpus.sha256} {flags}"


def read_training_corpus(config: TrainConfig) -> Corpus:
    """The corpus, encoded with the parent's vocab when fine-tuning; CorpusError/ArtifactError if
    unusable."""
    vocab: Vocab | None = parent_vocab(config.init_from) if config.init_from else None
    try:
        return read_corpus(
            config.corpus, config.work_dir, config.seq_len + 2, vocab, config.extend_vocab
        )
    except UnknownCharsError as exc:
        raise CorpusError(f"{exc} (pass --extend-vocab to add them)") from None


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        # Before TensorFlow starts: MultiWorkerMirroredStrategy must be created first.
        corpus = read_training_corpus(config)
    except (CorpusError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("TF_CONFIG") and config.strategy != "multi-worker":
        print(
            "note: TF_CONFIG is set but ignored; "
            "pass --strategy multi-worker to train on the cluster",
            flush=True,
        )
    configure()  # numba: kernel cache, threading layer (model/runtime)
    import_tensorflow()  # its load-time log lines stay off stderr (model/runtime/native_log.py)
    import tensorflow as tf

    from training.distribute import StrategyError, check_same_run, make_strategy, role_of
    from training.finetune import load_parent, with_parent_architecture
    from training.fit import TrainingError, fit_model

    try:
        strategy = make_strategy(config.strategy, config.worker_timeout)
        role = role_of(strategy)
        print(
            f"{role.name}: {type(strategy).__name__}, {strategy.num_replicas_in_sync} replica(s)",
            flush=True,
        )
        parent = load_parent(config.init_from) if config.init_from else None
        if parent:
            config = with_parent_architecture(config, parent)
            print(
                f"fine-tuning {parent.path}: {config.layers}×{config.units} {config.cell.upper()}, "
                f"embedding {config.embedding_dim}"
            )
        if role.num_workers > 1:
            check_same_run(strategy, fingerprint(config, corpus))
        model, info = fit_model(config, corpus, strategy, role, parent)
    except (StrategyError, TrainingError, ArtifactError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (
        tf.errors.UnavailableError,
        tf.errors.DeadlineExceededError,
        tf.errors.CancelledError,
    ) as exc:
        found = re.search(r"aborted by: (.+?)(?:\n\n|\[\[|$)", str(exc), re.S)
        cause = " ".join(found.group(1).split())[:300] if found else type(exc).__name__
        print(
            f"error: lost contact with another worker ({cause}); "
            "start every worker again with the same command to resume from the last checkpoint",
            file=sys.stderr,
        )
        return 3
    if not role.is_chief:
        print(f"{role.name}: done; the chief writes {config.out}", flush=True)
        return 0
    write_model(config, corpus, model, info, parent)
    return 0


def write_model(
    config: TrainConfig, corpus: Corpus, model: Any, info: dict[str, Any], parent: Parent | None
) -> None:
    from model.artifact import save_artifact
    from model.cells import Stack
    from training.evaluate import held_out_loss
    from training.finetune import parent_card

    # A bounded sample of the held-out text: 256K chars pin the loss to ~0.003 nats, and a
    # 1 GB corpus's 100M held-out chars would take hours through the NumPy step.
    scored = corpus.held_out_ids[:EVAL_CHARS]
    stack = Stack.from_keras(model)
    loss = held_out_loss(stack, scored)
    card = {
        "name": config.name,
        "corpus": {
            "name": corpus.name,
            "sha256": corpus.sha256,
            "bytes": corpus.num_bytes,
            "chars": corpus.num_chars,
            "held_out_chars": len(corpus.held_out_ids),
            "held_out_chars_scored": len(scored),
        },
        "hyperparameters": config.to_dict(),  # the whole TrainConfig
        "parent": parent_card(parent, corpus.vocab) if parent else None,
        **info,
        "held_out_loss_nats": round(loss, 4),
        "held_out_bits_per_char": round(loss / math.log(2), 4),
        "vocab_size": len(corpus.vocab),
        "params": int(model.count_params()),
        "hardware": hardware(),
        "versions": versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    save_artifact(config.out, model, corpus.vocab, card)
    from model.reading import index_after_training  # what the highlighter of copied text looks up

    print(index_after_training(config.out, corpus.vocab, corpus.train_ids, config.memory_index))
    if config.figures and len(corpus.held_out_ids) < MIN_FIGURES_CHARS:
        print(f"no figures.json: the held-out text has fewer than {MIN_FIGURES_CHARS:,} chars")
    elif config.figures:
        from model.reading import figures  # gate saturation, memory span, loss by position, speed

        held_out = corpus.vocab.decode(corpus.held_out_ids[: figures.DEFAULT_CHARS])
        path = figures.write(config.out, figures.compute(model, stack, corpus.vocab, held_out))
        print(f"wrote {path}")
    print(
        f"held-out loss {loss:.4f} nats/char ({loss / math.log(2):.4f} bits/char); "
        f"wrote {config.out}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
