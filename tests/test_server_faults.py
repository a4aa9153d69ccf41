"""Faults a real server must survive, each against a real uvicorn on a free loopback port:
a client that disconnects, more streams than MAX_ACTIVE, 32 streams beside /healthz, SIGTERM
with open streams, and model directories or settings that must stop start-up.

No assertion here reads a clock (the machine may be busy): each checks an order of events or a
count.  Timeouts only stop a hung test; how fast /healthz answers is a figure of bench/http.py.

Run: .venv/bin/pytest tests/test_server_faults.py   (slow: each server loads Keras)
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.serve import command
from tests.conftest import ROOT, LiveServer, free_port, start_server
from tests.test_api import parse_sse, stream_text

pytestmark = pytest.mark.slow
LONG = 1_000_000  # chars: a stream that outlives any test unless it is ended
MIB = 1 << 20


def gauges(server: LiveServer) -> dict[str, float]:
    lines = httpx.get(server.url + "/metrics", timeout=10).text.splitlines()
    return {
        k: float(v)
        for k, v in (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    }


def wait_for(check: object, timeout: float = 60.0) -> None:
    """Until `check()` is true; `timeout` only stops a test that would hang, it is no speed
    bound."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition never reached"
        time.sleep(0.01)


def finished(server: LiveServer, seen: dict[str, float] | None = None) -> dict[str, float]:
    """Sequences finished so far (or in the `seen` gauges), by finish_reason."""
    prefix = "charlstm_sequences_total{"
    out: dict[str, float] = {}
    for key, value in (seen or gauges(server)).items():
        if key.startswith(prefix):
            reason = key.split('finish_reason="')[1].split('"')[0]
            out[reason] = out.get(reason, 0) + value
    return out


