"""SSE encoding: app/sse.py's EventStream against FastAPI's EventSourceResponse, same events.

    python -m bench.sse [--events 20000] [--rounds 7]      (3-4 min on 2 busy cores)

Starts a uvicorn subprocess (app/serve.py's protocol) on a free loopback port serving a
minimal app whose routes stream the real stream's shape: `event: start`, then `--events`
`data: {"text": "a"}` events, then `event: done`.  `hand` is EventStream + sse(); the
FastAPI routes are async generators under `response_class=EventSourceResponse` that yield
plain dicts (`fastapi-dict`), `ServerSentEvent(data=...)` (`fastapi-event`) or
`ServerSentEvent(raw_data=json.dumps(...))` (`fastapi-raw`).  An httpx client reads each
stream whole, the routes interleaved and rotated in every round.  Server CPU per event
(psutil, user + system of the server process, in 10 ms ticks: 0.5 µs/event at 20,000) is
the figure to trust on a shared machine; events/s is wall clock.  Prints medians over the
rounds, each FastAPI route's ratio to `hand` (≥ 1 is as good or better) and the CPU model.

Then checks what app/sse.py promises, on both: (a) a `: ping` after the app's own
`sse_ping_s` of silence (a sub-app set to 0.25 s, a generator silent for 1.2 s);
(b) cleanup when the client leaves before the first event; (c) an error raised before the
first event reaching the client as its status; (d) the bytes of a non-ASCII chunk.
Never passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psutil
from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from app.serve import PROTOCOL
from app.settings import SSE_PING_S
from app.sse import EventStream, sse
from bench.machine import heading

ROOT = Path(__file__).resolve().parent.parent
ROUTES = ("hand", "fastapi-dict", "fastapi-event", "fastapi-raw")
START = {"seed": 1234567, "model": "shakespeare"}
SILENT_S, SHORT_PING_S = 1.2, 0.25


def done(n: int) -> dict[str, Any]:
    usage = {"prompt_chars": 7, "completion_chars": n}
    return {"finish_reason": "length", "usage": usage, **START}


def bench_app(ping_s: float, closed: Counter[str]) -> FastAPI:
    """The four streams, plus the slow, idle and failing ones the checks use."""
    app = FastAPI()
    app.state.settings = SimpleNamespace(sse_ping_s=ping_s)  # what EventStream reads

    @app.post("/hand")
    async def hand(n: int) -> Response:
        async def events() -> AsyncIterator[str]:
            yield sse(START, event="start")
            for _ in range(n):
                yield sse({"text": "a"})
            yield sse(done(n), event="done")

        return EventStream(events(), on_close=lambda: None)

    @app.post("/fastapi-dict", response_class=EventSourceResponse)
    async def fastapi_dict(n: int) -> AsyncIterator[Any]:
        yield ServerSentEvent(data=START, event="start")
        for _ in range(n):
            yield {"text": "a"}
        yield ServerSentEvent(data=done(n), event="done")

    @app.post("/fastapi-event", response_class=EventSourceResponse)
    async def fastapi_event(n: int) -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data=START, event="start")
        for _ in range(n):
            yield ServerSentEvent(data={"text": "a"})
        yield ServerSentEvent(data=done(n), event="done")

    @app.post("/fastapi-raw", response_class=EventSourceResponse)
    async def fastapi_raw(n: int) -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(raw_data=json.dumps(START), event="start")
        for _ in range(n):
            yield ServerSentEvent(raw_data=json.dumps({"text": "a"}))
        yield ServerSentEvent(raw_data=json.dumps(done(n)), event="done")

    add_check_routes(app, closed)
    return app


def add_check_routes(app: FastAPI, closed: Counter[str]) -> None:
    async def wait(what: str) -> None:  # a job that waits for a slot: nothing to send yet
        if what == "slow":
            await asyncio.sleep(SILENT_S)
        elif what == "idle":
            await asyncio.sleep(60)
        elif what == "fail":
            raise HTTPException(429, "overloaded")

    @app.post("/hand/{what}")
    async def hand_check(what: str) -> Response:
        async def events() -> AsyncIterator[str]:
            await wait(what)
            yield sse({"text": "é—"})

        if what == "fail":
            await wait(what)  # the route admits the job before it builds the response
        return EventStream(events(), on_close=lambda: closed.update(["hand"]))

    @app.post("/fastapi/{what}", response_class=EventSourceResponse)
    async def fastapi_check(what: str) -> AsyncIterator[Any]:
        try:
            await wait(what)  # a generator's body runs only once the response has started
            yield {"text": "é—"}
        finally:
            closed.update(["fastapi"])

    @app.get("/closed")
    async def closed_count() -> dict[str, int]:
        return dict(closed)


def serve(port: int) -> None:
    import uvicorn

    closed: Counter[str] = Counter()
    app = bench_app(SSE_PING_S, closed)
    app.mount("/short", bench_app(SHORT_PING_S, closed))  # a second app with its own ping
    uvicorn.run(app, host="127.0.0.1", port=port, http=PROTOCOL, log_level="warning")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.sse", "--serve", str(port)]
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/closed", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the bench server did not start: {log.read_text()[-2000:]}")


def read_stream(client: httpx.Client, url: str) -> bytes:
    with client.stream("POST", url) as r:
        r.raise_for_status()
        return b"".join(r.iter_raw())


def measure(url: str, events: int, rounds: int, server: psutil.Process) -> dict[str, Any]:
    cpu: dict[str, list[float]] = {r: [] for r in ROUTES}
    rate: dict[str, list[float]] = {r: [] for r in ROUTES}
    bodies: dict[str, bytes] = {}
    with httpx.Client(timeout=120) as client:
        read_stream(client, f"{url}/hand?n=100")  # warm the connection and the routes
        for i in range(rounds):
            for route in ROUTES[i % len(ROUTES) :] + ROUTES[: i % len(ROUTES)]:
                before, t0 = sum(server.cpu_times()[:2]), time.perf_counter()
                body = read_stream(client, f"{url}/{route}?n={events}")
                wall, used = time.perf_counter() - t0, sum(server.cpu_times()[:2]) - before
                cpu[route].append(used / (events + 2) * 1e6)
                rate[route].append((events + 2) / wall)
                bodies[route] = body
    same = all(events_of(b) == events_of(bodies["hand"]) for b in bodies.values())
    return {"cpu": cpu, "rate": rate, "same_events": same, "bytes": len(bodies["hand"])}


def events_of(body: bytes) -> list[tuple[str, Any]]:
    """(event name, parsed data) per event; comments (pings) dropped."""
    out = []
    for block in body.decode().split("\n\n")[:-1]:
        fields = dict(ln.split(": ", 1) for ln in block.split("\n") if not ln.startswith(":"))
        if fields:
            out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


def answer(client: httpx.Client, url: str) -> str:
    """The status and how the body ended, in words."""
    status = "no answer"
    try:
        with client.stream("POST", url) as r:
            status = str(r.status_code)
            return f"{status} {b''.join(r.iter_raw())[:40]!r}"
    except httpx.TransportError as exc:
        return f"{status}, then {type(exc).__name__}"


def check(url: str, server_log: Path) -> list[tuple[str, ...]]:
    """(what, hand, fastapi) in words."""
    kinds = ("hand", "fastapi")
    rows: list[tuple[str, ...]] = []
    with httpx.Client(timeout=30) as client:
        slow = {k: read_stream(client, f"{url}/short/{k}/slow") for k in kinds}
        what = f"(a) pings: the app's sse_ping_s {SHORT_PING_S} s, {SILENT_S} s of silence"
        rows.append((what, *(str(slow[k].count(b": ping")) for k in kinds)))
        before = client.get(url + "/closed").json()
        for kind in kinds:
            with client.stream("POST", f"{url}/{kind}/idle"):
                pass  # the headers only: the client leaves
        time.sleep(1.0)
        after = client.get(url + "/closed").json()
        freed = ["yes" if after.get(k, 0) > before.get(k, 0) else "no" for k in kinds]
        rows.append(("(b) cleanup when the client leaves before the first event", *freed))
        logged = server_log.read_text().count("Traceback")
        failed = [answer(client, f"{url}/{k}/fail") for k in kinds]
        time.sleep(0.5)
        logged = server_log.read_text().count("Traceback") - logged
        failed[1] += f"; tracebacks in the server's log: {logged}"
        rows.append(("(c) a 429 raised before the first event", *failed))
        data = [next(x for x in slow[k].split(b"\n") if x.startswith(b"data")) for k in kinds]
        rows.append(("(d) a chunk 'é—' on the wire", *(repr(d) for d in data)))
    return rows


def report(figures: dict[str, Any], events: int, rounds: int) -> None:
    cpu = {r: statistics.median(v) for r, v in figures["cpu"].items()}
    rate = {r: statistics.median(v) for r, v in figures["rate"].items()}
    print(heading("bench.sse"))
    print(f"{events + 2} events ({figures['bytes']} bytes) a stream, {rounds} interleaved rounds,")
    print(f"medians; the same events (parsed) on every route: {figures['same_events']}")
    head = ("route", "server CPU µs/event", "events/s", "CPU ratio", "rate ratio")
    print("{:<15}{:>21}{:>11}{:>11}{:>12}".format(*head))
    for r in ROUTES:
        ratios = (cpu["hand"] / cpu[r], rate[r] / rate["hand"])
        print(f"{r:<15}{cpu[r]:>21.1f}{rate[r]:>11,.0f}{ratios[0]:>11.2f}{ratios[1]:>12.2f}")
    print("ratios: hand's CPU/event ÷ the route's; the route's events/s ÷ hand's (holds: ≥ 0.95)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server subprocess
    args = parser.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        proc, url = start_server(log)
        try:
            figures = measure(url, args.events, args.rounds, psutil.Process(proc.pid))
            report(figures, args.events, args.rounds)
            for what, hand, fastapi in check(url, log):
                print(f"{what}\n    hand:    {hand}\n    fastapi: {fastapi}")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
