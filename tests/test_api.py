"""The `/api/*` routes and ops routes: what a client gets back for good requests.

In-process (FastAPI's TestClient, lifespan included) for the bodies; a real uvicorn for what
only real HTTP shows: seeded texts alike whether a request runs alone or beside others, and
SSE events coalesced in time.  Run: .venv/bin/pytest tests/test_api.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.conftest import TINY_CHARS, LiveServer, start_server


def parse_sse(lines: list[str]) -> list[tuple[str, Any]]:
    """[(event, data)] from SSE lines; event is "message" when not named; data is parsed JSON."""
    events: list[tuple[str, Any]] = []
    data: list[str] = []
    name = "message"
    for line in lines:
        if line == "":
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    return events


def stream_text(events: list[tuple[str, Any]]) -> str:
    return "".join(d["text"] for e, d in events if e == "message")


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c


def generate(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.post("/api/generate", json=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_generate_returns_text_usage_and_seed(client: TestClient) -> None:
    body = generate(client, prompt="ROMEO:", max_chars=40, seed=3)
    assert len(body["text"]) == 40 and set(body["text"]) <= set(TINY_CHARS)
    assert body["finish_reason"] == "length"
    assert body["usage"] == {"prompt_chars": 6, "generated_chars": 40}
    assert body["seed"] == 3 and body["model"] == "tiny"
    assert "logprobs" not in body


def test_a_seed_gives_the_same_text_and_no_seed_reports_one(client: TestClient) -> None:
    a = generate(client, prompt="To be", max_chars=60, seed=11, temperature=1.0)
    b = generate(client, prompt="To be", max_chars=60, seed=11, temperature=1.0)
    c = generate(client, prompt="To be", max_chars=60, seed=12, temperature=1.0)
    assert a["text"] == b["text"] != c["text"]
    unseeded = generate(client, prompt="To be", max_chars=60, temperature=1.0)
    again = generate(client, prompt="To be", max_chars=60, temperature=1.0, seed=unseeded["seed"])
    assert 0 <= unseeded["seed"] < 2**63 and again["text"] == unseeded["text"]


def test_greedy_and_tiny_temperatures(client: TestClient) -> None:
    greedy = generate(client, prompt="a", max_chars=50, temperature=0, seed=1)["text"]
    assert generate(client, prompt="a", max_chars=50, temperature=0, seed=2)["text"] == greedy
    assert (
        generate(client, prompt="a", max_chars=50, top_k=1, temperature=1.0, seed=3)["text"]
        == greedy
    )
    assert generate(client, prompt="a", max_chars=50, temperature=1e-30, seed=4)["text"] == greedy
    assert (
        len(generate(client, prompt="a", max_chars=50, temperature=5, top_p=0.5, seed=5)["text"])
        == 50
    )


def test_stop_ends_before_the_stop_string(client: TestClient) -> None:
    full = generate(client, prompt="The", max_chars=80, temperature=1.0, seed=21)["text"]
    stop = full[30:33]
    body = generate(
        client,
        prompt="The",
        max_chars=80,
        temperature=1.0,
        seed=21,
        stop=[stop, "\u00e9\u00e9\u00e9\u00e9"],
    )
    assert body["finish_reason"] == "stop"
    assert body["text"] == full[: full.index(stop)]
    assert body["usage"]["generated_chars"] == len(body["text"])


def test_empty_prompt_starts_from_the_start_state(client: TestClient) -> None:
    body = generate(client, max_chars=20, seed=5)
    assert len(body["text"]) == 20 and body["usage"]["prompt_chars"] == 0


def test_logprobs_describe_each_generated_char(client: TestClient) -> None:
    body = generate(client, prompt="ab", max_chars=25, seed=8, logprobs=3)
    entries = body["logprobs"]
    assert "".join(e["char"] for e in entries) == body["text"]
    for e in entries:
        assert e["logprob"] <= 0 and len(e["top"]) == 3
        assert [lp for _, lp in e["top"]] == sorted((lp for _, lp in e["top"]), reverse=True)
        assert e["top"][0][1] >= e["logprob"] - 1e-3


def test_stream_sends_chunks_then_done(client: TestClient) -> None:
    with client.stream(
        "POST", "/api/generate/stream", json={"prompt": "ROMEO:", "max_chars": 300, "seed": 9}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = parse_sse(list(r.iter_lines()))
    assert events[0] == ("start", {"seed": 9, "model": "tiny"})  # before any text
    assert [e for e, _ in events[1:-1]] == ["message"] * (len(events) - 2)
    name, done = events[-1]
    assert name == "done"
    assert done == {
        "finish_reason": "length",
        "usage": {"prompt_chars": 6, "generated_chars": 300},
        "seed": 9,
        "model": "tiny",
    }
    assert stream_text(events) == generate(client, prompt="ROMEO:", max_chars=300, seed=9)["text"]


def test_stream_with_logprobs_and_stop(client: TestClient) -> None:
    full = generate(client, prompt="x", max_chars=60, seed=4, temperature=1.0)["text"]
    params = {
        "prompt": "x",
        "max_chars": 60,
        "seed": 4,
        "temperature": 1.0,
        "logprobs": 2,
        "stop": [full[20:22]],
    }
    with client.stream("POST", "/api/generate/stream", json=params) as r:
        events = parse_sse(list(r.iter_lines()))
    chunks = [d for e, d in events if e == "message"]
    assert all(len(c["logprobs"]) == len(c["text"]) for c in chunks)
    assert stream_text(events) == full[: full.index(full[20:22])]
    assert events[-1][1]["finish_reason"] == "stop"


def test_models_lists_the_card(client: TestClient) -> None:
    models = client.get("/api/models").json()["models"]
    assert [(m["name"], m["default"], m["vocab_size"]) for m in models] == [
        ("tiny", True, len(set(TINY_CHARS)))
    ]
    assert models[0]["params"] > 0 and models[0]["config"]["units"] == 16


def test_ops_routes(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    generate(client, max_chars=10)
    text = client.get("/metrics").text
    for name in (
        "charlstm_http_requests_total",
        "charlstm_active_sequences",
        "charlstm_queued_sequences",
        "charlstm_generated_chars_total",
        "charlstm_rejected_requests_total",
        "charlstm_time_to_first_char_seconds_bucket",
        "charlstm_char_latency_seconds_bucket",
    ):
        assert name in text
    assert 'charlstm_http_requests_total{method="POST",route="/api/generate",status="200"}' in text
    assert client.get("/openapi.json").json()["paths"]["/api/generate"]["post"]["responses"]["429"]


# --- over real HTTP -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coalescing_server(models_dir: Path) -> Iterator[LiveServer]:
    server = start_server(models_dir, coalesce_ms="50", max_chars="20000")
    yield server
    server.stop()


async def read_stream(client: httpx.AsyncClient, params: dict[str, Any]) -> list[tuple[str, Any]]:
    """Events of one stream."""
    lines = []
    async with client.stream("POST", "/api/generate/stream", json=params) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            lines.append(line)
    return parse_sse(lines)


def char_latency(server: LiveServer) -> tuple[float, float]:
    """(sum, count) of the server's per-sequence mean seconds between chars."""
    text = httpx.get(server.url + "/metrics", timeout=60).text
    values = dict(
        line.rsplit(" ", 1)
        for line in text.splitlines()
        if line.startswith("charlstm_char_latency")
    )
    series = (
        'charlstm_char_latency_seconds_{}{{model="tiny"}}'  # absent before the first observation
    )
    return float(values.get(series.format("sum"), 0)), float(values.get(series.format("count"), 0))


