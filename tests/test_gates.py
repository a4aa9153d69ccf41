"""model/reading/gates.py: each cell's gates and states on a text, against Keras.

The reference runs the Keras model itself up to the chosen layer (its input sequence and its h at
every char), then recomputes the gates from that layer's weights with the textbook equations in
float64; c is carried along in float64 too.  Every value must agree to 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest

from model.cells import Stack
from model.reading.gates import GateReading, check_units
from model.vocab import Vocab

CHARS = "abcdefghij .,\n"
TEXT = "a bad cafe, a bee.\nhe fed a dab" * 3


def sig(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def network(request):
    import keras

    from model.cells.network import NetworkConfig, build_model

    keras.utils.set_random_seed(7)
    config = NetworkConfig(
        vocab_size=len(CHARS), embedding_dim=5, units=11, layers=2, dropout=0.0, cell=request.param
    )
    model = build_model(config)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(
                [w + np.random.default_rng(3).normal(0, 0.4, w.shape) for w in layer.get_weights()]
            )
    return request.param, model, Stack.from_keras(model)


def keras_reference(cell: str, model, ids: np.ndarray, layer: int) -> dict[str, np.ndarray]:
    import keras

    name = f"{cell}_{layer}"
    below = (
        model.get_layer("embedding").output
        if layer == 0
        else model.get_layer(f"dropout_{layer - 1}").output
    )
    probe = keras.Model(model.inputs, [below, model.get_layer(name).output])
    x_in, hs = (np.asarray(a, np.float64)[0] for a in probe(ids[None], training=False))
    weights = model.get_layer(name).get_weights()
    w, u_w = weights[0].astype(np.float64), weights[1].astype(np.float64)
    units = u_w.shape[0]
    h_prev, c = np.zeros(units), np.zeros(units)
    out: dict[str, list[np.ndarray]] = {}
    for t in range(len(ids)):
        if cell == "gru":
            b_in, b_rec = weights[2]
            x, r = x_in[t] @ w + b_in, h_prev @ u_w + b_rec
        else:
            x, r = x_in[t] @ w + weights[2], h_prev @ u_w
        blocks = [slice(k * units, (k + 1) * units) for k in range(len(x) // units)]
        if cell == "lstm":
            i, f, g, o = (x[b] + r[b] for b in blocks)
            i, f, g, o = sig(i), sig(f), np.tanh(g), sig(o)
            c = f * c + i * g
            values = {"i": i, "f": f, "g": g, "o": o, "c": c}
        elif cell == "gru":
            z, rr = sig(x[blocks[0]] + r[blocks[0]]), sig(x[blocks[1]] + r[blocks[1]])
            values = {"z": z, "r": rr, "n": np.tanh(x[blocks[2]] + rr * r[blocks[2]])}
        else:
            values = {}
        values["h"] = hs[t]
        for key, v in values.items():
            out.setdefault(key, []).append(v)
        h_prev = hs[t]
    return {key: np.stack(v) for key, v in out.items()}


@pytest.mark.parametrize("layer", [0, 1])
def test_gates_and_states_match_keras(network, layer: int) -> None:
    cell, model, stack = network
    vocab = Vocab.from_chars(CHARS)
    units = (0, 3, 10)
    result = GateReading(stack, vocab, TEXT, layer, units).run().result()
    ref = keras_reference(cell, model, vocab.encode(TEXT), layer)
    assert (
        result["gates"] == {"lstm": ["i", "f", "g", "o"], "gru": ["z", "r", "n"], "rnn": []}[cell]
    )
    assert set(result["values"]) == set(ref)  # c only for the LSTM; only h for the RNN
    for name, rows in result["values"].items():
        np.testing.assert_allclose(
            np.array(rows), ref[name][:, units], atol=1e-4, rtol=0, err_msg=name
        )


def test_a_char_outside_the_vocab_is_null_and_skipped(network) -> None:
    _, _, stack = network
    vocab = Vocab.from_chars(CHARS)
    with_unknown = GateReading(stack, vocab, "abZcd", 0, (1,)).run().result()
    without = GateReading(stack, vocab, "abcd", 0, (1,)).run().result()
    assert with_unknown["values"]["h"][2] is None
    kept = [row for row in with_unknown["values"]["h"] if row is not None]
    assert kept == without["values"]["h"]


def test_bad_layer_and_units_name_the_field(network) -> None:
    _, _, stack = network
    for layer, units, field in [
        (2, (0,), "layer"),
        (0, (), "units"),
        (0, (11,), "units"),
        (0, tuple(range(17)), "units"),
    ]:
        with pytest.raises(ValueError, match=f"^{field}:"):
            check_units(stack, layer, units)
