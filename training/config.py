"""The training run's settings: one frozen, typed `TrainConfig`, built from the command line.

    config = parse_args(["--corpus", "data.txt", "--out", "models/x"])
    config.seq_len, config.to_dict()        # the card saves the whole config

Each flag's default is the dataclass field's default, written once; `--help` shows them.
Imports neither TensorFlow nor Keras: training/train.py parses flags and reads the corpus
before TensorFlow starts (MultiWorkerMirroredStrategy must be created first).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

STRATEGIES = ("auto", "mirrored", "multi-worker")  # training/distribute.py makes them
Strategy = Literal["auto", "mirrored", "multi-worker"]
Decay = Literal["cosine", "none"]
Cell = Literal[
    "lstm", "gru", "rnn"
]  # model/cells/network.py's CELLS (this module imports no Keras)
CELLS = ("lstm", "gru", "rnn")


@dataclass(frozen=True)
class TrainConfig:
    corpus: Path
    out: Path
    work_dir: Path  # backups, best checkpoint, logs
    name: str  # the model name the server shows
    init_from: Path | None = None  # a trained model directory to fine-tune
    extend_vocab: bool = False  # with init_from: add the corpus's new chars to the vocab
    cell: Cell = "lstm"
    layers: int = 2
    units: int = 512
    embedding_dim: int = 64
    dropout: float = 0.25
    locked_dropout: bool = False
    embedding_dropout: float = 0.0
    seq_len: int = 128
    batch_size: int = 64
    epochs: int = 20
    lr: float = 2e-3
    decay: Decay = "cosine"
    warmup_steps: int = 50
    weight_decay: float = 0.01
    ema: float = 0.998
    clipnorm: float = 5.0
    patience: int = 3
    backup_every: int = 50
    max_chars: int = 0  # train on this prefix of the training split (0: all of it)
    max_steps: int = 0
    sample_prompt: str = "\n"
    seed: int = 1
    strategy: Strategy = "auto"
    worker_timeout: float = 300.0
    figures: bool = (
        True  # model/reading/figures.py's figures.json at the end (minutes for a large model)
    )
    # model/reading/memory.py's index of the training text: auto (small corpora), yes, no
    memory_index: str = "auto"

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise ValueError(problem)

    def problem(self) -> str | None:
        """What is wrong with these settings (naming the flag), or None."""
        for name in (
            "layers",
            "units",
            "embedding_dim",
            "seq_len",
            "batch_size",
            "epochs",
            "backup_every",
            "patience",
        ):
            if getattr(self, name) < 1:
                return f"--{name.replace('_', '-')} must be ≥ 1"
        checks = [
            ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
            ("embedding-dropout", 0 <= self.embedding_dropout < 1, "in [0, 1)"),
            ("lr", self.lr > 0, "> 0"),
            ("warmup-steps", self.warmup_steps >= 0, "≥ 0"),
            ("weight-decay", self.weight_decay >= 0, "≥ 0"),
            ("ema", 0 <= self.ema < 1, "in [0, 1)"),
            ("clipnorm", self.clipnorm > 0, "> 0"),
            ("max-chars", self.max_chars >= 0, "≥ 0"),
            ("max-steps", self.max_steps >= 0, "≥ 0"),
            ("worker-timeout", self.worker_timeout > 0, "> 0"),
        ]
        for flag, ok, wanted in checks:
            if not ok:
                return f"--{flag} must be {wanted}"
        if self.extend_vocab and self.init_from is None:
            return "--extend-vocab needs --init-from"
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: paths as strings."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default, except where there is none to show (None, a False switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.required:
            return action.help
        # the sample prompt's newline
        if isinstance(action.default, str) and not action.default.isprintable():
            return f"{action.help} (default: {action.default!r})"
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    d = {f.name: f.default for f in fields(TrainConfig)}
    p = argparse.ArgumentParser(
        prog="python -m training.train",
        description="Train a char-LSTM language model.",
        formatter_class=_Formatter,
    )
    add = p.add_argument
    add("--corpus", type=Path, required=True, help="UTF-8 text file, or a directory of them")
    add("--out", type=Path, required=True, help="model directory to write (replaced atomically)")
    add(
        "--work-dir",
        type=Path,
        help="backups, best checkpoint, logs (default: checkpoints/<out name>)",
    )
    add("--name", help="model name shown by the server (default: the out directory's name)")
    add(
        "--init-from",
        type=Path,
        help="fine-tune from this trained model directory (its vocab and architecture)",
    )
    add(
        "--extend-vocab",
        action="store_true",
        help="with --init-from: add the corpus's new chars to the vocab",
    )
    add(
        "--cell",
        choices=CELLS,
        default=d["cell"],
        help="recurrent cell: LSTM, GRU or a plain tanh RNN",
    )
    add("--layers", type=int, default=d["layers"], help="stacked recurrent layers")
    add("--units", type=int, default=d["units"], help="units per recurrent layer")
    add("--embedding-dim", type=int, default=d["embedding_dim"], help="char embedding size")
    add("--dropout", type=float, default=d["dropout"], help="dropout after each LSTM layer")
    add(
        "--locked-dropout",
        action="store_true",
        help="one dropout mask per sequence, shared over time",
    )
    add(
        "--embedding-dropout",
        type=float,
        default=d["embedding_dropout"],
        help="dropout on the embedding output",
    )
    add("--seq-len", type=int, default=d["seq_len"], help="chars per training window")
    add("--batch-size", type=int, default=d["batch_size"], help="windows per batch")
    add("--epochs", type=int, default=d["epochs"], help="maximum epochs")
    add("--lr", type=float, default=d["lr"], help="AdamW learning rate (peak)")
    add("--decay", choices=["cosine", "none"], default=d["decay"], help="learning-rate schedule")
    add(
        "--warmup-steps",
        type=int,
        default=d["warmup_steps"],
        help="steps of linear learning-rate warm-up (0: none)",
    )
    add(
        "--weight-decay",
        type=float,
        default=d["weight_decay"],
        help="AdamW decoupled weight decay (0: plain Adam)",
    )
    add(
        "--ema",
        type=float,
        default=d["ema"],
        help="momentum of a moving average of the weights, kept when better (0: off)",
    )
    add("--clipnorm", type=float, default=d["clipnorm"], help="gradient clipping by global norm")
    add(
        "--patience",
        type=int,
        default=d["patience"],
        help="early stop after this many epochs without improvement",
    )
    add("--backup-every", type=int, default=d["backup_every"], help="steps between resume backups")
    add(
        "--max-chars",
        type=int,
        default=d["max_chars"],
        help="train on this prefix of the training split (0: all)",
    )
    add(
        "--max-steps",
        type=int,
        default=d["max_steps"],
        help="cap on steps per epoch and per held-out pass (0: all)",
    )
    add(
        "--sample-prompt",
        default=d["sample_prompt"],
        help="prompt for the sample printed after each epoch",
    )
    add("--seed", type=int, default=d["seed"], help="seed for weights, shuffling and samples")
    add(
        "--strategy",
        choices=STRATEGIES,
        default=d["strategy"],
        help="auto: every local GPU, else the CPU",
    )
    add(
        "--worker-timeout",
        type=float,
        default=d["worker_timeout"],
        help="seconds a worker waits for a silent peer (multi-worker)",
    )
    add(
        "--no-figures",
        dest="figures",
        action="store_false",
        help="skip figures.json (gate saturation, memory span, loss by position, speed)",
    )
    add(
        "--memory-index",
        choices=["auto", "yes", "no"],
        default=d["memory_index"],
        help="index the training text for the memorisation highlighter (auto: up to 20M chars)",
    )
    return p


def parse_args(argv: list[str] | None) -> TrainConfig:
    """The config for a command line; a bad flag exits 2 with a message naming it."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    args["work_dir"] = args["work_dir"] or Path("checkpoints") / args["out"].name
    args["name"] = args["name"] or args["out"].name
    try:
        return TrainConfig(**args)
    except ValueError as exc:
        parser.error(str(exc))