@pytest.mark.slow
def test_seeded_text_is_the_same_alone_or_beside_others(coalescing_server: LiveServer) -> None:
    params = {"prompt": "KING:", "max_chars": 400, "temperature": 1.0, "top_p": 0.9}

    async def run() -> tuple[str, list[str]]:
        async with httpx.AsyncClient(base_url=coalescing_server.url, timeout=60) as c:
            alone = stream_text(await read_stream(c, {**params, "seed": 0}))
            crowd = await asyncio.gather(
                *(read_stream(c, {**params, "seed": s % 3}) for s in range(9))
            )
            return alone, [stream_text(events) for events in crowd]

    alone, crowd = asyncio.run(run())
    assert len(alone) == 400
    assert crowd[0] == crowd[3] == crowd[6] == alone
    assert crowd[1] == crowd[4] != alone


@pytest.mark.slow
def test_stream_events_are_coalesced_and_the_first_comes_at_once(
    coalescing_server: LiveServer,
) -> None:
    async def run() -> list[tuple[str, Any]]:
        async with httpx.AsyncClient(base_url=coalescing_server.url, timeout=60) as c:
            return await read_stream(c, {"max_chars": 20000, "seed": 1})

    sum_before, count_before = char_latency(coalescing_server)
    events = asyncio.run(run())
    sum_after, count_after = char_latency(coalescing_server)
    assert events[-1][1]["usage"]["generated_chars"] == 20000 == len(stream_text(events))
    assert count_after == count_before + 1  # this stream's one observation
    # The server's own span from first to last char (mean gap x gaps), not the client's clock:
    # events leave on 50 ms ticks, at most one per tick, plus the first at once and the last
    # tick after the last char, however busy the machine is.
    span = (sum_after - sum_before) * (20000 - 1)
    sizes = [len(d["text"]) for e, d in events if e == "message"]
    assert 2 <= len(sizes) <= span / 0.050 + 3, (len(sizes), span)
    # The first event is sent as soon as a char exists, not after a coalescing window.
    assert sizes[0] <= statistics.median(sizes), sizes[:10]
