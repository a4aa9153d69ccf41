"""Training-recipe ablation: short runs of `training.train` that differ by one ingredient each.

    python -m bench.ablation --corpus ../shared/data/tinyshakespeare.txt [--units 256] [--epochs 4]
        [--max-chars N] [--extra "--batch-size 16 --seq-len 64"] [--only plain,adamw,...] [--work
        DIR]

Each variant trains the same small proxy network (2 layers of --units, same corpus, seed and
schedule length) with the product's own CLI, then its held-out loss is measured the way the card
measures it (state carried over the last 10%, training/evaluate.py).  Prints one markdown table:
variant, flags, held-out nats/char after N epochs, the best per-window validation loss, training
chars/s, and the CPU model.  A variant whose model directory already exists is read, not retrained,
so an interrupted sweep resumes (delete --work to start over).

The proxy is smaller than the bundled 2×512 model so that a whole sweep fits in an hour on two
cores; regularisers that pay off only over long runs (dropout, averaging) look weaker here than they
are on the full run, which docs/training.md says next to the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from bench.machine import heading

# Each variant adds one ingredient to the one before it; "plain" is the first wave's recipe.
RECIPE = ["--weight-decay", "0.01", "--warmup-steps", "50", "--ema", "0.998"]
VARIANTS: dict[str, list[str]] = {
    "plain": ["--weight-decay", "0", "--warmup-steps", "0", "--ema", "0"],
    "adamw": ["--weight-decay", "0.01", "--warmup-steps", "0", "--ema", "0"],
    "warmup": ["--weight-decay", "0.01", "--warmup-steps", "50", "--ema", "0"],
    "ema": RECIPE,
    "dropout-0.3": [*RECIPE, "--dropout", "0.3"],
    "locked": [*RECIPE, "--locked-dropout"],
    "emb-dropout": [*RECIPE, "--locked-dropout", "--embedding-dropout", "0.1"],
    "seq-256": [*RECIPE, "--seq-len", "256"],
    # the bundled model's fine-tuning recipe (docs/training.md): heavier locked dropout and weight
    # decay
    "bundled": [
        *RECIPE,
        "--dropout",
        "0.35",
        "--locked-dropout",
        "--embedding-dropout",
        "0.1",
        "--weight-decay",
        "0.05",
    ],
}


def run_variant(name: str, args: argparse.Namespace) -> dict[str, object]:
    out = args.work / name / "model"
    if not (out / "card.json").exists():
        command = [
            sys.executable,
            "-m",
            "training.train",
            "--corpus",
            str(args.corpus),
            "--out",
            str(out),
            "--work-dir",
            str(args.work / name / "work"),
            "--units",
            str(args.units),
            "--epochs",
            str(args.epochs),
            "--patience",
            str(args.epochs),
            "--max-chars",
            str(args.max_chars),
            *args.extra.split(),
            *VARIANTS[name],
        ]
        print(f"training {name}: {' '.join(command[3:])}", file=sys.stderr, flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    card = json.loads((out / "card.json").read_text())
    with open(args.work / name / "work" / "history.csv", newline="") as fh:
        history = list(csv.DictReader(fh))
    windows = min(min(float(r["val_loss"]), float(r.get("val_loss_ema") or "inf")) for r in history)
    trained = card["steps_per_epoch"] * card["epochs_run"] * card["hyperparameters"]["batch_size"]
    trained *= card["hyperparameters"]["seq_len"]
    return {
        "variant": name,
        "flags": " ".join(VARIANTS[name]),
        "held_out": card["held_out_loss_nats"],
        "windows": windows,
        "chars_per_s": trained / card["train_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument(
        "--max-chars",
        type=int,
        default=0,
        help="train on this prefix of the training split (0: all)",
    )
    p.add_argument(
        "--extra", default="", help="flags for every variant, e.g. '--batch-size 16 --seq-len 64'"
    )
    p.add_argument("--only", default=",".join(VARIANTS), help="comma-separated variants")
    p.add_argument("--work", type=Path, default=Path("checkpoints/ablation"))
    args = p.parse_args(argv)
    rows = [run_variant(name, args) for name in args.only.split(",")]
    base = float(rows[0]["held_out"])  # type: ignore[arg-type]
    chars = (
        f"the first {args.max_chars:,} training chars"
        if args.max_chars
        else "the whole training split"
    )
    extra = f", flags for all: `{args.extra}`" if args.extra else ""
    print(
        f"\n{heading('bench.ablation')}\n"
        f"Proxy: 2×{args.units} LSTM, {args.epochs} epochs on {chars}{extra} (TensorFlow)\n"
    )
    print(
        "| variant | flags | held-out nats/char | Δ vs first | best window val | training chars/s |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        delta = float(row["held_out"]) - base  # type: ignore[arg-type]
        print(
            f"| {row['variant']} | `{row['flags']}` | {row['held_out']:.4f} | {delta:+.4f} "
            f"| {row['windows']:.4f} | {row['chars_per_s']:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
