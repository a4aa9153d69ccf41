"""The character vocabulary: a char's id is its index in `chars`.

Saved beside the weights as `vocab.json` = `{"chars": [...]}` so a model never depends on
the corpus it was trained on.  Example:

    vocab = Vocab.from_text("hello")
    ids = vocab.encode("hell")          # array([1, 0, 2, 2], dtype=int32)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_CODEPOINT = 0x10FFFF


class VocabError(ValueError):
    """A vocab file or an encode request that cannot be honoured."""


@dataclass(frozen=True)
class Vocab:
    chars: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for ch in self.chars:
            if not isinstance(ch, str) or len(ch) != 1:
                raise VocabError(f"vocab entries must be single chars, got {ch!r}")
        if len(set(self.chars)) != len(self.chars):
            raise VocabError("vocab has duplicate chars")
        if not self.chars:
            raise VocabError("vocab is empty")
        object.__setattr__(self, "_index", {ch: i for i, ch in enumerate(self.chars)})

    @classmethod
    def from_chars(cls, chars: Iterable[str]) -> Vocab:
        """A vocab of the distinct chars given, in code-point order (stable across runs)."""
        return cls(tuple(sorted(set(chars))))

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls.from_chars(text)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, ch: object) -> bool:
        return ch in self._index

    def unknown(self, text: str) -> list[str]:
        """The distinct chars of `text` that are not in the vocab, in order of appearance."""
        return list(dict.fromkeys(ch for ch in text if ch not in self._index))

    def encode(self, text: str) -> np.ndarray:
        """Ids of `text`, shape (len(text),), int32. Raises VocabError naming unknown chars."""
        try:
            return np.fromiter((self._index[ch] for ch in text), dtype=np.int32, count=len(text))
        except KeyError:
            raise VocabError(f"chars not in the vocabulary: {self.unknown(text)!r}") from None

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in ids)

    def lookup_table(self) -> np.ndarray:
        """A code point → id table (−1 where absent), for encoding large arrays at once."""
        table = np.full(max(ord(c) for c in self.chars) + 1, -1, dtype=np.int32)
        for i, ch in enumerate(self.chars):
            table[ord(ch)] = i
        return table

    def to_json(self) -> str:
        return json.dumps({"chars": list(self.chars)}, ensure_ascii=False)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Vocab:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            chars = data["chars"]
            if not isinstance(chars, list):
                raise TypeError("'chars' is not a list")
            return cls(tuple(chars))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VocabError(f"{path}: not a valid vocab file ({exc})") from exc
