"""/api/gates, /api/influence and /api/models/{name}/figures through the app (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="module")
def client(models_dir: Path):
    with TestClient(create_app(Settings(models_dir=models_dir, max_score_chars=200))) as c:
        yield c


def test_gates_give_every_value_of_an_lstm(client: TestClient) -> None:
    body = client.post("/api/gates", json={"text": "ROMEO: hi", "layer": 1, "units": [0, 3]}).json()
    assert body["cell"] == "lstm" and body["gates"] == ["i", "f", "g", "o"]
    assert list(body["values"]) == ["i", "f", "g", "o", "c", "h"]
    for name in ("i", "f", "o"):
        assert all(0 <= v <= 1 for row in body["values"][name] for v in row)
    assert all(len(row) == 2 for row in body["values"]["h"]) and len(body["values"]["h"]) == 9


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "ab", "layer": 5, "units": [0]}, "layer"),
        ({"text": "ab", "layer": 0, "units": [16]}, "units"),
        ({"text": "ab", "layer": 0, "units": list(range(17))}, "units"),
        ({"text": "ab", "layer": 0, "units": []}, "units"),
        ({"text": "ab", "layer": "1", "units": [0]}, "layer"),
        ({"text": "a" * 201, "layer": 0, "units": [0]}, "text"),
    ],
)
def test_bad_gates_requests_are_422_naming_the_field(
    client: TestClient, body: dict, field: str
) -> None:
    response = client.post("/api/gates", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == field


def test_influence_gives_one_value_per_char_before(client: TestClient) -> None:
    text = "ROMEO: what light through yonder window"
    body = client.post("/api/influence", json={"text": text, "position": 20}).json()
    assert body["char"] == text[20] and body["start"] == 0
    assert len(body["influence"]) == 20 and all(v >= 0 for v in body["influence"])
    assert 1 <= body["span"] <= 21 and body["logprob"] < 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "abc", "position": 3}, "position"),
        ({"text": "abc", "position": 0}, "position"),
        ({"text": "a~~b", "position": 3}, "text"),
    ],
)
def test_bad_influence_requests_are_422_naming_the_field(
    client: TestClient, body: dict, field: str
) -> None:
    response = client.post("/api/influence", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == field


def test_figures_are_404_until_computed(client: TestClient) -> None:
    response = client.get("/api/models/tiny/figures")
    assert (
        response.status_code == 404
        and "model.reading.figures" in response.json()["error"]["message"]
    )
