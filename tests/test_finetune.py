"""Fine-tuning (`--init-from`, `--extend-vocab`): unknown chars are named, an extended model
predicts the old
chars as before at step 0, and fine-tuning on a new text beats training from scratch on it."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import numpy as np
import pytest

from model.artifact import load_artifact
from model.cells.network import NetworkConfig, build_model
from model.vocab import Vocab
from tests.conftest import build_tiny_model_dir
from tests.test_train import cli_args, make_corpus
from training.finetune import init_weights, load_parent
from training.train import main as train_main


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_an_extended_model_predicts_the_old_chars_as_before(tmp_path: Path) -> None:
    parent = load_parent(build_tiny_model_dir(tmp_path / "p", chars="abcdefgh .\n", units=16))
    old = len(parent.vocab)
    vocab = Vocab((*parent.vocab.chars, "Ω", "ж"))
    model = build_model(NetworkConfig(len(vocab), embedding_dim=8, units=16, layers=2, dropout=0.0))
    init_weights(model, parent)
    ids = np.random.default_rng(0).integers(0, old, size=(4, 40)).astype("int32")
    before, after = np.asarray(parent.model(ids)), np.asarray(model(ids))  # (batch, time, vocab)
    # the old chars' logits are the parent's
    np.testing.assert_allclose(after[..., :old], before, atol=1e-5)
    p_before, p_after = softmax(before), softmax(after)
    assert p_after[..., old:].sum(axis=-1).max() < 1e-3  # the new chars start with a tiny share
    np.testing.assert_allclose(p_after[..., :old], p_before, atol=1e-3)
    table = model.get_layer("embedding").get_weights()[0]
    np.testing.assert_array_equal(table[:old], parent.model.get_layer("embedding").get_weights()[0])


def test_chars_the_parent_lacks_are_listed_in_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parent = build_tiny_model_dir(tmp_path / "p", chars="abcdefgh .\n", units=16)
    corpus = tmp_path / "b.txt"
    corpus.write_text("a bad cafe. Ω ж Ω\n" * 100, "utf-8")
    rc = train_main(cli_args(corpus, tmp_path, epochs=1, extra=["--init-from", str(parent)]))
    err = capsys.readouterr().err
    assert rc == 2 and re.search(
        r"^error: .*b\.txt: 2 chars are not in the model's vocabulary: \['Ω', 'ж'\]", err
    )
    assert "--extend-vocab" in err and not (tmp_path / "m").exists()


def test_a_missing_parent_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = make_corpus(tmp_path / "c.txt", words=300)
    rc = train_main(
        cli_args(corpus, tmp_path, epochs=1, extra=["--init-from", str(tmp_path / "nope")])
    )
    err = capsys.readouterr().err
    assert rc == 2 and re.search(r"^error: --init-from .*nope: model directory not found", err), err


def variant(path: Path, seed: int, words: int = 3000) -> Path:
    """Text B: the parent's words in another order, plus a word with a char the parent never saw."""
    rng = random.Random(seed)
    vocab = ["to", "be", "or", "not", "that", "is", "the", "question", "Привет", "🎭", "Ωto"]
    path.write_text(" ".join(rng.choice(vocab) for _ in range(words)) + "\n", "utf-8")
    return path


@pytest.mark.slow
def test_fine_tuning_on_a_new_text_beats_training_from_scratch(tmp_path: Path) -> None:
    a, b = make_corpus(tmp_path / "a.txt"), variant(tmp_path / "b.txt", seed=1)
    assert train_main(cli_args(a, tmp_path / "parent", epochs=2, extra=["--lr", "1e-2"])) == 0
    parent = tmp_path / "parent" / "m"
    short = ["--max-steps", "15", "--lr", "1e-2", "--warmup-steps", "0"]
    tuned_args = cli_args(
        b,
        tmp_path / "tuned",
        epochs=1,
        extra=[*short, "--init-from", str(parent), "--extend-vocab"],
    )
    # the parent's sizes win
    assert train_main([*tuned_args, "--units", "64", "--layers", "3"]) == 0
    assert train_main(cli_args(b, tmp_path / "scratch", epochs=1, extra=short)) == 0
    tuned, scratch, old = (
        load_artifact(tmp_path / d / "m") for d in ("tuned", "scratch", "parent")
    )
    assert tuned.card["held_out_loss_nats"] < scratch.card["held_out_loss_nats"] - 0.1
    assert tuned.vocab.chars[: len(old.vocab)] == old.vocab.chars  # the old chars keep their ids
    assert tuned.vocab.chars[len(old.vocab) :] == ("Ω",)
    assert tuned.card["config"]["units"] == 24 and tuned.card["config"]["layers"] == 2
    assert (
        tuned.card["parent"]["sha256"]
        == hashlib.sha256((parent / "model.keras").read_bytes()).hexdigest()
    )
    assert tuned.card["parent"]["added_chars"] == ["Ω"] and tuned.card["hyperparameters"][
        "init_from"
    ] == str(parent)
