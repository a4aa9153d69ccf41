"""Every row of the contract's error table, and bad input that must never become a 500.

In-process (TestClient, lifespan included); 429 is exercised over real HTTP in
tests/test_server_faults.py.  Run: .venv/bin/pytest tests/test_api_errors.py
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from model.event import Chunk
from tests.test_api import parse_sse

JSON = {"content-type": "application/json"}
GENERATE_ROUTES = ["/api/generate", "/api/generate/stream", "/v1/completions"]


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    settings = Settings(
        models_dir=models_dir, max_prompt_chars=100, max_chars=300, max_body_bytes=4096
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def error_of(response: Any, status: int, type_: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == type_ and body["error"]["message"]
    return dict(body["error"])


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ('{"max_chars": 2.5}', "max_chars"),
        ('{"max_chars": "10"}', "max_chars"),
        ('{"max_chars": true}', "max_chars"),
        ('{"max_chars": 0}', "max_chars"),
        ('{"max_chars": 301}', "max_chars"),  # over MAX_CHARS (300 here)
        ('{"temperature": NaN}', "temperature"),
        ('{"temperature": Infinity}', "temperature"),
        ('{"temperature": -Infinity}', "temperature"),
        ('{"temperature": 1e999}', "temperature"),
        ('{"temperature": 5.01}', "temperature"),
        ('{"top_p": 0}', "top_p"),
        ('{"top_p": NaN}', "top_p"),
        ('{"top_k": 0}', "top_k"),
        ('{"seed": -1}', "seed"),
        ('{"seed": 9223372036854775808}', "seed"),
        ('{"stop": ["a", "b", "c", "d", "e"]}', "stop"),
        ('{"stop": [""]}', "stop"),
        ('{"stop": "abc"}', "stop"),
        ('{"logprobs": 6}', "logprobs"),
        ('{"prompt": "\\ud800"}', "prompt"),
        ('{"prompt": "ok\\udfffok"}', "prompt"),
        ('{"stop": ["\\ud83d"]}', "stop"),
        ('{"prompt": null}', "prompt"),
        ('{"unknown_field": 1}', "unknown_field"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(client: TestClient, raw: str, param: str) -> None:
    for route in ("/api/generate", "/api/generate/stream"):
        err = error_of(client.post(route, content=raw, headers=JSON), 422, "invalid_request_error")
        assert err["param"] == param


def invalid_status(route: str) -> int:
    """What a validation error is on this route: 400 on /v1 (OpenAI's convention), 422 on /api."""
    return 400 if route.startswith("/v1/") else 422


@pytest.mark.parametrize(
    "raw", ["{bad", "", "[1, 2]", '"text"', "[" * 2000 + "]" * 2000, '{"prompt": "a"} x']
)
def test_malformed_or_non_object_json_is_422_or_400_on_v1(client: TestClient, raw: str) -> None:
    for route in GENERATE_ROUTES:
        error_of(
            client.post(route, content=raw, headers=JSON),
            invalid_status(route),
            "invalid_request_error",
        )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"temperature": 5.01}, "temperature"),
        ({"max_tokens": 301}, "max_tokens"),  # over MAX_CHARS (300 here)
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"prompt": "hello ж"}, "prompt"),
        (
            {"unknown_field": 1, "n": 0},
            "n",
        ),  # unknown fields are ignored on /v1, bad known ones are not
        ({"best_of": 2}, "best_of"),  # OpenAI parameters the server does not implement...
        ({"suffix": "THE END"}, "suffix"),
        ({"best_of": True}, "best_of"),
        ({"min_tokens": 10}, "min_tokens"),
    ],
)
def test_v1_validation_errors_are_400_naming_the_field(
    client: TestClient, body: dict[str, Any], param: str
) -> None:
    err = error_of(
        client.post("/v1/completions", json={"prompt": "a", **body}), 400, "invalid_request_error"
    )
    assert err["param"] == param


def test_v1_unsupported_parameters_at_their_neutral_value_are_accepted(client: TestClient) -> None:
    # ...unless they hold the value that means "off": then the request is served as asked.
    body = {
        "prompt": "a",
        "max_tokens": 5,
        "best_of": 1,
        "suffix": None,
        "min_tokens": 0,
        "ignore_eos": False,
    }
    response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["choices"][0]["text"]) == 5
    err = error_of(
        client.post("/v1/completions", json={**body, "suffix": "x"}), 400, "invalid_request_error"
    )
    assert err["code"] == "unsupported_parameter" and "suffix" in err["message"]


