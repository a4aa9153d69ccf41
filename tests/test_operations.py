"""Operations: SSE keep-alives, the API key, CORS, /metrics' duration histogram and process
series, and log lines with timestamps that a `--log-config` can route (JSON included).

    .venv/bin/pytest tests/test_operations.py
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.logs import JsonFormatter, configure_logging
from app.main import create_app
from app.middleware import replica_name
from app.settings import Settings, load_settings
from app.sse import PING, EventStream
from tests.conftest import ROOT, LiveServer
from tests.test_api import parse_sse, stream_text

KEY = "s3cret-key"
ORIGIN = "https://ui.example"


def test_a_ping_goes_out_only_while_the_stream_is_silent() -> None:
    async def run() -> list[bytes]:
        heard_ping = asyncio.Event()
        bodies: list[bytes] = []

        async def events() -> AsyncIterator[str]:
            yield "data: 1\n\n"
            await heard_ping.wait()  # silent until a ping has gone out: no clock decides the order
            yield "data: 2\n\n"

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])
                if message["body"] == PING.encode():
                    heard_ping.set()

        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()  # the client never leaves
            return {}

        settings = SimpleNamespace(sse_ping_s=0.01)
        scope = {
            "type": "http",
            "asgi": {"spec_version": "2.4"},
            "app": SimpleNamespace(state=SimpleNamespace(settings=settings)),
        }
        await EventStream(events(), on_close=lambda: None)(scope, receive, send)
        return bodies

    bodies = asyncio.run(run())
    assert bodies[0] == b"data: 1\n\n" and bodies[-2:] == [b"data: 2\n\n", b""]
    assert len(bodies) >= 4 and set(bodies[1:-2]) == {PING.encode()}  # after the end, no more pings


def test_settings_for_key_and_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARLSTM_CORS_ORIGINS", f"{ORIGIN}/, http://localhost:3000")
    monkeypatch.setenv("CHARLSTM_API_KEY", "")
    settings = load_settings()
    assert settings.cors_origins == (ORIGIN, "http://localhost:3000") and settings.api_key is None
    assert KEY not in repr(Settings(api_key=KEY))  # never printed
    monkeypatch.setenv("CHARLSTM_CORS_ORIGINS", "ui.example/path")
    with pytest.raises(SystemExit, match="CHARLSTM_CORS_ORIGINS"):
        load_settings()


@pytest.fixture(scope="module")
def guarded(models_dir: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=models_dir, api_key=KEY, cors_origins=(ORIGIN,))
    with TestClient(create_app(settings)) as c:
        yield c


def test_the_api_key_guards_api_and_v1_only(guarded: TestClient) -> None:
    body = {"prompt": "A", "max_chars": 5, "seed": 1}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        r = guarded.post("/api/generate", json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
        assert r.json()["error"]["code"] == "invalid_api_key" and KEY not in r.text
    assert guarded.get("/v1/models").status_code == 401
    auth = {"Authorization": f"Bearer {KEY}"}
    assert guarded.post("/api/generate", json=body, headers=auth).status_code == 200
    assert guarded.get("/v1/models", headers=auth).status_code == 200
    for open_path in ("/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"):
        assert guarded.get(open_path).status_code == 200, open_path
    assert (
        'charlstm_rejected_requests_total{reason="unauthorized"} 4.0'
        in guarded.get("/metrics").text
    )
    schema = guarded.get("/openapi.json").json()
    assert schema["paths"]["/api/generate"]["post"]["security"] == [{"apiKey": []}]


def test_the_bearer_scheme_is_case_insensitive(guarded: TestClient) -> None:
    body = {"prompt": "A", "max_chars": 5, "seed": 1}
    # RFC 7235 2.1
    for header in (
        f"bearer {KEY}",
        f"BEARER {KEY}",
        f"Bearer  {KEY} ",
        f"bEaReR {KEY}",
    ):
        assert (
            guarded.post("/api/generate", json=body, headers={"Authorization": header}).status_code
            == 200
        ), header
    for header in (
        f"Basic {KEY}",
        f"Bearer{KEY}",
        f"Bearer {KEY}x",
        f"Bearer {KEY[:-1]}",
        "bearer",
    ):
        assert (
            guarded.post("/api/generate", json=body, headers={"Authorization": header}).status_code
            == 401
        ), header


def test_every_response_names_its_replica(guarded: TestClient, models_dir: Path) -> None:
    assert (
        guarded.get("/healthz").headers["x-replica"] == replica_name(None) == socket.gethostname()
    )
    assert guarded.post("/api/generate", json={}).headers["x-replica"]  # a 401 too
    with TestClient(create_app(Settings(models_dir=models_dir, replica_id="replica-7"))) as named:
        assert named.get("/readyz").headers["x-replica"] == "replica-7"
        assert (
            named.post("/api/generate", json={"max_chars": 3}).headers["x-replica"] == "replica-7"
        )
    with pytest.raises(ValueError, match="replica_id"):
        Settings(replica_id="two words")


def test_cors_allows_only_the_configured_origins(guarded: TestClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = guarded.options("/api/generate", headers={"Origin": ORIGIN, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == ORIGIN
    other = guarded.options(
        "/api/generate", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in other.headers
    # a browser can read the 401
    refused = guarded.post("/api/generate", json={}, headers={"Origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == ORIGIN


def test_metrics_show_request_durations_and_process_series(guarded: TestClient) -> None:
    guarded.get("/healthz")
    text = guarded.get("/metrics").text
    assert 'charlstm_http_request_duration_seconds_count{method="GET",route="/healthz"}' in text
    assert (
        'charlstm_http_request_duration_seconds_bucket{le="1800.0",method="GET",route="/healthz"}'
        in text
    )
    for series in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "python_info",
        "python_gc",
    ):
        assert series in text, series


def test_log_lines_have_timestamps_unless_a_config_routes_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    app_logger, root = logging.getLogger("app"), logging.getLogger()
    saved = app_logger.handlers[:], root.handlers[:]
    try:
        app_logger.handlers, root.handlers = [], []
        configure_logging("info")
        assert len(app_logger.handlers) == 1 and app_logger.propagate
        record = logging.LogRecord("app.main", logging.INFO, __file__, 1, "ready %s", ("x",), None)
        line = app_logger.handlers[0].format(record)
        # 2026-11-30 06:40:01,123 ...
        assert line.endswith("INFO     app.main: ready x") and line[:4].isdigit()
        app_logger.handlers, root.handlers = [], [logging.NullHandler()]
        configure_logging("info")  # a config set handlers: app.* lines go there
        assert app_logger.handlers == []
    finally:
        app_logger.handlers, root.handlers = saved
    entry = json.loads(JsonFormatter().format(record))
    assert (
        entry["logger"] == "app.main"
        and entry["message"] == "ready x"
        and entry["time"].endswith("+00:00")
    )


@pytest.mark.slow
def test_a_live_server_pings_streams_and_logs_json(models_dir: Path) -> None:
    env = {
        "CHARLSTM_MODELS_DIR": str(models_dir),
        "CHARLSTM_SSE_PING_S": "0.001",
        "CHARLSTM_COALESCE_MS": "50",
    }
    server = LiveServer(env, ["--log-config", str(ROOT / "docs" / "log-config.json")])
    try:
        server.wait_ready()
        with httpx.stream(
            "POST", server.url + "/api/generate/stream", json={"max_chars": 3000}, timeout=60
        ) as r:
            lines = list(r.iter_lines())
        assert ": ping" in lines  # comments between the 50 ms ticks; clients skip them
        events = parse_sse(lines)
        assert events[-1][0] == "done" and len(stream_text(events)) == 3000
    finally:
        server.stop()
    logged = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    assert {"time", "level", "logger", "message"} <= set(logged[0])
    assert any(e["logger"] == "app.main" and e["message"].startswith("ready") for e in logged)
    assert not [line for line in server.output().splitlines() if line and not line.startswith("{")]
