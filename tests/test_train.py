"""Training CLI on tiny corpora: the loss falls, the artifact is complete, kill -9 resumes, bad input is named."""

from __future__ import annotations

import csv
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model.artifact import load_artifact
from tests.conftest import ROOT
from training.train import main as train_main

TINY = ["--units", "24", "--embedding-dim", "8", "--seq-len", "24", "--batch-size", "8", "--backup-every", "5"]


def make_corpus(path: Path, words: int = 3000, seed: int = 0) -> Path:
    rng = random.Random(seed)
    vocab = ["to", "be", "or", "not", "that", "is", "the", "question", "Привет", "🎭"]
    path.write_text(" ".join(rng.choice(vocab) for _ in range(words)) + "\n", "utf-8")
    return path


def cli_args(corpus: Path, tmp_path: Path, epochs: int, extra: list[str] | None = None) -> list[str]:
    """The training command line for a tiny model writing under tmp_path."""
    out, work = str(tmp_path / "m"), str(tmp_path / "w")
    return ["--corpus", str(corpus), "--out", out, "--work-dir", work, "--epochs", str(epochs), *(extra or []), *TINY]


def history(work: Path) -> list[dict[str, str]]:
    with open(work / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_loss_falls_and_a_complete_model_directory_is_written(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "c.txt")
    rc = train_main(cli_args(corpus, tmp_path, epochs=3, extra=["--lr", "1e-2"]))
    assert rc == 0
    losses = [float(r["loss"]) for r in history(tmp_path / "w")]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.3
    art = load_artifact(tmp_path / "m")
    card = art.card
    assert card["held_out_loss_nats"] < 2.5  # far below uniform: ln(vocab) ≈ 3.3
    assert abs(card["held_out_bits_per_char"] - card["held_out_loss_nats"] / 0.6931) < 0.01
    assert card["corpus"]["sha256"] and card["corpus"]["chars"] == len(corpus.read_text("utf-8"))
    assert card["hyperparameters"]["units"] == 24 and card["epochs_run"] == 3
    assert card["params"] == art.model.count_params() and card["vocab_size"] == len(art.vocab)
    assert {"tensorflow", "keras"} <= set(card["versions"]) and card["train_seconds"] > 0
    assert "🎭" in art.vocab and "Привет" in art.vocab.decode(art.vocab.encode("Привет"))
    # training.evaluate, run on its own, reproduces the card's figure.
    out = subprocess.run(
        [sys.executable, "-m", "training.evaluate", "--model", str(tmp_path / "m"), "--corpus", str(corpus)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    loss = float(re.search(r"held-out loss:\s+([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    assert loss == pytest.approx(card["held_out_loss_nats"], abs=1e-3)


def run_cli(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "training.train", *args],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest.mark.slow
def test_kill_9_mid_epoch_then_the_same_command_resumes(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "c.txt", words=12000)
    args = cli_args(corpus, tmp_path, epochs=4)
    first = run_cli(args)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:  # wait until epoch 1 is logged...
        if (tmp_path / "w" / "history.csv").exists() and len(history(tmp_path / "w")) >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # ...and epoch 2 is under way with a mid-epoch backup
    assert first.poll() is None, "training ended before it could be interrupted"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    done_before = len(history(tmp_path / "w"))
    assert 1 <= done_before < 4 and not (tmp_path / "m").exists()

    second = run_cli(args)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out
    epochs = [int(m) for m in re.findall(r"^Epoch (\d+)/4", out, re.M)]
    assert epochs[0] == done_before + 1, out  # resumed where it was, not from scratch
    assert len(history(tmp_path / "w")) == 4
    assert load_artifact(tmp_path / "m").card["epochs_run"] == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "corpus not found"),
        (b"", "corpus is empty"),
        (b"ab" + b"\xc3\x28" + b"rest", r"not valid UTF-8 \(bad byte at offset 2\)"),
        (b"short text", r"corpus has 10 chars, fewer than one training window \(26\)"),
    ],
)
def test_bad_corpus_gets_a_clear_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    rc = train_main(["--corpus", str(path), "--out", str(tmp_path / "m"), "--work-dir", str(tmp_path / "w"), *TINY])
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(rf"^error: .*corpus\.txt: {message}", err), err
    assert not (tmp_path / "m").exists()


def test_bad_flags_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        train_main(["--corpus", "x", "--out", str(tmp_path / "m"), "--dropout", "1.5"])
    assert exc.value.code == 2 and "--dropout" in capsys.readouterr().err