def test_v1_temperature_defaults_to_1_as_in_openai(client: TestClient) -> None:
    def text(**params: Any) -> str:
        # The bias makes one char likely, so the temperature shows (the tiny model's own logits are
        # near 0).
        body = {"prompt": "KING", "max_tokens": 200, "seed": 3, "logit_bias": {"0": 3}, **params}
        return str(client.post("/v1/completions", json=body).json()["choices"][0]["text"])

    assert text() == text(temperature=1.0) == text(temperature=None) != text(temperature=0.8)


def test_integral_floats_count_as_ints(client: TestClient) -> None:
    # JSON Schema's "integer" includes 20.0; only non-integral numbers are refused.
    body = client.post(
        "/api/generate", content='{"max_chars": 20.0, "seed": 3.0}', headers=JSON
    ).json()
    assert len(body["text"]) == 20 and body["seed"] == 3


@pytest.mark.parametrize(
    ("route", "body", "param", "words"),
    [
        ("/api/generate", {"stop": ["a" * 65]}, "stop", "Use at most 64 chars per stop string."),
        ("/v1/completions", {"stop": "a" * 65}, "stop", "Use at most 64 chars per stop string."),
        ("/v1/completions", {"prompt": ["a"] * 17}, "prompt", "Send at most 16 prompts."),
        ("/v1/completions", {"stop": ["a"] * 5}, "stop", "Send at most 4 stop strings."),
        ("/api/generate", {"stop": ["a"] * 5}, "stop", "Send at most 4 stop strings."),
        ("/v1/completions", {"prompt": 5}, "prompt", "Use a string or a list of prompts."),
        ("/api/generate", {"top_k": 0}, "top_k", "Use a whole number of at least 1."),
        ("/api/generate", {"temperature": 9}, "temperature", "Use a number of at most 5."),
        (
            "/api/inspect",
            {"text": "a", "layer": 0, "units": []},
            "units",
            "Send at least 1 cell number.",
        ),
    ],
)
def test_validation_messages_say_what_to_do(
    client: TestClient, route: str, body: dict[str, Any], param: str, words: str
) -> None:
    # Not pydantic's "Value should have at most 64 items after validation" or, for a list that is
    # too long, "Input should be a valid string" (the union's other branch).
    err = error_of(client.post(route, json=body), invalid_status(route), "invalid_request_error")
    assert err["param"] == param and err["message"] == words


def test_validation_messages_neither_repeat_the_field_nor_name_server_variables(
    client: TestClient,
) -> None:
    # The page shows the message under the field `param` names: "max_chars: ..." would say it twice.
    bodies = [
        {"max_chars": 0},
        {"max_chars": 2.5},
        {"temperature": None},
        {"top_p": 2},
        {"seed": -1},
        {"stop": [""]},
        {"logprobs": 9},
        {"min_p": 2},
        {"repetition_window": 0},
        {"logit_bias": {"ab": 1}},
        {"logit_bias": {"€": 1}},
        {"unknown_field": 1},
        {"prompt": "\ud800"},
    ]
    for body in bodies:
        for route in ("/api/generate", "/v1/completions"):
            response = client.post(route, content=json.dumps(body), headers=JSON)
            # /v1 ignores unknown fields and has no repetition_window
            if response.status_code == 200:
                continue
            err = error_of(response, invalid_status(route), "invalid_request_error")
            param, message = err["param"], err["message"]
            assert param and not message.startswith(param), (route, body, message)
            assert not re.search(r"\b[A-Z]+_[A-Z_]+\b|should|after validation", message), (
                route,
                body,
                message,
            )


def test_refusals_are_counted_by_reason(client: TestClient) -> None:
    client.post("/api/generate", json={"max_chars": "x"})
    client.post("/api/generate", content=b"x" * 5000, headers=JSON)
    client.get("/nowhere")
    text = client.get("/metrics").text
    for reason in ("invalid", "body_too_large", "not_found"):
        assert f'charlstm_rejected_requests_total{{reason="{reason}"}}' in text
    before = text.count('reason="bad_encoding"')
    # a 400 on /v1, still counted as invalid
    client.post("/v1/completions", json={"max_tokens": "x"})
    assert client.get("/metrics").text.count('reason="bad_encoding"') == before


def test_wrong_or_missing_content_type_is_422_or_400_on_v1(client: TestClient) -> None:
    for headers in (
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {},
    ):
        for route in GENERATE_ROUTES:
            response = client.post(route, content=b'{"prompt": "a"}', headers=headers)
            error_of(response, invalid_status(route), "invalid_request_error")


@pytest.mark.parametrize(
    "raw", [b'{"prompt": "\xff"}', b'{"prompt": "\xc3("}', b'{"prompt": "\xed\xa0\x80"}']
)
def test_invalid_utf8_is_400(client: TestClient, raw: bytes) -> None:
    for route in GENERATE_ROUTES:
        error_of(client.post(route, content=raw, headers=JSON), 400, "invalid_request_error")


