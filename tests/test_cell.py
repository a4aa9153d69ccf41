"""The LSTM step (compiled kernels) against the Keras model it was read from; rows alone or in a
batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.cells.stack import PRIME_CHUNK, LSTMStack, State


@pytest.fixture(scope="module")
def keras_and_stack(tiny_model_dir: Path):
    from model.artifact import load_artifact

    art = load_artifact(tiny_model_dir)
    return art.model, LSTMStack.from_keras(art.model), art.vocab


@pytest.fixture(scope="module")
def odd_keras_and_stack():
    """Three layers, 13 units, an embedding of 5: shapes that are no multiple of a SIMD width."""
    import keras

    from model.cells.network import NetworkConfig, build_model

    keras.utils.set_random_seed(3)
    model = build_model(
        NetworkConfig(vocab_size=23, embedding_dim=5, units=13, layers=3, dropout=0.0)
    )
    for layer in model.layers:  # random biases too, so the bias path is exercised
        if layer.weights:
            layer.set_weights(
                [w + np.random.default_rng(1).normal(0, 0.3, w.shape) for w in layer.get_weights()]
            )
    return model, LSTMStack.from_keras(model)


def keras_logits(model, ids: np.ndarray) -> np.ndarray:
    return np.asarray(model(ids, training=False))


@pytest.mark.parametrize("threads", [1, 2])
def test_stepping_matches_keras_on_the_whole_sequence(keras_and_stack, threads: int) -> None:
    model, _, vocab = keras_and_stack
    stack = LSTMStack.from_keras(model, threads=threads)
    ids = np.random.default_rng(0).integers(0, len(vocab), size=(3, 50)).astype(np.int32)
    np.testing.assert_allclose(stack.logits_of(ids), keras_logits(model, ids), atol=1e-4, rtol=0)


def test_odd_shapes_and_three_layers_match_keras(odd_keras_and_stack) -> None:
    model, stack = odd_keras_and_stack
    ids = np.random.default_rng(1).integers(0, 23, size=(4, 40)).astype(np.int32)
    np.testing.assert_allclose(stack.logits_of(ids), keras_logits(model, ids), atol=1e-4, rtol=0)


def test_prime_equals_stepping_char_by_char(odd_keras_and_stack) -> None:
    _, stack = odd_keras_and_stack
    ids = np.random.default_rng(2).integers(0, 23, size=3 * PRIME_CHUNK + 5).astype(np.int32)
    logits, state = stack.prime(ids)
    stepped = stack.zero_state(1)
    for i in ids:
        last = stack.step(np.array([i]), stepped)[0]
    # bit for bit: the prefix cache hands out either state
    np.testing.assert_array_equal(logits, last)
    np.testing.assert_array_equal(state.h, stepped.h)
    np.testing.assert_array_equal(state.c, stepped.c)


def test_prime_continues_from_a_given_state(odd_keras_and_stack) -> None:
    _, stack = odd_keras_and_stack
    ids = np.random.default_rng(3).integers(0, 23, size=40).astype(np.int32)
    whole, _ = stack.prime(ids)
    _, state = stack.prime(ids[:PRIME_CHUNK])
    resumed, _ = stack.prime(ids[PRIME_CHUNK:], state)
    np.testing.assert_array_equal(whole, resumed)  # same slices: bit-identical


def test_empty_prompt_logits_are_the_start_state(odd_keras_and_stack) -> None:
    model, stack = odd_keras_and_stack
    logits, state = stack.prime(np.zeros(0, np.int32))
    assert np.count_nonzero(state.h) == 0
    stepped = stack.step(np.array([4]), stack.zero_state(1))[0]
    np.testing.assert_allclose(stepped, keras_logits(model, np.array([[4]]))[0, 0], atol=1e-5)
    np.testing.assert_array_equal(logits, model.get_layer("logits").get_weights()[1])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_row_steps_the_same_alone_or_in_any_batch(threads: int) -> None:
    """Batch size, position and threads never change a bit of a row's logits or state (256
    units)."""
    stack = random_stack(units=256, vocab=40, threads=threads)
    prompts = np.random.default_rng(4).integers(0, 40, size=(32, 12))
    alone = [stack.logits_of(p[None])[0] for p in prompts]
    for rows in [prompts[:2], prompts[:3], prompts[:5], prompts[::-1], prompts]:
        together = stack.logits_of(rows)
        for r, row in enumerate(rows):
            np.testing.assert_array_equal(
                together[r], alone[[tuple(p) for p in prompts].index(tuple(row))]
            )


def test_threads_do_not_change_bits() -> None:
    one, two = (random_stack(units=256, vocab=40, threads=n) for n in (1, 2))
    prompts = np.random.default_rng(5).integers(0, 40, size=(9, 10))
    for rows in [prompts[:1], prompts[:3], prompts]:
        np.testing.assert_array_equal(one.logits_of(rows), two.logits_of(rows))


def test_prime_is_the_same_alone_or_after_other_work() -> None:
    """Priming reuses the step's kernels: its bits do not depend on what ran before or on
    threads."""
    one, two = (random_stack(units=300, vocab=40, threads=n) for n in (1, 2))
    ids = np.random.default_rng(6).integers(0, 40, size=2 * PRIME_CHUNK + 3)
    first, state = one.prime(ids)
    one.logits_of(np.random.default_rng(7).integers(0, 40, size=(7, 3)))
    again, state2 = two.prime(ids)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(state.h, state2.h)
    np.testing.assert_array_equal(state.c, state2.c)


def test_state_rows_and_stack_round_trip() -> None:
    stack = random_stack(units=8, vocab=10)
    state = stack.zero_state(3)
    stack.step(np.array([1, 2, 3]), state)
    parts = [state.rows([r]) for r in range(3)]
    again = State.stack(parts)
    np.testing.assert_array_equal(again.h, state.h)
    np.testing.assert_array_equal(state.rows([2, 0]).c, state.c[:, [2, 0]])


def random_stack(
    units: int, vocab: int, layers: int = 2, embedding: int = 16, seed: int = 0, threads: int = 2
) -> LSTMStack:
    """A network with random weights (no Keras): fast, for engine-level checks.

    Two threads by default, so the kernels' work sharing is exercised on any machine.
    """
    from model.cells.stack import LayerWeights

    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.4, shape).astype(np.float32)

    sizes = [embedding] + [units] * (layers - 1)
    lstm = [
        LayerWeights(normal(n, 4 * units), normal(units, 4 * units), normal(4 * units))
        for n in sizes
    ]
    return LSTMStack(
        normal(vocab, embedding), lstm, normal(units, vocab) * 3, normal(vocab), threads
    )


@pytest.fixture(scope="module", params=["gru", "rnn"])
def other_cell(request):
    """A GRU (Keras's reset_after) and a plain RNN, three layers of odd sizes, random biases."""
    import keras

    from model.cells.network import NetworkConfig, build_model

    keras.utils.set_random_seed(4)
    config = NetworkConfig(
        vocab_size=23, embedding_dim=5, units=13, layers=3, dropout=0.0, cell=request.param
    )
    model = build_model(config)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(
                [w + np.random.default_rng(2).normal(0, 0.3, w.shape) for w in layer.get_weights()]
            )
    return model, LSTMStack.from_keras(model)


def test_gru_and_rnn_match_keras(other_cell) -> None:
    model, stack = other_cell
    ids = np.random.default_rng(5).integers(0, 23, size=(4, 40)).astype(np.int32)
    np.testing.assert_allclose(stack.logits_of(ids), keras_logits(model, ids), atol=1e-4, rtol=0)


def test_gru_and_rnn_rows_are_bit_identical_alone_or_batched_and_primed(other_cell) -> None:
    _, stack = other_cell
    ids = np.random.default_rng(6).integers(0, 23, size=(5, 37)).astype(np.int32)
    together = stack.logits_of(ids)
    for r in range(5):
        np.testing.assert_array_equal(stack.logits_of(ids[r : r + 1])[0], together[r])
        logits, _ = stack.prime(ids[r])
        np.testing.assert_array_equal(logits, together[r, -1])
