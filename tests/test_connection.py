"""Slow and idle clients, with real sockets on a real uvicorn (app/connection.py, app/collector.py):
idle, half-sent-header, half-sent-body and idle keep-alive connections are closed within their
limits; a stream nobody reads pauses its generation, keeps its slot, and is cut off as a slow
consumer; one read late has the very text read at once.

    .venv/bin/pytest tests/test_connection.py
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn.importer import import_from_string

from app.connection import GuardedHttpProtocol
from app.serve import PROTOCOL
from tests.conftest import ROOT, LiveServer
from tests.test_api import parse_sse, stream_text

LIMIT_S = 1.0  # header, body and keep-alive limits of the server below
SLOW_S = 3.0  # its slow-client limit
CONNECTIONS = 200  # of each test run; bench/slow_clients.py opens 500


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[LiveServer]:
    env = {
        "CHARLSTM_MODELS_DIR": str(models_dir),
        "CHARLSTM_HEADER_TIMEOUT_S": str(LIMIT_S),
        "CHARLSTM_BODY_TIMEOUT_S": str(LIMIT_S),
        "CHARLSTM_KEEP_ALIVE_S": str(LIMIT_S),
        "CHARLSTM_SLOW_CLIENT_S": str(SLOW_S),
        "CHARLSTM_STREAM_BUFFER_BYTES": "32768",
        "CHARLSTM_MAX_ACTIVE": "1",
        "CHARLSTM_REPLICA_ID": "replica-a",
    }
    live = LiveServer(env, args=["--http", PROTOCOL])
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


def test_every_entry_point_names_the_protocol() -> None:
    assert import_from_string(PROTOCOL) is GuardedHttpProtocol
    serve = re.search(r"^serve:.*?(?=^\S)", (ROOT / "Makefile").read_text(), re.M | re.S)
    assert serve and f"--http {PROTOCOL}" in serve.group()
    assert f'"--http", "{PROTOCOL}"' in (ROOT / "Dockerfile").read_text()


HALF_HEADERS = b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-"
HALF_BODY = (
    b"POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b'Content-Length: 40\r\n\r\n{"pro'
)
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
KINDS = {"idle": b"", "half headers": HALF_HEADERS, "half body": HALF_BODY, "keep-alive": HEALTHZ}


async def hold(port: int, sent: bytes) -> tuple[float, bytes]:
    """Open a connection, send `sent`, then read until the server closes it: (seconds, what
    came)."""
    began = time.monotonic()  # before the connect: the server's clock for it starts later
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    await writer.drain()
    got = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 30):
            got += chunk
    except ConnectionResetError:
        pass
    took = time.monotonic() - began
    writer.close()
    return took, got


def test_idle_and_half_sent_connections_are_closed_within_their_limits(server: LiveServer) -> None:
    async def run() -> tuple[list[tuple[str, float, bytes]], list[float]]:
        kinds = [list(KINDS)[i % len(KINDS)] for i in range(CONNECTIONS)]
        held = asyncio.gather(*(hold(server.port, KINDS[kind]) for kind in kinds))
        await asyncio.sleep(0.3)  # all open: the server still answers others at once
        async with httpx.AsyncClient(base_url=server.url) as client:
            waits = []
            for _ in range(5):
                began = time.monotonic()
                assert (await client.get("/healthz")).status_code == 200
                waits.append(time.monotonic() - began)
        return [
            (kind, took, got) for kind, (took, got) in zip(kinds, await held, strict=True)
        ], waits

    results, healthz = asyncio.run(run())
    assert max(healthz) < 2.0, healthz  # generous: a busy 2-core CI machine; the bench measures p99
    for kind, took, got in results:
        # never early; late only by load
        assert 0.8 * LIMIT_S <= took <= LIMIT_S + 4.0, (
            kind,
            took,
        )
        if kind == "idle":
            assert got == b"", "a connection that sent nothing is closed without a word"
        elif kind == "keep-alive":
            assert got.startswith(b"HTTP/1.1 200") and b"x-replica: replica-a" in got.lower()
        else:
            head, _, body = got.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408"), (kind, got[:80])
            assert json.loads(body)["error"]["code"] == "request_timeout"
    metrics = httpx.get(server.url + "/metrics").text
    per_kind = CONNECTIONS // len(KINDS)
    assert f'charlstm_rejected_requests_total{{reason="header_timeout"}} {per_kind}.0' in metrics
    assert f'charlstm_rejected_requests_total{{reason="body_timeout"}} {per_kind}.0' in metrics


def gauge(server: LiveServer, name: str) -> float:
    text = httpx.get(server.url + "/metrics", timeout=10).text
    return float(re.search(rf"^{name} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]


def unread_stream(port: int, body: dict[str, object]) -> socket.socket:
    """A stream whose client reads nothing: a small receive window, and no reads."""
    sock = socket.socket()
    # before connect: the window stays small
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    payload = json.dumps(body).encode()
    head = b"POST /api/generate/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
    return sock


def wait_for(check, timeout: float) -> float:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - began


def paused(server: LiveServer) -> bool:
    """One stream admitted (it keeps its slot), none stepping: its generation waits for its
    reader."""
    return (
        gauge(server, "charlstm_active_sequences") == 1
        and gauge(server, "charlstm_engine_sequences") == 0
    )


STREAM = {"prompt": "ROMEO:", "max_chars": 4000, "logprobs": 5, "temperature": 1.0, "seed": 11}


def test_a_stream_read_late_has_the_text_read_at_once(server: LiveServer) -> None:
    # not streamed: never paused
    whole = httpx.post(server.url + "/api/generate", json=STREAM, timeout=60)
    assert whole.status_code == 200 and len(whole.json()["text"]) == STREAM["max_chars"]
    sock = unread_stream(server.port, STREAM)
    try:
        wait_for(lambda: paused(server), SLOW_S - 0.5)
        busy = httpx.post(server.url + "/api/generate", json={"max_chars": 5}, timeout=10)
        assert busy.status_code == 429  # the paused stream still counts against MAX_ACTIVE (1 here)
        sock.settimeout(30)
        data = b""
        while not data.endswith(b"0\r\n\r\n"):  # the chunked body's end
            chunk = sock.recv(1 << 20)
            assert chunk, "the server closed the stream"
            data += chunk
    finally:
        sock.close()
    _, _, body = data.partition(b"\r\n\r\n")
    lines = re.sub(rb"\r\n[0-9a-f]+\r\n", b"", b"\r\n" + body).decode().split("\n")  # de-chunked
    events = parse_sse(lines)
    assert events[-1][0] == "done" and events[-1][1]["finish_reason"] == "length"
    assert stream_text(events) == whole.json()["text"]  # pausing changed no bit of the text


def test_a_stream_nobody_reads_is_cut_off_as_a_slow_consumer(server: LiveServer) -> None:
    sock = unread_stream(server.port, {**STREAM, "max_chars": 5000})
    try:
        wait_for(lambda: paused(server), SLOW_S - 0.5)
        cut = wait_for(lambda: gauge(server, "charlstm_active_sequences") == 0, SLOW_S + 10)
        assert cut > 0.5, "cut off only after SLOW_CLIENT_S without a read"
    finally:
        sock.close()
    metrics = httpx.get(server.url + "/metrics").text
    assert 'charlstm_rejected_requests_total{reason="slow_client"} 1.0' in metrics
    assert re.search(
        r'charlstm_sequences_total\{finish_reason="cancelled",model="tiny"\} 1.0', metrics
    )
    assert "slow consumer: 127.0.0.1:" in server.output()
    # its slot is free
    assert httpx.post(server.url + "/api/generate", json={"max_chars": 5}).status_code == 200
