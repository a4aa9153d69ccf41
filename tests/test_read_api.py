"""The "read the model" routes in-process: /api/score, /api/inspect, /api/models/{name}/cells and
/api/copied, their numbers against Keras, their limits and errors.
Run: .venv/bin/pytest tests/test_read_api.py"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from model.reading.memory import write_index
from tests.conftest import build_tiny_model_dir
from tests.test_score import keras_logprobs

CORPUS = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n"
) * 2
CELLS = {
    "model": "tiny",
    "features": {"in_quotes": {"description": "x", "cells": [{"layer": 1, "unit": 3}]}},
}


def readable_tiny(tiny_model_dir: Path, root: Path, cells: dict[str, Any], corpus: str) -> None:
    """root/tiny: the tiny model with a held-out figure (2.2 bits/char), `cells` and an index of
    `corpus`."""
    shutil.copytree(tiny_model_dir, root / "tiny")
    card = json.loads((root / "tiny" / "card.json").read_text("utf-8"))
    (root / "tiny" / "card.json").write_text(
        json.dumps({**card, "held_out_bits_per_char": 2.2}), "utf-8"
    )
    (root / "tiny" / "cells.json").write_text(json.dumps(cells), "utf-8")
    write_index(root / "tiny", corpus)


@pytest.fixture(scope="module")
def models(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'tiny' with a held-out figure, cells.json and a memorisation index; 'plain' with none of
    them."""
    root = tmp_path_factory.mktemp("read-models")
    readable_tiny(tiny_model_dir, root, CELLS, CORPUS)
    build_tiny_model_dir(root / "plain", name="plain")
    return root


@pytest.fixture(scope="module")
def client(models: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=models, default_model="tiny", max_score_chars=300, max_active=2)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture(scope="module")
def keras_tiny(models: Path):
    from model.artifact import load_artifact

    return load_artifact(models / "tiny")


def error_of(response) -> dict:
    return response.json()["error"]


def test_score_matches_keras(client: TestClient, keras_tiny) -> None:
    text = "ROMEO:\nWhat light?\n"
    body = client.post("/api/score", json={"text": text, "top": 3}).json()
    assert body["model"] == "tiny" and [c["char"] for c in body["chars"]] == list(text)
    got = [c["logprob"] for c in body["chars"]]
    np.testing.assert_allclose(
        got, keras_logprobs(keras_tiny.model, keras_tiny.vocab, text), atol=1e-4
    )
    assert all(len(c["top"]) == 3 for c in body["chars"])
    summary = body["summary"]
    assert summary["held_out_bits_per_char"] == 2.2 and summary["scored_chars"] == len(text)
    assert summary["perplexity"] == pytest.approx(np.exp(-np.mean(got)), rel=1e-3)
    assert "top" not in client.post("/api/score", json={"text": "AB"}).json()["chars"][0]


def test_score_reports_unknown_chars_as_unscored(client: TestClient) -> None:
    body = client.post("/api/score", json={"text": "A€B", "model": "plain"}).json()
    assert [c["logprob"] is None for c in body["chars"]] == [False, True, False]
    assert (
        body["summary"]["unscored_chars"] == 1 and body["summary"]["held_out_bits_per_char"] is None
    )


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"text": "A" * 301}, 422, "text"),
        ({"text": "A", "top": 6}, 422, "top"),
        ({"text": "A", "top": "3"}, 422, "top"),
        ({"text": "A", "extra": 1}, 422, "extra"),
        ({}, 422, "text"),
        ({"text": "A", "model": "nope"}, 404, "model"),
    ],
)
def test_score_errors(client: TestClient, body: dict, status: int, param: str) -> None:
    response = client.post("/api/score", json=body)
    assert response.status_code == status and error_of(response)["param"] == param


def test_score_is_refused_when_full(client: TestClient) -> None:
    admission = client.app.state.server.admission  # type: ignore[attr-defined]
    admission.active += 2
    try:
        response = client.post("/api/score", json={"text": "AB"})
    finally:
        admission.active -= 2
    assert response.status_code == 429 and error_of(response)["type"] == "overloaded"


def test_inspect_matches_a_keras_sub_model(client: TestClient, keras_tiny) -> None:
    import keras

    text = 'He said "so".\n'
    body = client.post("/api/inspect", json={"text": text, "layer": 1, "units": [0, 5, 15]}).json()
    assert (
        body["what"] == "h"
        and body["chars"] == list(text)
        and len(body["activations"]) == len(text)
    )
    sub = keras.Model(keras_tiny.model.input, keras_tiny.model.get_layer("lstm_1").output)
    h = np.asarray(sub(keras_tiny.vocab.encode(text)[None], training=False))[0]
    np.testing.assert_allclose(body["activations"], h[:, [0, 5, 15]], atol=1e-4)
    c = client.post(
        "/api/inspect", json={"text": text, "layer": 0, "units": [2], "what": "c"}
    ).json()
    assert len(c["activations"][0]) == 1


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"text": "A", "layer": 2, "units": [0]}, "layer"),
        ({"text": "A", "layer": 0, "units": [16]}, "units"),
        ({"text": "A", "layer": 0, "units": list(range(17))}, "units"),
        ({"text": "A", "layer": 0, "units": []}, "units"),
        ({"text": "A", "layer": 0, "units": [0], "what": "x"}, "what"),
        ({"text": "A" * 301, "layer": 0, "units": [0]}, "text"),
    ],
)
def test_inspect_errors(client: TestClient, body: dict, param: str) -> None:
    response = client.post("/api/inspect", json=body)
    assert response.status_code == 422 and error_of(response)["param"] == param


def test_openapi_publishes_the_default_models_layers_and_units(client: TestClient) -> None:
    inspect = client.get("/openapi.json").json()["components"]["schemas"]["InspectParams"][
        "properties"
    ]
    tiny = (1, 15)  # 2 layers × 16 units
    assert (inspect["layer"]["maximum"], inspect["units"]["items"]["maximum"]) == tiny


def test_cells(client: TestClient) -> None:
    assert client.get("/api/models/tiny/cells").json() == CELLS
    response = client.get("/api/models/plain/cells")
    assert response.status_code == 404 and error_of(response)["code"] == "no_cells"
    assert "python -m model.reading.finder" in error_of(response)["message"]
    assert client.get("/api/models/nope/cells").status_code == 404


def test_copied(client: TestClient) -> None:
    text = "Lo, a new line. It is the east, and Juliet is the sun.\nAnd more"
    body = client.post("/api/copied", json={"text": text}).json()
    assert body["indexed"] is True and body["min_chars"] == 24
    [span] = body["spans"]
    assert text[span["start"] : span["end"]] == "It is the east, and Juliet is the sun.\n"
    assert span["source"]["line"] == 3 and span["source"]["line_text"].startswith("It is the east")
    assert body["copied_chars"] == span["end"] - span["start"]
    assert client.post("/api/copied", json={"text": text, "min_chars": 100}).json()["spans"] == []


def test_copied_without_an_index_says_so(client: TestClient) -> None:
    body = client.post("/api/copied", json={"text": "anything at all", "model": "plain"}).json()
    assert (
        body["indexed"] is False
        and body["spans"] == []
        and "python -m model.reading.memory" in body["message"]
    )
    response = client.post("/api/copied", json={"text": "x", "min_chars": 3})
    assert response.status_code == 422 and error_of(response)["param"] == "min_chars"
