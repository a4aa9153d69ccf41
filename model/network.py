"""Build the Keras 3 char-LSTM: int ids (batch, time) → logits (batch, time, vocab).

Embedding → N stacked LSTM layers (dropout between) → Dense, no softmax inside: the loss
and the sampler both work from logits.  The config is a typed dataclass saved in the model
card, so loading never depends on command-line flags (as in nanoGPT).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import keras


@dataclass(frozen=True)
class NetworkConfig:
    vocab_size: int
    embedding_dim: int = 64
    units: int = 512
    layers: int = 2
    dropout: float = 0.25

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_model(config: NetworkConfig) -> keras.Model:
    """The functional model; dropout is active only in training."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")  # (batch, time)
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(ids)
    for n in range(config.layers):
        # recurrent_dropout stays 0 so the fused (cuDNN) kernel is used on a GPU.
        x = keras.layers.LSTM(config.units, return_sequences=True, name=f"lstm_{n}")(x)
        x = keras.layers.Dropout(config.dropout, name=f"dropout_{n}")(x)
    logits = keras.layers.Dense(config.vocab_size, name="logits")(x)  # (batch, time, vocab)
    return keras.Model(ids, logits, name="char_lstm")


def config_of(model: keras.Model) -> NetworkConfig:
    """Read the config back from a built model (used to check a loaded artifact)."""
    embedding = model.get_layer("embedding")
    lstms = [layer for layer in model.layers if isinstance(layer, keras.layers.LSTM)]
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    return NetworkConfig(
        vocab_size=int(embedding.input_dim),
        embedding_dim=int(embedding.output_dim),
        units=int(lstms[0].units),
        layers=len(lstms),
        dropout=float(dropouts[0].rate) if dropouts else 0.0,
    )
