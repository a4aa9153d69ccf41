"""Training CLI on tiny corpora: the loss falls, the artifact is complete, kill -9 resumes, bad
input is named,
progress is one line per epoch in logs and a live line on a terminal, --help shows the defaults."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from model.artifact import load_artifact
from tests.conftest import ROOT
from training.config import TrainConfig, parse_args
from training.progress import Progress
from training.train import main as train_main

TINY = [
    "--units",
    "24",
    "--embedding-dim",
    "8",
    "--seq-len",
    "24",
    "--batch-size",
    "8",
    "--backup-every",
    "5",
]


def make_corpus(path: Path, words: int = 3000, seed: int = 0) -> Path:
    rng = random.Random(seed)
    vocab = ["to", "be", "or", "not", "that", "is", "the", "question", "Привет", "🎭"]
    path.write_text(" ".join(rng.choice(vocab) for _ in range(words)) + "\n", "utf-8")
    return path


def cli_args(
    corpus: Path, tmp_path: Path, epochs: int, extra: list[str] | None = None
) -> list[str]:
    """The training command line for a tiny model writing under tmp_path."""
    out, work = str(tmp_path / "m"), str(tmp_path / "w")
    return [
        "--corpus",
        str(corpus),
        "--out",
        out,
        "--work-dir",
        work,
        "--epochs",
        str(epochs),
        *(extra or []),
        *TINY,
    ]


def history(work: Path) -> list[dict[str, str]]:
    with open(work / "history.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
def test_loss_falls_and_a_complete_model_directory_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = make_corpus(tmp_path / "c.txt")
    rc = train_main(cli_args(corpus, tmp_path, epochs=3, extra=["--lr", "1e-2"]))
    assert rc == 0
    rows = history(tmp_path / "w")
    losses = [float(r["loss"]) for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0] - 0.3
    assert all(float(r["chars_per_s"]) > 0 for r in rows)
    # stdout is not a terminal here: one progress line per epoch, with the speed.
    printed = capsys.readouterr().out
    lines = re.findall(
        r"^(\d+)/(\d+) - .* - loss: [\d.]+ - val_loss: [\d.]+.* - [\d,]+ chars/s$", printed, re.M
    )
    assert len(lines) == 3 and all(a == b for a, b in lines), printed
    events = b"".join(p.read_bytes() for p in (tmp_path / "w" / "tensorboard" / "train").iterdir())
    assert b"step_loss" in events  # TensorBoard has the loss of every step too
    art = load_artifact(tmp_path / "m")
    card = art.card
    assert card["held_out_loss_nats"] < 2.5  # far below uniform: ln(vocab) ≈ 3.3
    assert abs(card["held_out_bits_per_char"] - card["held_out_loss_nats"] / 0.6931) < 0.01
    assert card["corpus"]["sha256"] and card["corpus"]["chars"] == len(corpus.read_text("utf-8"))
    assert card["hyperparameters"]["units"] == 24 and card["epochs_run"] == 3
    # saved whole
    assert TrainConfig(**{**card["hyperparameters"], "corpus": corpus, "out": tmp_path / "m"})
    assert card["weights"] in {"ema", "raw"} and card["parent"] is None
    assert card["params"] == art.model.count_params() and card["vocab_size"] == len(art.vocab)
    assert {"tensorflow", "keras"} <= set(card["versions"]) and card["train_seconds"] > 0
    assert "🎭" in art.vocab and "Привет" in art.vocab.decode(art.vocab.encode("Привет"))
    # training.evaluate, run on its own, reproduces the card's figure.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.evaluate",
            "--model",
            str(tmp_path / "m"),
            "--corpus",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    found = re.search(r"held-out loss:\s+([\d.]+)", out.stdout)
    assert found, out.stdout
    loss = float(found.group(1))
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
    rc = train_main(
        [
            "--corpus",
            str(path),
            "--out",
            str(tmp_path / "m"),
            "--work-dir",
            str(tmp_path / "w"),
            *TINY,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(rf"^error: .*corpus\.txt: {message}", err), err
    assert not (tmp_path / "m").exists()


def test_bad_flags_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        train_main(["--corpus", "x", "--out", str(tmp_path / "m"), "--dropout", "1.5"])
    assert exc.value.code == 2 and "--dropout" in capsys.readouterr().err


def test_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        train_main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for default in (
        "(default: 512)",
        "(default: 0.998)",
        "(default: cosine)",
        r"(default: '\n')",
        "(default: 0.0)",
    ):
        assert default in out, default
    assert "(default: None)" not in out and "(default: False)" not in out


def test_the_config_is_typed_and_resolved_from_the_command_line(tmp_path: Path) -> None:
    config = parse_args(["--corpus", "c.txt", "--out", str(tmp_path / "mine"), "--locked-dropout"])
    assert config.work_dir == Path("checkpoints/mine") and config.name == "mine"
    assert config.locked_dropout and config.embedding_dropout == 0.0 and config.units == 512
    assert json.loads(json.dumps(config.to_dict()))["out"] == str(tmp_path / "mine")
    with pytest.raises(ValueError, match="--extend-vocab needs --init-from"):
        TrainConfig(Path("c"), Path("o"), Path("w"), "n", extend_vocab=True)


def fake_clock(step: float) -> Callable[[], float]:
    now = [0.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def test_progress_is_one_line_per_epoch_off_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(
        0,
        2,
        steps=4,
        first=0,
        chars_per_step=100,
        out=out,
        interactive=False,
        clock=fake_clock(1.0),
    )
    for step in range(1, 5):
        progress.step(step, 2.0)
    progress.end({"loss": 2.0, "val_loss": 1.5})
    lines = out.getvalue().splitlines()
    assert lines[0] == "Epoch 1/2" and len(lines) == 2 and "\r" not in out.getvalue()
    assert re.fullmatch(
        r"4/4 - \d+s - \d+ms/step - loss: 2\.0000 - val_loss: 1\.5000 - 100 chars/s", lines[1]
    )


def test_progress_redraws_one_line_with_an_eta_on_a_terminal() -> None:
    out = io.StringIO()
    # Resumed at step 6 of 10: the ETA counts only the steps run here (1 s each).
    progress = Progress(
        2, 5, steps=10, first=6, chars_per_step=50, out=out, interactive=True, clock=fake_clock(1.0)
    )
    progress.step(7, 1.0)
    progress.step(8, 3.0)
    progress.end({"loss": 2.0, "val_loss": 1.5, "val_loss_ema": 1.4})
    draws = out.getvalue().split("\r")
    assert draws[0] == "Epoch 3/5\n" and len(draws) == 4
    assert "ETA 3s - loss: 1.0000" in draws[1] and "ETA 2s - loss: 2.0000" in draws[2]
    assert (
        draws[3].startswith("10/10 - ")
        and "val_loss_ema: 1.4000" in draws[3]
        and draws[3].endswith("\n")
    )


@pytest.mark.slow
def test_recipe_flags_reach_the_network_and_the_card(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "c.txt")
    extra = ["--locked-dropout", "--embedding-dropout", "0.1", "--max-chars", "2000", "--ema", "0"]
    assert train_main(cli_args(corpus, tmp_path, epochs=1, extra=extra)) == 0
    card = load_artifact(tmp_path / "m").card
    assert card["config"]["locked_dropout"] is True and card["config"]["embedding_dropout"] == 0.1
    assert card["hyperparameters"]["max_chars"] == 2000
    # windows of the 2,000-char prefix only
    assert card["steps_per_epoch"] == ((2000 - 1) // 24 - 1) // 8
    assert card["weights"] == "raw"  # no average to keep


def test_too_short_a_max_chars_prefix_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = make_corpus(tmp_path / "c.txt", words=300)
    assert train_main(cli_args(corpus, tmp_path, epochs=1, extra=["--max-chars", "100"])) == 2
    assert (
        "the first --max-chars 100 of the training text holds fewer than" in capsys.readouterr().err
    )


def test_the_card_names_the_weights_of_the_best_epoch(tmp_path: Path) -> None:
    from model.vocab import Vocab
    from training.callbacks import EpochLog

    log = EpochLog(tmp_path, Vocab.from_text("ab"), "a")
    assert log.kept_weights() is None  # nothing trained yet
    (tmp_path / "history.csv").write_text(
        "epoch,loss,val_loss,val_loss_ema,weights,seconds\n"
        "0,2.0,1.90,1.95,raw,1\n1,1.8,1.80,1.70,ema,1\n2,1.7,1.75,1.72,raw,1\n",
        "utf-8",
    )
    assert log.kept_weights() == "ema"  # epoch 1's average scored best of all
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss,seconds\n0,2.0,1.9,1\n", "utf-8")
    assert log.kept_weights() == "raw"  # no average (--ema 0)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_cell_flag_trains_a_gru_or_rnn_that_the_server_step_serves(
    tmp_path: Path, cell: str
) -> None:
    """--cell picks Keras's GRU or SimpleRNN; the card records it; training.evaluate (the serving
    step) agrees with the card's held-out loss."""
    from model.cells import Stack
    from training.evaluate import held_out_loss

    corpus = make_corpus(tmp_path / "c.txt")
    assert (
        train_main(
            cli_args(corpus, tmp_path, epochs=1, extra=["--cell", cell, "--max-chars", "4000"])
        )
        == 0
    )
    art = load_artifact(tmp_path / "m")
    assert art.card["config"]["cell"] == art.card["hyperparameters"]["cell"] == cell
    stack = Stack.from_keras(art.model)
    assert stack.cell == cell and art.model.get_layer(f"{cell}_0") is not None
    text = corpus.read_text("utf-8")
    ids = art.vocab.encode(text[len(text) - art.card["corpus"]["held_out_chars"] :])
    assert held_out_loss(stack, ids) == pytest.approx(art.card["held_out_loss_nats"], abs=1e-3)
