"""model/reading/influence.py: the gradient norms against finite differences, for every cell."""

from __future__ import annotations

import numpy as np
import pytest

from model.reading.influence import Influence, average_curve, memory_span


@pytest.fixture(scope="module", params=["lstm", "gru", "rnn"])
def influence(request):
    import keras

    from model.cells.network import NetworkConfig, build_model

    keras.utils.set_random_seed(0)
    model = build_model(
        NetworkConfig(
            vocab_size=20, embedding_dim=6, units=8, layers=2, dropout=0.0, cell=request.param
        )
    )
    return model, Influence(model)


def test_influence_matches_finite_differences(influence) -> None:
    model, inf = influence
    ids = np.random.default_rng(0).integers(0, 20, 30)
    t = 25
    curve, _ = inf.at(ids, t)
    table = np.asarray(model.get_layer("embedding").get_weights()[0], np.float64)

    def log_p(embedded: np.ndarray) -> float:
        x = embedded[None].astype(np.float32)
        for layer in inf.rest:
            x = layer(x, training=False)
        z = np.asarray(x[0, -1], np.float64)
        z -= z.max()
        return float(z[ids[t]] - np.log(np.exp(z).sum()))

    base = table[ids[:t]]
    for k in (1, 2, 5, 10, 20):
        grad = np.zeros(base.shape[1])
        for d in range(base.shape[1]):
            up, down = base.copy(), base.copy()
            up[t - k, d] += 1e-2
            down[t - k, d] -= 1e-2
            grad[d] = (log_p(up) - log_p(down)) / 2e-2
        assert abs(np.linalg.norm(grad) - curve[k - 1]) <= 1e-2 * np.linalg.norm(grad) + 1e-7, k


def test_rows_of_a_batch_are_their_own_gradients(influence) -> None:
    _, inf = influence
    ids = np.random.default_rng(1).integers(0, 20, (3, 12))
    targets = np.array([1, 2, 3])
    together, _ = inf.rows(ids, targets)
    for r in range(3):
        alone, _ = inf.rows(ids[r : r + 1], targets[r : r + 1])
        np.testing.assert_allclose(together[r], alone[0], rtol=1e-5, atol=1e-9)


def test_average_curve_and_span(influence) -> None:
    _, inf = influence
    ids = np.random.default_rng(2).integers(0, 20, 300)
    curve = average_curve(inf, ids, positions=40, context=32, batch=16)
    assert curve.shape == (32,) and (curve >= 0).all()
    assert memory_span(np.array([1.0, 0.5, 0.02, 0.009])) == 4
    assert memory_span(np.array([1.0, 0.5])) == 3  # never below 1%: past the context
