"""model/reading/finder.py: the streamed correlations equal NumPy's on recorded activations, and on
a tiny model trained here on text whose quotes matter (uppercase inside, lowercase outside) the
finder
ranks a quote-tracking cell above the rest; the CLI writes cells.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model.cells.stack import LSTMStack
from model.reading.finder import FEATURES, best_cells, correlations, feature_matrix, main
from model.reading.score import Probe, Reading

QUOTES = list(FEATURES).index("in_quotes")


def quote_text(chars: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "said", "to", "dog"]
    parts: list[str] = []
    while sum(map(len, parts)) < chars:
        said = " ".join(rng.choice(words, rng.integers(2, 6)))
        quoted = " ".join(rng.choice(words, rng.integers(1, 6))).upper()
        parts.append(f'{said} "{quoted}" ' + ("\n" if rng.random() < 0.2 else ""))
    return "".join(parts)


@pytest.fixture(scope="module")
def trained():
    """A 1×16 LSTM fitted for a few seconds: to predict the case it must know whether a quote is
    open."""
    import keras

    from model.cells.network import NetworkConfig, build_model
    from model.vocab import Vocab

    text = quote_text(30_000, seed=0)
    vocab = Vocab.from_text(text)
    keras.utils.set_random_seed(0)
    model = build_model(
        NetworkConfig(vocab_size=len(vocab), embedding_dim=8, units=16, layers=1, dropout=0.0)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ids, seq = vocab.encode(text), 64
    n = (len(ids) - 1) // seq
    model.fit(
        ids[: n * seq].reshape(n, seq),
        ids[1 : n * seq + 1].reshape(n, seq),
        batch_size=32,
        epochs=3,
        verbose=0,
    )
    return model, vocab


def test_features() -> None:
    text = 'AB: "x (y)"\nROMEO:\nhi'
    f = dict(zip(FEATURES, feature_matrix(text).T, strict=True))
    assert f["in_quotes"].tolist()[3:12] == [0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert f["in_brackets"][text.index("(")] == 1 and f["in_brackets"][text.index(")")] == 0
    assert f["line_position"][text.index("R")] == 1 and f["line_position"][text.index("\n")] == 0
    assert f["speaker_line"][text.index("M")] == 1 and f["speaker_line"][text.index("h")] == 0
    assert f["word_start"][text.index("h")] == 1 and f["word_start"][text.index("i")] == 0
    assert f["newline_next"][text.index('"\n')] == 1


def test_streamed_correlations_equal_numpy(tiny_model_dir: Path) -> None:
    from model.artifact import load_artifact

    art = load_artifact(tiny_model_dir)
    stack = LSTMStack.from_keras(art.model)
    # all in the vocab
    text = 'He said "HI there" and left.\nROMEO:\nAnd "so" it goes, "WELL".\n' * 3
    r = correlations(stack, art.vocab, text, streams=1)
    acts = Reading(stack, art.vocab, text, probe=Probe(1, tuple(range(16)), "c")).run().activations
    feats = feature_matrix(text)
    for unit in (0, 7, 15):
        expected = np.corrcoef(acts[:, unit].astype(np.float64), feats[:, QUOTES])[0, 1]
        assert r["c"][1, unit, QUOTES] == pytest.approx(expected, abs=1e-4)


def test_finder_ranks_a_quote_cell_above_random_cells(trained) -> None:
    model, vocab = trained
    r = correlations(LSTMStack.from_keras(model), vocab, quote_text(5_000, seed=1))
    best = best_cells(r)["in_quotes"]["cells"][0]
    every = np.abs(np.concatenate([r[w][..., QUOTES].ravel() for w in "hc"]))
    assert abs(best["r"]) >= 0.6
    assert abs(best["r"]) > np.percentile(every, 75) + 0.2  # well above the typical cell
    assert abs(best["r"]) == pytest.approx(every.max(), abs=1e-4)


def test_cli_writes_cells_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text('ROMEO:\nSo "QUIET" (here).\n' * 200, "utf-8")
    assert main(["--model", str(model_dir), "--corpus", str(corpus)]) == 0
    found = json.loads((model_dir / "cells.json").read_text("utf-8"))
    assert set(found["features"]) == set(FEATURES)
    assert found["held_out_chars"] == int(len(corpus.read_text()) * 0.1)
    sizes = {name: len(e["cells"]) for name, e in found["features"].items()}
    assert sizes == {
        **dict.fromkeys(FEATURES, 5),
        "in_brackets": 0,
    }  # "(" is not in the tiny vocab: never varies
    assert main(["--model", str(tmp_path / "none"), "--corpus", str(corpus)]) == 2
