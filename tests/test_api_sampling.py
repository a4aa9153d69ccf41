"""The sampling controls through the HTTP API: penalties, min-p and logit_bias on /api (by char)
and /v1 (by char id, the index in /api/models' `chars`), their limits, and the prefix cache setting.

    .venv/bin/pytest tests/test_api_sampling.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c


def text_of(client: TestClient, **body: Any) -> str:
    response = client.post(
        "/api/generate", json={"prompt": "ROMEO:", "max_chars": 60, "seed": 3, **body}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["text"])


def test_models_list_the_vocabulary(client: TestClient) -> None:
    (model,) = client.get("/api/models").json()["models"]
    assert len(model["chars"]) == model["vocab_size"] and model["chars"][0] == "\n"


def test_neutral_controls_change_nothing(client: TestClient) -> None:
    neutral = {
        "repetition_penalty": 1.0,
        "presence_penalty": 0,
        "frequency_penalty": 0.0,
        "min_p": 0,
    }
    assert text_of(client, **neutral) == text_of(client)


def test_controls_change_the_text_and_stay_reproducible(client: TestClient) -> None:
    for body in (
        {"repetition_penalty": 3.0, "repetition_window": 8},
        {"frequency_penalty": 2},
        {"min_p": 0.5},
    ):
        assert text_of(client, **body) == text_of(client, **body)
    plain = text_of(client, temperature=0)
    penalised = text_of(client, temperature=0, repetition_penalty=10.0, repetition_window=4)
    assert penalised != plain
    assert all(penalised[i] not in penalised[max(0, i - 4) : i] for i in range(len(penalised)))


def test_logit_bias_by_char_on_api_and_by_id_on_v1(client: TestClient) -> None:
    assert text_of(client, logit_bias={"e": 100}) == "e" * 60
    assert "\n" not in text_of(client, logit_bias={"\n": -100}, max_chars=300)
    chars = client.get("/api/models").json()["models"][0]["chars"]
    body = {
        "prompt": "ROMEO:",
        "max_tokens": 30,
        "seed": 1,
        "logit_bias": {str(chars.index("z")): 100},
    }
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["text"] == "z" * 30
    more = {
        "presence_penalty": 1.5,
        "frequency_penalty": -0.5,
        "repetition_penalty": 1.3,
        "min_p": 0.1,
    }
    assert (
        client.post("/v1/completions", json={**body, "logit_bias": None, **more}).status_code == 200
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"repetition_penalty": 11}, "repetition_penalty"),
        ({"repetition_window": 0}, "repetition_window"),
        ({"presence_penalty": 2.5}, "presence_penalty"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"min_p": 1.5}, "min_p"),
        ({"logit_bias": {"ab": 1}}, "logit_bias"),
        ({"logit_bias": {"e": 101}}, "logit_bias"),
        ({"logit_bias": {"€": 1}}, "logit_bias"),  # not in the model's vocabulary
    ],
)
def test_bad_controls_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], param: str
) -> None:
    response = client.post("/api/generate", json={"prompt": "A", "max_chars": 5, **body})
    assert response.status_code == 422
    assert param in (response.json()["error"]["param"] or "")


@pytest.mark.parametrize("bias", [{"9999": 1}, {"e": 1}, {"-1": 1}, {"3": 200}])
def test_bad_v1_logit_bias_is_400(client: TestClient, bias: dict[str, float]) -> None:
    response = client.post(
        "/v1/completions", json={"prompt": "A", "max_tokens": 5, "logit_bias": bias}
    )
    assert response.status_code == 400  # a validation error on /v1 (OpenAI's convention)
    assert "logit_bias" in (response.json()["error"]["param"] or "")


def test_the_prefix_cache_setting_reaches_the_engine(models_dir: Path) -> None:
    with TestClient(create_app(Settings(models_dir=models_dir, prefix_cache_mb=0))) as c:
        assert c.post("/api/generate", json={"prompt": "AB", "max_chars": 5}).status_code == 200
        (model,) = c.app.state.server.registry.models.values()  # type: ignore[attr-defined]
        assert not model.engine.prefix_cache.enabled


def test_openapi_describes_the_logit_bias_keys_the_model_accepts(client: TestClient) -> None:
    chars = client.get("/api/models").json()["models"][0]["chars"]
    components = client.get("/openapi.json").json()["components"]["schemas"]
    api = components["GenerateParams"]["properties"]["logit_bias"]["anyOf"][0]["propertyNames"]
    assert all(re.fullmatch(api["pattern"], ch) for ch in chars) and not re.fullmatch(
        api["pattern"], "€"
    )
    v1 = components["CompletionParams"]["properties"]["logit_bias"]["anyOf"][0]["propertyNames"]
    ids = [str(i) for i in range(len(chars))] + ["007"]
    assert all(re.fullmatch(v1["pattern"], key) for key in ids)
    assert not any(re.fullmatch(v1["pattern"], key) for key in (str(len(chars)), "-1", "1a", ""))
