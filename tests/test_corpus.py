"""Corpus reading: streaming validation, the held-out split, ids on disk, bounded datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training import corpus as corpus_mod
from training.corpus import CorpusError, read_corpus


def test_ids_decode_back_to_the_text_and_split_is_the_last_tenth(tmp_path: Path) -> None:
    text = "Привет, мир! 🎭 " * 50 + "the end"
    (tmp_path / "c.txt").write_text(text, "utf-8")
    corpus = read_corpus(tmp_path / "c.txt", tmp_path / "work")
    assert corpus.num_chars == len(text) and corpus.num_bytes == len(text.encode())
    assert corpus.vocab.decode(corpus.ids) == text
    held = corpus.vocab.decode(corpus.held_out_ids)
    assert text.endswith(held) and len(held) == int(len(text) * 0.1)
    assert corpus.vocab.decode(corpus.train_ids) + held == text
    assert isinstance(corpus.ids, np.memmap)


def test_chunk_boundaries_inside_multibyte_chars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus_mod, "CHUNK_BYTES", 7)  # splits most 2- and 4-byte chars
    text = "Жж🎭x" * 40
    (tmp_path / "c.txt").write_text(text, "utf-8")
    assert (
        read_corpus(tmp_path / "c.txt", tmp_path / "w").vocab.decode(
            read_corpus(tmp_path / "c.txt", tmp_path / "w").ids
        )
        == text
    )


def test_a_directory_of_files_is_one_corpus(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("second ", "utf-8")
    (tmp_path / "d" / "a.txt").write_text("first ", "utf-8")
    corpus = read_corpus(tmp_path / "d", tmp_path / "w")
    assert corpus.vocab.decode(corpus.ids) == "first second "


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"nope\.txt: corpus not found"):
        read_corpus(tmp_path / "nope.txt", tmp_path / "w")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.txt").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"e\.txt: corpus is empty"):
        read_corpus(tmp_path / "e.txt", tmp_path / "w")


@pytest.mark.parametrize("chunk", [3, 1 << 20])
def test_invalid_utf8_names_the_byte_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(corpus_mod, "CHUNK_BYTES", chunk)
    good = "héllo wörld ".encode()
    (tmp_path / "bad.txt").write_bytes(good + b"\xff" + b"more")
    with pytest.raises(
        CorpusError, match=rf"bad\.txt: not valid UTF-8 \(bad byte at offset {len(good)}\)"
    ):
        read_corpus(tmp_path / "bad.txt", tmp_path / "w")


def test_truncated_multibyte_char_at_the_end(tmp_path: Path) -> None:
    data = b"abc" + "Ж".encode()[:1]
    (tmp_path / "t.txt").write_bytes(data)
    with pytest.raises(CorpusError, match="bad byte at offset 3"):
        read_corpus(tmp_path / "t.txt", tmp_path / "w")


def test_shorter_than_one_window(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("tiny", "utf-8")
    with pytest.raises(
        CorpusError, match=r"s\.txt: corpus has 4 chars, fewer than one training window \(130\)"
    ):
        read_corpus(tmp_path / "s.txt", tmp_path / "w", min_chars=130)


def test_windows_cover_the_ids_with_targets_shifted_by_one(tmp_path: Path) -> None:
    from training.dataset import window_dataset

    ids = np.arange(1000, dtype=np.uint16)
    dataset = window_dataset(ids, seq_len=10, batch_size=4, seed=0)
    batches = list(dataset)
    assert len(batches) == 24  # 98 windows fit at every offset, in batches of 4
    x, y = (np.asarray(t) for t in batches[0])
    assert x.shape == (4, 10) and y.shape == (4, 10)
    np.testing.assert_array_equal(y[:, :-1], x[:, 1:])
    np.testing.assert_array_equal(y[:, -1], x[:, -1] + 1)
    starts = np.concatenate([np.asarray(b[0])[:, 0] for b in batches])
    assert len(set(starts.tolist())) == 96  # a permutation: no window twice in a pass
    passes = [
        np.asarray(b[0]) for b in window_dataset(ids, seq_len=10, batch_size=4, seed=0, passes=8)
    ]
    offsets = {int(passes[24 * p][0, 0]) % 10 for p in range(8)}
    assert len(offsets) > 1  # a fresh random offset on each pass


def test_worker_shards_split_each_pass_without_overlap() -> None:
    from training.dataset import window_dataset

    ids = np.arange(1000, dtype=np.uint16)
    shards = [
        np.concatenate(
            [np.asarray(x)[:, 0] for x, _ in window_dataset(ids, 10, 4, seed=3, shard=(2, k))]
        )
        for k in range(2)
    ]
    assert len(shards[0]) == len(shards[1]) == 48  # 49 windows each, whole batches of 4
    assert not set(shards[0].tolist()) & set(shards[1].tolist())
    # both workers use the pass's offset
    assert len({int(s) % 10 for s in np.concatenate(shards)}) == 1


def test_a_given_vocab_encodes_the_corpus_and_missing_chars_are_named_or_appended(
    tmp_path: Path,
) -> None:
    from model.vocab import Vocab
    from training.corpus import UnknownCharsError

    (tmp_path / "c.txt").write_text("abba cab Ω", "utf-8")
    own = read_corpus(tmp_path / "c.txt", tmp_path / "w")
    model_vocab = Vocab(("c", "b", "a", " ", "z"))  # a model's order, not the corpus's
    with pytest.raises(
        UnknownCharsError, match=r"c\.txt: 1 char is not in the model's vocabulary: \['Ω'\]"
    ):
        read_corpus(tmp_path / "c.txt", tmp_path / "w", vocab=model_vocab)
    extended = read_corpus(tmp_path / "c.txt", tmp_path / "w", vocab=model_vocab, extend=True)
    # old ids kept, new chars after them
    assert extended.vocab.chars == (
        "c",
        "b",
        "a",
        " ",
        "z",
        "Ω",
    )
    assert extended.vocab.decode(extended.ids) == own.vocab.decode(own.ids) == "abba cab Ω"
    assert len(list((tmp_path / "w").glob("ids-*.npy"))) == 2  # other ids, another cache file
