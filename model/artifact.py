"""Save and load a trained model directory: `model.keras`, `vocab.json`, `card.json`.

    save_artifact(Path("models/x"), keras_model, vocab, card)   # atomic
    art = load_artifact(Path("models/x"))                       # checked, or ArtifactError

Saving writes a complete sibling directory and swaps it in atomically (renameat2 exchange on
Linux), so a kill at any moment leaves the previous directory loadable.  Loading checks that
the three files agree and names the bad file; a truncated `model.keras` is reported as
"corrupt or truncated", not as TensorFlow's misleading "file not found".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.vocab import Vocab, VocabError

MODEL_FILE, VOCAB_FILE, CARD_FILE = "model.keras", "vocab.json", "card.json"


class ArtifactError(RuntimeError):
    """A model directory that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Artifact:
    path: Path
    model: Any  # keras.Model; typed loosely so importers need not import Keras
    vocab: Vocab
    card: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.card.get("name") or self.path.name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False if unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def save_artifact(path: Path, model: Any, vocab: Vocab, card: dict[str, Any]) -> None:
    """Write an inference-only model directory at `path`, replacing any previous one atomically."""
    from model.cells.network import build_model, config_of  # Keras only when saving

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes 0700; a model dir must be readable by the server's user
    try:
        # A fresh, uncompiled copy carries the weights without any optimizer state.
        clean = build_model(config_of(model))
        clean.set_weights(model.get_weights())
        clean.save(tmp / MODEL_FILE)
        vocab.save(tmp / VOCAB_FILE)
        (tmp / CARD_FILE).write_text(json.dumps(card, indent=2, ensure_ascii=False), "utf-8")
        for name in (MODEL_FILE, VOCAB_FILE, CARD_FILE):
            with open(tmp / name, "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(tmp)
        if not path.exists():
            tmp.rename(path)
        elif not _exchange(tmp, path):
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            tmp = old
        _fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_card(path: Path) -> dict[str, Any]:
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path}: not a valid model card ({exc})") from exc
    if not isinstance(card, dict):
        raise ArtifactError(f"{path}: the model card must be a JSON object")
    return card


def _load_keras(path: Path) -> Any:
    import keras

    if not zipfile.is_zipfile(path):
        raise ArtifactError(f"{path}: corrupt or truncated (not a complete .keras archive)")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
        if bad is not None:
            raise ArtifactError(f"{path}: corrupt or truncated (bad member {bad})")
        return keras.saving.load_model(path, compile=False)
    except ArtifactError:
        raise
    except Exception as exc:  # Keras raises many types for damaged archives
        raise ArtifactError(f"{path}: corrupt or truncated ({type(exc).__name__})") from exc


def load_artifact(path: Path) -> Artifact:
    """Load and cross-check a model directory; raise ArtifactError naming the bad file."""
    from model.cells.network import config_of

    path = Path(path)
    if not path.is_dir():
        raise ArtifactError(f"{path}: model directory not found")
    for name in (MODEL_FILE, VOCAB_FILE, CARD_FILE):
        if not (path / name).is_file():
            raise ArtifactError(f"{path / name}: missing")
    try:
        vocab = Vocab.load(path / VOCAB_FILE)
    except VocabError as exc:
        raise ArtifactError(str(exc)) from exc
    card = _read_card(path / CARD_FILE)
    model = _load_keras(path / MODEL_FILE)
    try:
        config = config_of(model)
        dense_units = int(model.get_layer("logits").units)
    except (ValueError, IndexError, AttributeError) as exc:
        raise ArtifactError(f"{path / MODEL_FILE}: not a char-LSTM model ({exc})") from exc
    if not config.vocab_size == dense_units == len(vocab):
        raise ArtifactError(
            f"{path / VOCAB_FILE}: {len(vocab)} chars, but {path / MODEL_FILE} has "
            f"{config.vocab_size} embedding rows and {dense_units} output units"
        )
    card_vocab = card.get("vocab_size")
    if card_vocab is not None and card_vocab != len(vocab):
        raise ArtifactError(f"{path / CARD_FILE}: vocab_size {card_vocab} ≠ {len(vocab)} chars")
    return Artifact(path=path, model=model, vocab=vocab, card=card)
