"""Fine-tuning: training starts from a trained model directory (`training.train --init-from DIR`).

    vocab = parent_vocab(Path("model/pretrained/shakespeare"))   # before TensorFlow starts
    parent = load_parent(Path("model/pretrained/shakespeare"))
    init_weights(model, parent)                                  # model built for the new vocab

The corpus is encoded with the parent's vocab (training/corpus.py), so a char keeps its id.
With --extend-vocab the corpus's new chars are appended to it, and the embedding and output
layers get a row (a column) for each: the new embedding rows are the mean of the old ones (an
unremarkable input), and the new output columns have zero weights and a bias of
NEW_CHAR_BIAS, so at step 0 every old char's logit is exactly the parent's and the k new chars
share k·e^-10 / Σ e^(old logits) of the probability mass: the old chars' predictions are unchanged.
The zero weights still learn at once (their gradient is the hidden state times the error).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from model.artifact import VOCAB_FILE, ArtifactError, load_artifact
from model.vocab import Vocab, VocabError
from training.config import TrainConfig

NEW_CHAR_BIAS = -10.0  # a new char's logit at step 0: e^-10 ≈ 5e-5 of one old char with logit 0


@dataclass(frozen=True)
class Parent:
    path: Path
    model: Any  # keras.Model
    vocab: Vocab
    card: dict[str, Any]
    sha256: str  # of its model.keras


def parent_vocab(path: Path) -> Vocab:
    """The parent's vocab, read without TensorFlow; ArtifactError if it is not a model directory."""
    if not Path(path).is_dir():
        raise ArtifactError(f"--init-from {path}: model directory not found")
    try:
        return Vocab.load(Path(path) / VOCAB_FILE)
    except VocabError as exc:
        raise ArtifactError(f"--init-from: {exc}") from None


def load_parent(path: Path) -> Parent:
    artifact = load_artifact(path)
    digest = hashlib.sha256((artifact.path / "model.keras").read_bytes()).hexdigest()
    return Parent(artifact.path, artifact.model, artifact.vocab, artifact.card, digest)


def with_parent_architecture(config: TrainConfig, parent: Parent) -> TrainConfig:
    """The config with the parent's layer sizes (the recipe flags stay the command line's)."""
    from model.cells.network import config_of

    net = config_of(parent.model)
    return replace(
        config, layers=net.layers, units=net.units, embedding_dim=net.embedding_dim, cell=net.cell
    )


def init_weights(model: Any, parent: Parent) -> None:
    """Copy the parent's weights into `model`, layer by layer; extend the vocab-sized ones."""
    old = len(parent.vocab)
    for layer in model.layers:
        if not (
            layer.name in ("embedding", "logits")
            or layer.name.startswith(("lstm_", "gru_", "rnn_"))
        ):
            continue  # the input and dropout layers: no weights to copy
        source = [np.asarray(w) for w in parent.model.get_layer(layer.name).get_weights()]
        if layer.name == "embedding":  # (vocab, dim): new rows are the mean of the old ones
            (table,) = source
            added = layer.input_dim - old
            source = [
                np.concatenate([table, np.repeat(table.mean(axis=0, keepdims=True), added, axis=0)])
            ]
        elif layer.name == "logits":  # kernel (units, vocab), bias (vocab,)
            kernel, bias = source
            added = layer.units - old
            kernel = np.concatenate(
                [kernel, np.zeros((kernel.shape[0], added), kernel.dtype)], axis=1
            )
            source = [kernel, np.concatenate([bias, np.full(added, NEW_CHAR_BIAS, bias.dtype)])]
        layer.set_weights(source)


def parent_card(parent: Parent, vocab: Vocab) -> dict[str, Any]:
    """What the child's card records about where it started."""
    return {
        "path": str(parent.path),
        "name": str(parent.card.get("name") or parent.path.name),
        "sha256": parent.sha256,
        "held_out_loss_nats": parent.card.get("held_out_loss_nats"),
        "vocab_size": len(parent.vocab),
        "added_chars": list(vocab.chars[len(parent.vocab) :]),
    }
