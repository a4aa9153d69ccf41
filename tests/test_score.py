"""model/reading/score.py: per-char log-probabilities and cell activations against Keras itself, and
scoring on the engine thread beside a running stream."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from model.cells.stack import LSTMStack
from model.reading.score import Probe, Reading
from tests.conftest import ROOT

TEXT = 'ROMEO:\nWhat light through yonder window breaks?\n"It is the east," and Juliet is the sun.'


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path):
    from model.artifact import load_artifact

    art = load_artifact(tiny_model_dir)
    return art.model, LSTMStack.from_keras(art.model), art.vocab


def keras_logprobs(model, vocab, text: str) -> np.ndarray:
    """Log-probability of each char given the chars before it, from Keras (the first from the
    bias)."""
    ids = vocab.encode(text)
    logits = np.asarray(model(ids[None], training=False), np.float64)[0]  # (time, vocab)
    bias = np.asarray(model.get_layer("logits").get_weights()[1], np.float64)
    before = np.concatenate([bias[None], logits[:-1]])  # the prediction each char was read with
    lsm = before - before.max(1, keepdims=True)
    lsm -= np.log(np.exp(lsm).sum(1, keepdims=True))
    return lsm[np.arange(len(ids)), ids]


def test_logprobs_match_keras(tiny) -> None:
    model, stack, vocab = tiny
    reading = Reading(stack, vocab, TEXT, top=3).run()
    np.testing.assert_allclose(reading.logprob, keras_logprobs(model, vocab, TEXT), atol=1e-4)
    summary = reading.summary()
    assert summary["scored_chars"] == len(TEXT) and summary["unscored_chars"] == 0
    assert summary["total_nats"] == pytest.approx(
        -keras_logprobs(model, vocab, TEXT).sum(), abs=1e-3
    )
    assert summary["bits_per_char"] == pytest.approx(summary["nats_per_char"] / np.log(2), abs=1e-3)
    first = reading.chars()[1]
    assert first["char"] == "O" and len(first["top"]) == 3
    assert first["top"][0][1] >= first["top"][1][1] >= first["top"][2][1]
    assert first["top"][0][1] >= first["logprob"]


def test_unknown_chars_are_skipped_and_the_state_carries_on(tiny) -> None:
    model, stack, vocab = tiny
    text = "AB€CD\U0001f600E"  # € and the emoji are not in the tiny vocab
    reading = Reading(stack, vocab, text, top=2).run()
    chars = reading.chars()
    assert [c["logprob"] is None for c in chars] == [False, False, True, False, False, True, False]
    assert chars[2]["top"] == []
    known = [c["logprob"] for c in chars if c["logprob"] is not None]
    np.testing.assert_allclose(known, keras_logprobs(model, vocab, "ABCDE"), atol=1e-4)
    assert reading.summary()["unscored_chars"] == 2


def test_empty_and_all_unknown_texts(tiny) -> None:
    _, stack, vocab = tiny
    assert Reading(stack, vocab, "").run().summary()["bits_per_char"] is None
    assert Reading(stack, vocab, "€€").run().summary() == {
        "total_nats": 0.0,
        "nats_per_char": None,
        "bits_per_char": None,
        "perplexity": None,
        "scored_chars": 0,
        "unscored_chars": 2,
    }


@pytest.mark.parametrize("layer", [0, 1])
def test_activations_match_a_keras_sub_model(tiny, layer: int) -> None:
    import keras

    model, stack, vocab = tiny
    units = (0, 3, 15)
    reading = Reading(stack, vocab, TEXT, probe=Probe(layer, units, "h")).run()
    sub = keras.Model(model.input, model.get_layer(f"lstm_{layer}").output)
    h = np.asarray(sub(vocab.encode(TEXT)[None], training=False))[0]  # (time, units)
    np.testing.assert_allclose(reading.activations, h[:, units], atol=1e-4)


def test_cell_state_matches_keras_final_state(tiny) -> None:
    """c is not a Keras output of the model; a copy of the layer with return_state gives its last
    value."""
    import keras

    model, stack, vocab = tiny
    reading = Reading(stack, vocab, TEXT, probe=Probe(1, tuple(range(16)), "c")).run()
    inner = keras.Model(model.input, model.get_layer("lstm_0").output)
    x = inner(vocab.encode(TEXT)[None], training=False)
    layer = model.get_layer("lstm_1")
    twin = keras.layers.LSTM(layer.units, return_state=True)
    twin.build(x.shape)
    twin.set_weights(layer.get_weights())
    _, _, c = twin(x)
    np.testing.assert_allclose(reading.activations[-1], np.asarray(c)[0], atol=1e-4)


def test_bad_probe_and_top_are_value_errors(tiny) -> None:
    _, stack, vocab = tiny
    with pytest.raises(ValueError, match="layer"):
        Reading(stack, vocab, "A", probe=Probe(2, (0,)))
    with pytest.raises(ValueError, match="units"):
        Reading(stack, vocab, "A", probe=Probe(0, (16,)))
    with pytest.raises(ValueError, match="what"):
        Reading(stack, vocab, "A", probe=Probe(0, (0,), "x"))
    with pytest.raises(ValueError, match="top"):
        Reading(stack, vocab, "A", top=6)


def test_engine_scores_in_slices_beside_a_stream(tiny) -> None:
    """The same numbers on the engine thread while it generates; the stream is not held up to the
    end."""
    from model.engine.loop import Engine
    from model.sampling.generate import GenerationRequest

    _, stack, vocab = tiny
    engine = Engine(stack, vocab, name="tiny")
    engine.start()
    events: list[str] = []
    done = threading.Event()

    class Sink:
        def on_chunk(self, chunk) -> None:
            events.append("chunk")

        def on_done(self, generation) -> None:
            done.set()

        def on_error(self, exc: BaseException) -> None:
            done.set()

    try:
        engine.submit(GenerationRequest(prompt="A", max_chars=400, seed=1), Sink())
        text = TEXT * 10
        reading = Reading(stack, vocab, text, top=2, on_done=lambda r: events.append("scored"))
        engine.submit_work(reading)
        assert reading.finished.wait(60) and done.wait(60)
    finally:
        engine.stop()
    assert reading.error is None
    direct = Reading(stack, vocab, text, top=2).run()
    np.testing.assert_array_equal(reading.logprob, direct.logprob)
    # Generation went on while the long text was read: chunks arrived before the reading ended.
    assert events.index("scored") > events.index("chunk")


def test_engine_fails_work_on_stop(tiny) -> None:
    from model.engine.loop import Engine, EngineClosed

    _, stack, vocab = tiny
    engine = Engine(stack, vocab, name="tiny")
    reading = Reading(stack, vocab, TEXT)
    engine.submit_work(reading)  # never started: stop() fails what is queued
    engine.stop()
    assert isinstance(reading.error, EngineClosed) and reading.finished.is_set()
    with pytest.raises(EngineClosed):
        engine.submit_work(Reading(stack, vocab, TEXT))


@pytest.mark.slow
def test_bundled_model_logprobs_match_keras() -> None:
    from model.artifact import load_artifact

    path = ROOT / "model" / "pretrained" / "shakespeare"
    if not path.exists():
        pytest.skip("no bundled model")
    art = load_artifact(path)
    text = (
        "ROMEO:\nBut soft, what light through yonder window breaks?\n"
        "It is the east, and Juliet is the sun.\n"
    )
    reading = Reading(LSTMStack.from_keras(art.model), art.vocab, text).run()
    np.testing.assert_allclose(
        reading.logprob, keras_logprobs(art.model, art.vocab, text), atol=1e-4
    )