def unsendable_chars() -> int:
    """max_chars of a stream (with logprobs=5: over 100 bytes a char) that no socket buffer holds.

    Twice what the kernel can buffer on the server's side (the send buffer grows up to the third
    figure of tcp_wmem) plus far more than the asyncio transport and the client's receive buffer
    take, so while the client reads nothing the server cannot finish sending it, and a slot is given
    back only when its response has been sent: the stream holds its slot by construction.
    """
    wmem = Path("/proc/sys/net/ipv4/tcp_wmem")
    most = int(wmem.read_text().split()[2]) if wmem.exists() else 4 * MIB
    return min(LONG, 2 * (most + MIB) // 100)


def held_client(url: str) -> httpx.Client:
    """A client whose sockets take in next to nothing it has not read (a small, fixed receive
    buffer)."""
    transport = httpx.HTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    return httpx.Client(base_url=url, transport=transport, timeout=60)


def to_first_text(lines: Iterator[str]) -> list[str]:
    """The lines of a stream up to its first text (after `event: start`): it is generating."""
    seen = [next(lines)]
    while not seen[-1].startswith('data: {"text"'):
        seen.append(next(lines))
    return seen


def read_text(lines: Iterator[str], seen: list[str], at_least: int) -> str:
    """Read whole events from a stream (after the lines `seen`) until they hold `at_least` chars
    of text."""
    while len(stream_text(parse_sse(seen))) < at_least:
        seen.append(next(lines))
    while seen[-1] != "":  # to the end of the event
        seen.append(next(lines))
    return stream_text(parse_sse(seen))


@pytest.fixture(scope="module")
def small_server(models_dir: Path) -> Iterator[LiveServer]:
    server = start_server(models_dir, max_active="2", max_chars=str(LONG))
    yield server
    server.stop()


def test_disconnect_cancels_the_sequence_and_frees_its_slot(small_server: LiveServer) -> None:
    before = finished(small_server)
    with httpx.Client(base_url=small_server.url, timeout=30) as c:
        for _ in range(3):  # more times than there are slots: each one must come back
            with c.stream("POST", "/api/generate/stream", json={"max_chars": LONG}) as r:
                lines = r.iter_lines()  # held: a dropped iterator would close the response itself
                to_first_text(lines)
                assert gauges(small_server)["charlstm_engine_sequences"] == 1
            # The response is closed: the slot and the engine's sequence go, as cancelled, not
            # after the million chars it asked for.
            wait_for(lambda: gauges(small_server)["charlstm_active_sequences"] == 0)
            wait_for(lambda: gauges(small_server)["charlstm_engine_sequences"] == 0)
    after = finished(small_server)
    assert after.get("cancelled", 0) - before.get("cancelled", 0) == 3
    assert after.get("length", 0) == before.get("length", 0)


def test_disconnect_while_waiting_for_a_whole_text_cancels_it(small_server: LiveServer) -> None:
    before = finished(small_server)

    async def leave_once_admitted() -> None:
        async with httpx.AsyncClient(base_url=small_server.url, timeout=60) as c:
            waiting = asyncio.create_task(c.post("/api/generate", json={"max_chars": LONG}))
            while gauges(small_server)["charlstm_engine_sequences"] < 1:  # it is generating
                await asyncio.sleep(0.01)
            waiting.cancel()  # the client gives up: its connection closes
            with pytest.raises(asyncio.CancelledError):
                await waiting

    asyncio.run(leave_once_admitted())
    wait_for(lambda: gauges(small_server)["charlstm_engine_sequences"] == 0)
    assert gauges(small_server)["charlstm_active_sequences"] == 0
    assert finished(small_server).get("cancelled", 0) - before.get("cancelled", 0) == 1


def test_over_the_limit_is_429_at_once_and_running_streams_go_on_untouched(
    small_server: LiveServer,
) -> None:
    # Both slots are held by construction, not by timing: see unsendable_chars.
    params = {"prompt": "KING:", "max_chars": unsendable_chars(), "temperature": 1.0, "logprobs": 5}
    before, overloaded = (
        finished(small_server),
        'charlstm_rejected_requests_total{reason="overloaded"}',
    )
    refusals = gauges(small_server).get(overloaded, 0)
    with (
        held_client(small_server.url) as c,
        c.stream("POST", "/api/generate/stream", json={**params, "seed": 0}) as a,
        c.stream("POST", "/api/generate/stream", json={**params, "seed": 1}) as b,
    ):
        streams = [a.iter_lines(), b.iter_lines()]
        firsts = [to_first_text(lines) for lines in streams]  # both are generating
        refused = httpx.post(small_server.url + "/api/generate", json={"max_chars": 5}, timeout=60)
        during = gauges(small_server)
        texts = [
            read_text(lines, seen, 1000) for lines, seen in zip(streams, firsts, strict=True)
        ]  # they go on
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "overloaded"
    assert int(refused.headers["retry-after"]) >= 1
    # Refused before any work: the two streams still held both slots and neither had ended...
    assert during["charlstm_active_sequences"] == 2 and during[overloaded] == refusals + 1
    assert finished(small_server, during) == before
    wait_for(lambda: gauges(small_server)["charlstm_active_sequences"] == 0)
    # ...and the refused request never became a sequence: only the two streams ended (cancelled).
    after = finished(small_server)
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)} == {
        "cancelled": 2
    }
    for seed, text in enumerate(texts):  # the texts are those each seed gives alone
        alone = {**params, "seed": seed, "max_chars": len(text), "logprobs": 0}
        assert (
            httpx.post(small_server.url + "/api/generate", json=alone, timeout=60).json()["text"]
            == text
        )


def test_healthz_answers_between_the_events_of_32_running_streams(models_dir: Path) -> None:
    # Generation never runs on the event loop: while 32 long streams run, every probe is answered
    # and every stream gets events between the probes.  (How fast: bench/http.py's /healthz row.)
    server = start_server(models_dir, max_chars=str(LONG))
    try:

        async def run() -> tuple[list[int], list[int], list[int]]:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as c:
                counts = [0] * 32
                ready = asyncio.Semaphore(0)
                stop = asyncio.Event()

                async def stream(i: int) -> None:
                    async with c.stream(
                        "POST", "/api/generate/stream", json={"max_chars": LONG}
                    ) as r:
                        async for line in r.aiter_lines():
                            counts[i] += line.startswith("data:")
                            if counts[i] == 1:
                                ready.release()
                            if stop.is_set() or line.startswith("event: done"):
                                return

                tasks = [asyncio.create_task(stream(i)) for i in range(32)]
                for _ in range(32):
                    await ready.acquire()
                first, statuses = list(counts), []
                async with httpx.AsyncClient(base_url=server.url, timeout=60) as probe:
                    for _ in range(10):
                        statuses.append((await probe.get("/healthz")).status_code)
                        mark = list(counts)
                        while not all(now > then for now, then in zip(counts, mark, strict=True)):
                            await asyncio.sleep(0.01)  # every stream moves on before the next probe
                last = list(counts)
                stop.set()
                await asyncio.gather(*tasks)
                return statuses, first, last

        statuses, first, last = asyncio.run(run())
        assert statuses == [200] * 10
        assert all(now >= then + 10 for now, then in zip(last, first, strict=True))
        wait_for(lambda: gauges(server)["charlstm_engine_sequences"] == 0)
        assert finished(server) == {"cancelled": 32}  # none had ended on its own
    finally:
        server.stop()