def test_body_over_the_limit_is_413_with_or_without_content_length(client: TestClient) -> None:
    big = b'{"prompt": "' + b"a" * 5000 + b'"}'
    err = error_of(
        client.post("/api/generate", content=big, headers=JSON), 413, "invalid_request_error"
    )
    assert "4096" in err["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked, counted while read
        yield big[:3000]
        yield big[3000:]

    error_of(
        client.post("/api/generate", content=chunks(), headers=JSON), 413, "invalid_request_error"
    )


def test_prompt_limits_and_unknown_chars(client: TestClient) -> None:
    err = error_of(
        client.post("/api/generate", json={"prompt": "a" * 101}), 422, "invalid_request_error"
    )
    assert err["param"] == "prompt" and "100" in err["message"]
    err = error_of(
        client.post("/api/generate", json={"prompt": "hello ж world ✓ ж"}),
        422,
        "invalid_request_error",
    )
    assert err["param"] == "prompt" and err["code"] == "unknown_chars"
    assert "'ж' (U+0436)" in err["message"] and "'✓' (U+2713)" in err["message"]
    assert "hello" not in err["message"]  # names the chars, never echoes the prompt


def test_errors_never_echo_raw_input(client: TestClient) -> None:
    for body in (
        {"max_chars": "SECRET-VALUE"},
        {"prompt": ["SECRET-VALUE"]},
        {"temperature": "SECRET-VALUE"},
        {"model": "SECRET-VALUE"},
        {"stop": ["SECRET-VALUE" * 10]},
    ):
        response = client.post("/api/generate", json=body)
        assert response.status_code in (404, 422) and "SECRET" not in response.text


def test_unknown_model_and_route_are_404(client: TestClient) -> None:
    err = error_of(client.post("/api/generate", json={"model": "nope"}), 404, "not_found")
    assert err["param"] == "model" and "tiny" in err["message"]
    error_of(
        client.post("/v1/completions", json={"model": "nope", "prompt": "a"}), 404, "not_found"
    )
    error_of(client.get("/no/such/route"), 404, "not_found")
    error_of(client.get("/static/no-such-file.js"), 404, "not_found")


def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    for method, route in (
        ("GET", "/api/generate"),
        ("DELETE", "/v1/completions"),
        ("POST", "/healthz"),
    ):
        response = client.request(method, route)
        error_of(response, 405, "invalid_request_error")
        assert response.headers["allow"]


def test_before_the_models_load_everything_generating_is_503(models_dir: Path) -> None:
    app = create_app(Settings(models_dir=models_dir))
    plain = TestClient(app)  # not entered: the lifespan has not run, nothing is loaded
    error_of(plain.get("/readyz"), 503, "unavailable")
    for route in GENERATE_ROUTES:
        error_of(plain.post(route, json={"prompt": "a"}), 503, "unavailable")
    error_of(plain.get("/api/models"), 503, "unavailable")
    assert plain.get("/healthz").status_code == 200


class FailingTicket:
    seed = 7

    def cancel(self) -> None:
        pass


class FailingEngine:
    """Emits a little text, then fails inside generation, as a broken engine would."""

    active = queued = 0

    def predicted_wait(self, prompt_chars: list[int]) -> float:
        return 0.0

    def submit(self, request: Any, sink: Any) -> FailingTicket:
        sink.on_chunk(Chunk("ab"))
        sink.on_error(RuntimeError("engine exploded: internal detail"))
        return FailingTicket()


def test_a_failure_inside_generation_is_500_or_an_error_event(client: TestClient) -> None:
    model = client.app.state.server.registry.get("tiny")  # type: ignore[attr-defined]
    engine, model.engine = model.engine, FailingEngine()
    try:
        err = error_of(client.post("/api/generate", json={}), 500, "server_error")
        assert "internal detail" not in err["message"]
        error_of(client.post("/v1/completions", json={"prompt": "a"}), 500, "server_error")
        with client.stream("POST", "/api/generate/stream", json={}) as r:
            assert r.status_code == 200
            events = parse_sse(list(r.iter_lines()))
        assert events[:2] == [("start", {"seed": 7, "model": "tiny"}), ("message", {"text": "ab"})]
        assert events[-1][0] == "error" and events[-1][1]["error"]["type"] == "server_error"
    finally:
        model.engine = engine
    assert client.post("/api/generate", json={"max_chars": 5}).status_code == 200


def test_one_char_id_written_twice_in_logit_bias_is_a_422_naming_it(client: TestClient) -> None:
    """ "67" and "067" are the same char id: refused (it was a 500), not one of them dropped."""
    response = client.post(
        "/v1/completions", json={"prompt": "a", "logit_bias": {"6": -100, "06": 100}}
    )
    assert response.status_code in (400, 422) and response.json()["error"]["param"] == "logit_bias"
