"""Read a corpus as a stream, encode it once to a memory-mapped id file, and feed tf.data.

    corpus = read_corpus(Path("data.txt"), work_dir=Path("checkpoints/x"))
    train_ds = window_dataset(corpus.train_ids, seq_len=128, batch_size=64, seed=1)

The corpus is a UTF-8 file or a directory of them (read in sorted order).  Two streaming
passes: the first validates UTF-8 (naming the byte offset of a bad byte), counts chars,
collects the vocab and the sha256; the second appends ids chunk by chunk to a `.npy` file
(plain writes, so the pages sit in the OS page cache, not in this process), which is then
opened as a read-only memory-map: one byte per char when the vocab has ≤ 256 chars.
Memory stays bounded by the chunk size (a few tens of MB), whatever the corpus size.  The
held-out split is the last 10% of chars, contiguous (as nanoGPT splits tiny shakespeare).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.vocab import Vocab

CHUNK_BYTES = 1 << 22
HELD_OUT_FRACTION = 0.1


class CorpusError(ValueError):
    """A corpus that cannot be trained on; the message names the file."""


class UnknownCharsError(CorpusError):
    """The corpus has chars that the vocab it must be encoded with lacks (fine-tuning)."""

    def __init__(self, path: Path, chars: list[str]):
        self.chars = chars  # in code-point order
        are = "chars are" if len(chars) > 1 else "char is"
        super().__init__(f"{path}: {len(chars)} {are} not in the model's vocabulary: {chars!r}")


@dataclass(frozen=True)
class Corpus:
    name: str
    sha256: str
    num_bytes: int
    num_chars: int
    vocab: Vocab
    ids: np.ndarray  # (num_chars,) memory-mapped

    @property
    def split(self) -> int:
        return self.num_chars - int(self.num_chars * HELD_OUT_FRACTION)

    @property
    def train_ids(self) -> np.ndarray:
        return self.ids[: self.split]

    @property
    def held_out_ids(self) -> np.ndarray:
        return self.ids[self.split :]


def corpus_files(path: Path) -> list[Path]:
    if not path.exists():
        raise CorpusError(f"{path}: corpus not found")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise CorpusError(f"{path}: corpus directory holds no files")
        return files
    return [path]


def _chunks(files: list[Path], digest: hashlib._Hash | None = None) -> Iterator[str]:
    """Decoded text of each file, chunk by chunk; a bad byte raises CorpusError with its offset."""
    for file in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        with open(file, "rb") as fh:
            while True:
                raw = fh.read(CHUNK_BYTES)
                if digest is not None:
                    digest.update(raw)
                buffered = len(decoder.getstate()[0])
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as exc:
                    at = offset - buffered + exc.start
                    raise CorpusError(
                        f"{file}: not valid UTF-8 (bad byte at offset {at})"
                    ) from None
                offset += len(raw)
                if text:
                    yield text
                if not raw:
                    break


def read_corpus(
    path: Path, work_dir: Path, min_chars: int = 2, vocab: Vocab | None = None, extend: bool = False
) -> Corpus:
    """Validate and encode `path`; ids are cached in `work_dir` by the corpus's sha256.

    The vocab is the corpus's own chars, or `vocab` (a model's, when fine-tuning): then every corpus
    char must be in it (else UnknownCharsError), or with `extend` the missing ones are appended
    after its own chars, so the chars it had keep their ids.
    """
    files = corpus_files(Path(path))
    digest, chars, count = hashlib.sha256(), set[str](), 0
    size = sum(file.stat().st_size for file in files)
    for text in _chunks(files, digest):
        chars.update(text)
        count += len(text)
    if count == 0:
        raise CorpusError(f"{path}: corpus is empty")
    if count < min_chars:
        raise CorpusError(
            f"{path}: corpus has {count} chars, fewer than one training window ({min_chars})"
        )
    sha = digest.hexdigest()
    ids_name = f"ids-{sha[:16]}"
    if vocab is None:
        vocab = Vocab.from_chars(chars)
    else:
        missing = sorted(chars - set(vocab.chars))
        if missing and not extend:
            raise UnknownCharsError(Path(path), missing)
        vocab = Vocab(vocab.chars + tuple(missing))
        # other ids, other file
        ids_name += "-" + hashlib.sha256(vocab.to_json().encode()).hexdigest()[:8]
    work_dir.mkdir(parents=True, exist_ok=True)
    ids_path = work_dir / f"{ids_name}.npy"
    dtype = np.uint8 if len(vocab) <= 1 << 8 else np.uint16 if len(vocab) <= 1 << 16 else np.int32
    if not ids_path.exists():
        _write_ids(files, vocab, ids_path, count, dtype)
    ids = np.load(ids_path, mmap_mode="r")
    return Corpus(Path(path).name, sha, size, count, vocab, ids)


def _write_ids(files: list[Path], vocab: Vocab, target: Path, count: int, dtype: type) -> None:
    """Append the ids chunk by chunk after a `.npy` header; a unique temp name, then an atomic
    rename,
    so workers sharing a work dir may encode the same corpus at once."""
    table = vocab.lookup_table()
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
        "fortran_order": False,
        "shape": (count,),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            written = 0
            for text in _chunks(files):
                codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
                table[codepoints].astype(dtype).tofile(fh)
                written += len(codepoints)
            if written != count:
                raise CorpusError(f"{files[0]}: the corpus changed while it was being read")
        os.chmod(tmp, 0o644)  # as a plain open() would leave it; mkstemp makes it owner-only
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
