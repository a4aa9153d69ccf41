"""Build the Keras 3 char-RNN: int ids (batch, time) → logits (batch, time, vocab).

Embedding → (optional embedding dropout) → N stacked recurrent layers (dropout after each) →
Dense, no softmax inside: the loss and the sampler both work from logits.  With
`locked_dropout` every dropout mask is drawn once per sequence and shared over time
(variational dropout, as in AWD-LSTM) instead of afresh at every char.  The config is a
typed dataclass saved in the model card, so loading never depends on command-line flags
(as in nanoGPT); `config_of` reads it back from a built or loaded model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import keras

Cell = Literal["lstm", "gru", "rnn"]
CELLS: tuple[Cell, ...] = ("lstm", "gru", "rnn")
# Keras layer of each cell.  GRU keeps Keras's default reset_after=True (cuDNN's convention).
LAYERS: dict[str, type[keras.layers.Layer]] = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "rnn": keras.layers.SimpleRNN,
}


@dataclass(frozen=True)
class NetworkConfig:
    vocab_size: int
    embedding_dim: int = 64
    units: int = 512
    layers: int = 2
    dropout: float = 0.25
    locked_dropout: bool = False  # one mask per sequence, shared by every time step
    embedding_dropout: float = 0.0  # on the embedding output; no layer at all when 0
    cell: Cell = "lstm"  # the recurrent layer: LSTM (3 gates), GRU (2 gates) or a plain tanh RNN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dropout(config: NetworkConfig, rate: float, features: int, name: str) -> keras.layers.Dropout:
    # noise_shape (batch, 1, features): the mask broadcasts over the time axis.
    noise_shape = (None, 1, features) if config.locked_dropout else None
    return keras.layers.Dropout(rate, noise_shape=noise_shape, name=name)


def build_model(config: NetworkConfig) -> keras.Model:
    """The functional model; dropout is active only in training.

    With the default config the layers (names, order, weights) are those of every model trained
    before the dropout options existed, so their checkpoints still restore.
    """
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")  # (batch, time)
    x = keras.layers.Embedding(config.vocab_size, config.embedding_dim, name="embedding")(ids)
    if config.embedding_dropout > 0:
        x = _dropout(config, config.embedding_dropout, config.embedding_dim, "embedding_dropout")(x)
    for n in range(config.layers):
        # recurrent_dropout stays 0 so the fused (cuDNN) kernel is used on a GPU.
        x = LAYERS[config.cell](config.units, return_sequences=True, name=f"{config.cell}_{n}")(x)
        x = _dropout(config, config.dropout, config.units, f"dropout_{n}")(x)
    logits = keras.layers.Dense(config.vocab_size, name="logits")(x)  # (batch, time, vocab)
    return keras.Model(
        ids, logits, name="char_lstm" if config.cell == "lstm" else f"char_{config.cell}"
    )


def config_of(model: keras.Model) -> NetworkConfig:
    """Read the config back from a built model (used to check a loaded artifact)."""
    embedding = model.get_layer("embedding")
    kinds = tuple(LAYERS.values())
    recurrent: list[Any] = [layer for layer in model.layers if isinstance(layer, kinds)]
    cell = next(name for name, kind in LAYERS.items() if type(recurrent[0]) is kind)
    dropouts = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    between = [layer for layer in dropouts if layer.name != "embedding_dropout"]
    on_embedding = [layer for layer in dropouts if layer.name == "embedding_dropout"]
    return NetworkConfig(
        vocab_size=int(embedding.input_dim),
        embedding_dim=int(embedding.output_dim),
        units=int(recurrent[0].units),
        layers=len(recurrent),
        dropout=float(between[0].rate) if between else 0.0,
        locked_dropout=any(layer.noise_shape is not None for layer in dropouts),
        embedding_dropout=float(on_embedding[0].rate) if on_embedding else 0.0,
        cell=cell,  # type: ignore[arg-type]
    )