def test_sigterm_ends_open_streams_and_exits_0(models_dir: Path) -> None:
    server = start_server(models_dir, max_chars=str(LONG))
    secret = "SECRET PROMPT TEXT"
    httpx.post(
        server.url + "/api/generate", json={"prompt": secret.lower(), "max_chars": 5}, timeout=30
    )
    with httpx.Client(base_url=server.url, timeout=30) as c:
        with (
            c.stream("POST", "/api/generate/stream", json={"max_chars": LONG}) as a,
            c.stream(
                "POST", "/api/generate/stream", json={"prompt": secret, "max_chars": LONG}
            ) as b,
        ):
            iters = [a.iter_lines(), b.iter_lines()]
            for it in iters:
                to_first_text(it)
            server.proc.terminate()
            events = [parse_sse(list(it)) for it in iters]  # both end instead of running on
        code = server.proc.wait(timeout=60)
    output = server.output()
    for ev in events:
        assert ev[-1][0] == "done" and ev[-1][1]["finish_reason"] == "cancelled"
    assert code == 0, output
    # the streams ended; uvicorn forced nothing
    assert "graceful shutdown exceeded" not in output, output
    assert "Traceback" not in output and "ERROR" not in output, output
    assert secret not in output and secret.lower() not in output  # access logs carry no prompt text


# --- start-up refusals ------------------------------------------------------------------------


def start_and_fail(env: dict[str, str], timeout: float = 120) -> str:
    """Run the server expecting it to refuse to start; return its output."""
    proc = subprocess.run(
        command("127.0.0.1", free_port()),
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "Traceback" not in output, output
    return output


@pytest.fixture
def broken(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A copy of the tiny model, to be damaged by the test."""
    shutil.copytree(tiny_model_dir, tmp_path / "models" / "tiny")
    return tmp_path / "models"


def test_refuses_a_missing_models_dir(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert str(missing) in start_and_fail({"CHARLSTM_MODELS_DIR": str(missing)})


def test_refuses_a_model_dir_missing_a_file(broken: Path) -> None:
    (broken / "tiny" / "vocab.json").unlink()
    assert str(broken / "tiny" / "vocab.json") in start_and_fail(
        {"CHARLSTM_MODELS_DIR": str(broken)}
    )


def test_refuses_a_truncated_model_file(broken: Path) -> None:
    weights = broken / "tiny" / "model.keras"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    output = start_and_fail({"CHARLSTM_MODELS_DIR": str(broken)})
    assert str(weights) in output and "truncated" in output


def test_refuses_an_inconsistent_vocab(broken: Path) -> None:
    vocab = broken / "tiny" / "vocab.json"
    vocab.write_text(json.dumps({"chars": list("abc")}), encoding="utf-8")
    assert str(vocab) in start_and_fail({"CHARLSTM_MODELS_DIR": str(broken)})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CHARLSTM_MAX_ACTIVE", "many"),
        ("CHARLSTM_MAX_ACTIVE", "0"),
        ("CHARLSTM_COALESCE_MS", "-5"),
        ("CHARLSTM_LOG_LEVEL", "loud"),
        ("CHARLSTM_MAX_BODY_BYTES", "1e3"),
    ],
)
def test_refuses_a_bad_setting_naming_the_variable(name: str, value: str, models_dir: Path) -> None:
    output = start_and_fail({"CHARLSTM_MODELS_DIR": str(models_dir), name: value}, timeout=60)
    assert name in output


def test_refuses_an_unknown_default_model(models_dir: Path) -> None:
    output = start_and_fail(
        {"CHARLSTM_MODELS_DIR": str(models_dir), "CHARLSTM_DEFAULT_MODEL": "nope"}
    )
    assert "CHARLSTM_DEFAULT_MODEL" in output


def test_a_running_server_keeps_what_loading_made_out_of_the_collector(models_dir: Path) -> None:
    """A full collection over TensorFlow's objects stalled every stream for ~250 ms: the lifespan
    freezes them after loading and shortens the GIL's switch interval, and gives both back."""
    from fastapi.testclient import TestClient

    from app.main import SWITCH_INTERVAL_S, create_app
    from app.settings import Settings

    before = gc.get_freeze_count()
    with TestClient(create_app(Settings(models_dir=models_dir))) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > before
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
    assert gc.get_freeze_count() == 0
    assert sys.getswitchinterval() == pytest.approx(0.005)
