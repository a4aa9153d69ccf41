"""Vocab: ids are indexes, multi-byte chars round-trip, bad files are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.vocab import Vocab, VocabError


def test_ids_are_indexes_in_code_point_order() -> None:
    vocab = Vocab.from_text("hello")
    assert vocab.chars == ("e", "h", "l", "o")
    assert vocab.encode("hell").tolist() == [1, 0, 2, 2]
    assert vocab.decode([1, 0, 2, 2, 3]) == "hello"


@pytest.mark.parametrize(
    "text", ["Привет, мир!", "emoji 🎭🗡️ and ✨", "e\u0301 combining", "日本語のテキスト"]
)
def test_multibyte_text_round_trips_through_a_saved_vocab(tmp_path: Path, text: str) -> None:
    vocab = Vocab.from_text(text)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded == vocab
    assert loaded.decode(loaded.encode(text)) == text
    assert "\\u" not in (tmp_path / "vocab.json").read_text("utf-8")  # stored readable, not escaped


def test_unknown_chars_are_named_in_order() -> None:
    vocab = Vocab.from_text("abc")
    assert vocab.unknown("abxcyx") == ["x", "y"]
    with pytest.raises(VocabError, match="'x', 'y'"):
        vocab.encode("abxcyx")


def test_lookup_table_encodes_like_encode() -> None:
    vocab = Vocab.from_text("Жaz🎭")
    table = vocab.lookup_table()
    assert [int(table[ord(c)]) for c in "z🎭Ж"] == vocab.encode("z🎭Ж").tolist()
    assert table[ord("b")] == -1


@pytest.mark.parametrize(
    "content",
    [
        '{"chars": ["a", "a"]}',
        '{"chars": ["ab"]}',
        '{"chars": []}',
        '{"nope": 1}',
        "not json",
        '{"chars": 3}',
    ],
)
def test_bad_vocab_files_name_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "vocab.json"
    path.write_text(content, "utf-8")
    with pytest.raises(VocabError, match=r"vocab\.json"):
        Vocab.load(path)
