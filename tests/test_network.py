"""The network builder: default layers as before, locked (variational) and embedding dropout,
config round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.artifact import load_artifact
from model.cells.network import NetworkConfig, build_model, config_of

OLD_LAYERS = ["ids", "embedding", "lstm_0", "dropout_0", "lstm_1", "dropout_1", "logits"]


def test_the_default_network_has_the_layers_of_every_earlier_model() -> None:
    model = build_model(NetworkConfig(vocab_size=20, embedding_dim=8, units=16))
    assert [layer.name for layer in model.layers] == OLD_LAYERS  # earlier checkpoints restore
    assert config_of(model) == NetworkConfig(vocab_size=20, embedding_dim=8, units=16)


def test_a_locked_mask_is_shared_by_every_time_step() -> None:
    config = NetworkConfig(
        vocab_size=20, embedding_dim=8, units=16, dropout=0.5, locked_dropout=True
    )
    layer = build_model(config).get_layer("dropout_0")
    out = np.asarray(layer(np.ones((4, 30, 16), "float32"), training=True))  # (batch, time, units)
    assert (out == 0).any() and (out != 0).any()
    # same mask at every step
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1, :], out.shape))
    plain = build_model(
        NetworkConfig(vocab_size=20, embedding_dim=8, units=16, dropout=0.5)
    ).get_layer("dropout_0")
    free = np.asarray(plain(np.ones((4, 30, 16), "float32"), training=True))
    assert not (free == free[:, :1, :]).all()  # without it, a fresh mask per step


def test_embedding_dropout_is_a_layer_of_its_own_and_survives_save_and_load(tmp_path: Path) -> None:
    from model.artifact import save_artifact
    from model.vocab import Vocab

    vocab = Vocab.from_text("abcdefghij")
    config = NetworkConfig(len(vocab), 8, 16, 2, 0.3, locked_dropout=True, embedding_dropout=0.1)
    model = build_model(config)
    assert "embedding_dropout" in [layer.name for layer in model.layers]
    out = np.asarray(
        model.get_layer("embedding_dropout")(np.ones((3, 12, 8), "float32"), training=True)
    )
    np.testing.assert_array_equal(out, np.broadcast_to(out[:, :1, :], out.shape))
    save_artifact(tmp_path / "m", model, vocab, {"name": "m", "config": config.to_dict()})
    loaded = load_artifact(tmp_path / "m").model
    assert config_of(loaded) == config
    ids = np.array([[1, 2, 3, 4]], "int32")
    # no dropout at inference
    np.testing.assert_allclose(np.asarray(loaded(ids)), np.asarray(model(ids)), atol=1e-6)


def test_a_model_built_without_the_dropout_options_loads_with_them_off(
    tiny_model_dir: Path,
) -> None:
    config = config_of(load_artifact(tiny_model_dir).model)
    assert config.locked_dropout is False and config.embedding_dropout == 0.0
