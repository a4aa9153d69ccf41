"""model/reading/figures.py's model-wide figures against first principles: the gates' saturation
recomputed from the layers' weights along a text stepped char by char, and the loss by position
from the step's own logits.  Tiny random stacks; the figures read the chunked (priming) path."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from model.cells import gemm
from model.cells.stack import Stack
from model.reading import figures
from model.runtime.machine import target_name
from model.sampling import log_softmax
from model.vocab import Vocab
from tests.conftest import build_tiny_model_dir
from tests.test_kernel import random_stack

VOCAB = Vocab.from_chars("\nabcdefghijklmnopqrstuv")  # 23 chars, id 0 the newline


def text_ids(n: int, seed: int = 3) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(1, 23, n)
    ids[ids % 7 == 0] = 0  # newlines now and then
    return ids


def hidden_along(stack: Stack, ids: np.ndarray) -> np.ndarray:
    """Each layer's h after each char, by stepping: (layers, time, units)."""
    state, out = stack.zero_state(1), []
    for char in ids:
        stack.step(np.array([char]), state)
        out.append(state.h[:, 0].copy())
    return np.stack(out, axis=1)


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def test_lstm_saturation_is_the_share_of_chars_each_gate_spends_near_0_and_near_1() -> None:
    stack = random_stack("lstm", 19)
    ids = text_ids(700)
    got = figures.saturation(stack, ids)
    hs = hidden_along(stack, ids).astype(np.float64)
    u = stack.units
    for n, layer in enumerate(stack.layers):
        below = stack.embedding[ids] if n == 0 else hs[n - 1]
        before = np.concatenate([np.zeros((1, u)), hs[n][:-1]])  # h entering each char
        z = below @ layer.kernel + before @ layer.recurrent + layer.bias
        values = {
            "i": sigmoid(z[:, :u]),
            "f": sigmoid(z[:, u : 2 * u]),
            "g": np.tanh(z[:, 2 * u : 3 * u]),
            "o": sigmoid(z[:, 3 * u :]),
        }
        for gate, v in values.items():
            shown = got["layers"][n]["gates"][gate]
            slack = 2 / len(ids)  # a value within float32 of a threshold may land either side
            assert shown["left"] == pytest.approx((v < figures.LOW).mean(0), abs=slack)
            assert shown["right"] == pytest.approx((v > figures.HIGH).mean(0), abs=slack)
        keep = got["layers"][n]["integrators"]
        right_f = np.asarray(got["layers"][n]["gates"]["f"]["right"])
        assert keep == np.flatnonzero(right_f >= figures.INTEGRATOR).tolist()


def test_a_plain_rnn_has_no_gates_to_saturate() -> None:
    got = figures.saturation(random_stack("rnn", 8), text_ids(50))
    assert got["gates"] == [] and "no gates" in got["note"]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_loss_by_position_is_the_steps_own_loss_bucketed_by_chars_since_a_newline(
    cell: str,
) -> None:
    stack, streams = random_stack(cell, 21), 3
    ids = text_ids(3 * 300 + 1)
    got = figures.loss_by_position(stack, VOCAB, ids, streams)
    length = (len(ids) - 1) // streams
    total: dict[int, float] = {}
    count: dict[int, int] = {}
    state = stack.zero_state(streams)
    distance = np.zeros(streams, np.int64)
    for t in range(length):
        fed = ids[np.arange(streams) * length + t]
        logits = stack.step(fed, state)
        distance = np.where(fed == 0, 0, distance + 1)
        nxt = ids[np.arange(streams) * length + t + 1]
        for r in range(streams):
            bits = -log_softmax(logits[r])[nxt[r]] / math.log(2)
            key = int(min(distance[r], figures.MAX_DISTANCE))
            total[key] = total.get(key, 0.0) + bits
            count[key] = count.get(key, 0) + 1
    assert got["distance"] == sorted(total)
    assert got["chars"] == [count[d] for d in got["distance"]]
    expected = [total[d] / count[d] for d in got["distance"]]
    assert got["bits_per_char"] == pytest.approx(expected, abs=1e-3)


def test_speed_only_measures_the_engine_again_and_keeps_the_other_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = build_tiny_model_dir(tmp_path / "tiny")
    assert figures.main(["--model", str(model_dir), "--speed-only"]) == 2  # no figures.json yet
    kept = {"saturation": {"gates": []}, "speed": {"chars_per_s_1": 1}}
    (model_dir / figures.FIGURES_FILE).write_text(json.dumps(kept))
    monkeypatch.setattr(figures, "engine_speed", lambda stack, vocab: {"chars_per_s_1": 5})
    assert figures.main(["--model", str(model_dir), "--speed-only"]) == 0
    written = json.loads((model_dir / figures.FIGURES_FILE).read_text())
    assert written == {**kept, "speed": {"chars_per_s_1": 5}}
    with pytest.raises(SystemExit):
        figures.main(["--model", str(model_dir)])  # the full figures need the corpus


def test_the_engine_speed_counts_every_char_released() -> None:
    stack = random_stack("lstm", 16)
    speed = figures.engine_speed(stack, VOCAB, seconds=0.05)
    assert speed["chars_per_s_1"] > 0 and speed["chars_per_s_32"] > 0
    assert speed["threads"] == stack.threads and speed["cpu"]
    assert speed["kernels"] == f"{target_name()}, {gemm.ISA}"  # e.g. "haswell, avx2" when forced
