"""model/reading/memory.py: the suffix array, copied spans (whole, none, across chunk joins), the
CLI and
the training hook's gating."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.reading.memory import (
    INDEX_FILE,
    TEXT_FILE,
    MemoryIndex,
    index_after_training,
    main,
    suffix_array,
)
from model.vocab import Vocab

CORPUS = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n\n"
    "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n\n"
)


@pytest.mark.parametrize("text", ["banana", "mississippi", "aaaaaaa", "a", "", "abcabcabcx\n\nabc"])
def test_suffix_array_is_sorted_suffixes(text: str) -> None:
    assert suffix_array(text).tolist() == sorted(range(len(text)), key=lambda i: text[i:])


def test_suffix_array_random() -> None:
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("ab\n"), 500))
    assert suffix_array(text).tolist() == sorted(range(len(text)), key=lambda i: text[i:])


@pytest.fixture(scope="module")
def index() -> MemoryIndex:
    return MemoryIndex(CORPUS, suffix_array(CORPUS))


def test_corpus_text_is_marked_whole(index: MemoryIndex) -> None:
    cut = CORPUS[10:150]
    spans = index.copied_spans(cut, 24)
    assert [(s["start"], s["end"]) for s in spans] == [(0, len(cut))]
    assert spans[0]["source"]["offset"] == 10 and spans[0]["source"]["line"] == 2
    assert spans[0]["source"]["line_text"] == "But soft, what light through yonder window breaks?"


def test_new_text_is_not_marked(index: MemoryIndex) -> None:
    assert (
        index.copied_spans(
            "ROMEO:\nWhat is a name? a rose by any other word would smell as sweet", 24
        )
        == []
    )
    assert index.copied_spans("short", 24) == []
    assert index.copied_spans("wherefore art thou Romeo", 25) == []  # 24 chars: under min_chars


def test_spans_across_chunk_joins_and_between_new_text(index: MemoryIndex) -> None:
    """A stream's chunks joined: a copied run split over two chunks is one span, bounded exactly."""
    chunks = [
        "Something new here. It is the ea",
        "st, and Juliet is the sun.",
        " Then new again; ",
        "O Romeo, Romeo! wherefore art thou",
    ]
    text = "".join(chunks)
    spans = index.copied_spans(text, 24)
    found = [text[s["start"] : s["end"]] for s in spans]
    assert found == ["It is the east, and Juliet is the sun.", "O Romeo, Romeo! wherefore art thou"]


def test_overlapping_runs_are_each_reported(index: MemoryIndex) -> None:
    # "the sun.\n\nJULIET:\nO Romeo" is verbatim; so is "JULIET:\nO Romeo, Romeo! wherefore" ...
    text = "and Juliet is the sun.\n\nJULIET:\nO Romeo, Romeo! wherefore art thou Romeo?"
    spans = index.copied_spans(text, 24)
    assert [(s["start"], s["end"]) for s in spans] == [(0, len(text))]


def test_cli_and_load(tmp_path: Path) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(CORPUS * 3, "utf-8")
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    assert main(["--model", str(model_dir), "--corpus", str(corpus)]) == 0
    loaded = MemoryIndex.load(model_dir)
    assert loaded.text == (CORPUS * 3)[: len(CORPUS * 3) - int(len(CORPUS * 3) * 0.1)]
    assert loaded.copied_spans(CORPUS[:60], 24)[0]["end"] == 60
    assert main(["--model", str(tmp_path / "none"), "--corpus", str(corpus)]) == 2


def test_training_hook_gates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import model.reading.memory

    vocab = Vocab.from_text(CORPUS)
    ids = vocab.encode(CORPUS)
    assert "index of" in index_after_training(tmp_path, vocab, ids)
    assert (tmp_path / TEXT_FILE).read_text("utf-8") == CORPUS and (tmp_path / INDEX_FILE).exists()
    other = tmp_path / "other"
    other.mkdir()
    assert "no memorisation index" in index_after_training(other, vocab, ids, "no")
    monkeypatch.setattr(model.reading.memory, "MAX_INDEX_CHARS", 10)
    assert "over the limit" in index_after_training(other, vocab, ids, "auto")
    assert not (other / INDEX_FILE).exists()
    assert "index of" in index_after_training(other, vocab, ids, "yes")


def test_a_run_across_two_corpus_files_is_one_span(tmp_path: Path) -> None:
    """A corpus directory is read as one text (as training reads it): a run over a file boundary
    is found whole."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(CORPUS[:120], "utf-8")
    # the held-out 10% comes from b's repeats
    (corpus / "b.txt").write_text(CORPUS[120:] * 20, "utf-8")
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    assert main(["--model", str(model_dir), "--corpus", str(corpus)]) == 0
    across = CORPUS[90:150]
    assert [
        (s["start"], s["end"]) for s in MemoryIndex.load(model_dir).copied_spans(across, 24)
    ] == [(0, 60)]
