"""Slow and idle clients against a real server: connections cut off in time, /healthz meanwhile,
and the memory that streams nobody reads hold.

    python -m bench.slow_clients [--models-dir DIR] [--connections 500] [--streams 64] [--limit-s 2]

Connections: starts `python -m app.serve` (app/connection.py's protocol) with the header, body and
keep-alive limits at --limit-s, opens --connections connections (a quarter each: idle, half-sent
headers, half-sent body, idle keep-alive after a response) and times until the server closes each,
while a process of its own GETs /healthz every 10 ms on one connection (p50/p99/max; target p99
< 50 ms; also 5 s of it alone before).
Then the same connections against bare `uvicorn app.main:app`: how many are still open after
--limit-s + 5 s (the state before).  Memory: --streams streams with 5 logprobs whose clients read
nothing (4 KiB receive windows); once every one is paused (after as many streams read to their end,
prefix cache off), the server's RSS growth and what the kernel holds in its connections' send
buffers (ss), together against streams × CHARLSTM_STREAM_BUFFER_BYTES (the target); then with a
4 KiB bound (what is left is a live request's own cost), and on bare uvicorn with the bound at
64 MiB (nothing pauses, the kernel's buffers grow: the state before).  Needs `ss` (iproute2).
Prints tables; never passes or fails.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bench.http import DEFAULT_MODELS_DIR, free_port
from bench.machine import heading

ROOT = Path(__file__).resolve().parent.parent
KINDS = {
    "idle": b"",
    "half headers": b"POST /api/generate HTTP/1.1\r\nHost: b\r\nContent-",
    "half body": b"POST /api/generate HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
    b'Content-Length: 40\r\n\r\n{"pro',
    "keep-alive": b"GET /healthz HTTP/1.1\r\nHost: b\r\n\r\n",
}
STREAM = {"prompt": "ROMEO:\n", "max_chars": 5000, "logprobs": 5, "temperature": 1.0}


def serve(
    models_dir: Path, guarded: bool, **settings: object
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "CHARLSTM_MODELS_DIR": str(models_dir),
        "CHARLSTM_LOG_LEVEL": "warning",
        **{f"CHARLSTM_{k.upper()}": str(v) for k, v in settings.items()},
    }
    entry = ["-m", "app.serve"] if guarded else ["-m", "uvicorn", "app.main:app"]
    cmd = [sys.executable, *entry, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if get(port, "/readyz")[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start")


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


def gauges(port: int) -> dict[str, float]:
    text = get(port, "/metrics")[1].decode()
    return {m[0]: float(m[1]) for m in re.findall(r"^(charlstm_\w+_sequences) (\S+)$", text, re.M)}


def probe(port: int) -> None:
    """The prober's own process (`--probe PORT`): GET /healthz every 10 ms on one keep-alive
    connection until stdin closes, then print [monotonic time, ms] per GET as JSON.  Its own
    process: the
    clients' event loop would otherwise hold the GIL that its timings need."""
    done = threading.Event()

    def watch() -> None:
        sys.stdin.read()
        done.set()

    conn, ms = (
        http.client.HTTPConnection("127.0.0.1", port, timeout=30),
        list[tuple[float, float]](),
    )
    get(port, "/healthz", conn)
    print("ready", flush=True)
    threading.Thread(target=watch, daemon=True).start()
    while not done.wait(0.01):
        began = time.perf_counter()
        get(port, "/healthz", conn)
        ms.append((time.monotonic(), 1000 * (time.perf_counter() - began)))
    print(json.dumps(ms))


def gen2_collections(port: int) -> float:
    text = get(port, "/metrics")[1].decode()
    found = re.search(r'^python_gc_collections_total\{generation="2"\} (\S+)$', text, re.M)
    return float(found.group(1))  # type: ignore[union-attr]


class Prober:
    def __init__(self, port: int):
        cmd = [sys.executable, "-m", "bench.slow_clients", "--probe", str(port)]
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"

    def stop(self) -> list[tuple[float, float]]:
        """[(monotonic time at the end of a GET, its ms)]."""
        return [(at, ms) for at, ms in json.loads(self.proc.communicate("", timeout=60)[0])]


def figures(timed: list[tuple[float, float]], since: float, until: float = float("inf")) -> str:
    """p50 / p99 / max of the GETs that started in [since, until), and when the slowest started."""
    inside = [(at - ms / 1000, ms) for at, ms in timed if since <= at - ms / 1000 < until]
    if not inside:
        return "no GETs"
    ms = sorted(m for _, m in inside)
    p99 = ms[min(len(ms) - 1, int(0.99 * len(ms)))]
    start, worst = max(inside, key=lambda pair: pair[1])
    slowest = f"the slowest at +{start - since:.1f} s"
    return f"{statistics.median(ms):.1f} / {p99:.1f} / {worst:.1f} ms ({len(ms)} GETs, {slowest})"


async def hold(port: int, sent: bytes, give_up: float, opened: list[float]) -> float | None:
    """Seconds until the server closes the connection, or None if it is still open after
    `give_up`."""
    began = time.monotonic()  # before the connect: the server's clock for it starts later
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(sent)
    opened.append(time.monotonic())
    try:
        while await asyncio.wait_for(reader.read(65536), give_up - (time.monotonic() - began)):
            pass
        return time.monotonic() - began
    except (TimeoutError, ConnectionResetError):
        return None if time.monotonic() - began >= give_up else time.monotonic() - began
    finally:
        writer.close()


def connections(port: int, n: int, give_up: float) -> tuple[dict[str, list[float | None]], float]:
    """Seconds to close per connection, by kind; and when the last one was open (monotonic)."""

    async def go() -> list[float | None]:
        return await asyncio.gather(
            *(hold(port, KINDS[kinds[i]], give_up, opened) for i in range(n))
        )

    kinds, opened = [list(KINDS)[i % len(KINDS)] for i in range(n)], list[float]()
    out: dict[str, list[float | None]] = {kind: [] for kind in KINDS}
    for kind, took in zip(kinds, asyncio.run(go()), strict=True):
        out[kind].append(took)
    return out, max(opened)


def unread(port: int, n: int, max_chars: int = 5000) -> list[socket.socket]:
    socks = []
    for i in range(n):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        body = json.dumps({**STREAM, "seed": i, "max_chars": max_chars}).encode()
        head = (
            b"POST /api/generate/stream HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
        )
        sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        socks.append(sock)
    return socks


def read_all(sock: socket.socket) -> None:
    sock.settimeout(120)
    data = b""
    # the chunked body's end
    while not data.endswith(b"0\r\n\r\n") and (chunk := sock.recv(1 << 16)):
        data = data[-8:] + chunk
    sock.close()


def send_queues(port: int) -> int:
    """Bytes the kernel holds in the send buffers of the server's connections on `port` (ss's
    skmem w)."""
    out = subprocess.run(
        ["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
    )
    return sum(int(w) for w in re.findall(r"skmem:\(.*?,w(\d+),", out.stdout))


def memory(
    models_dir: Path, streams: int, bound: int, guarded: bool
) -> tuple[float, float, float, float, str]:
    """(RSS growth MB, its noise, kernel send queues MB, seconds to settle, what the engine showed)
    for `streams` unread streams.  The prefix cache is off (it has its own budget), and as many
    streams are first run and read to their end, so what grows is what the unread ones hold, not a
    first batch that size."""
    settings = {
        "max_active": max(64, streams),
        "stream_buffer_bytes": bound,
        "slow_client_s": 600,
        "prefix_cache_mb": 0,
    }
    proc, port = serve(models_dir, guarded, **settings)
    try:
        rss = []
        for _ in range(2):  # the second round shows how much RSS moves by itself
            for sock in unread(port, streams, max_chars=300):
                read_all(sock)
            time.sleep(1.0)
            rss.append(psutil.Process(proc.pid).memory_info().rss)
        began, socks = time.monotonic(), unread(port, streams)
        while (g := gauges(port)).get("charlstm_engine_sequences", 1) > 0 or g.get(
            "charlstm_queued_sequences", 1
        ) > 0:
            time.sleep(0.5)
        settled = time.monotonic() - began
        time.sleep(1.0)
        grown = (psutil.Process(proc.pid).memory_info().rss - rss[1]) / 2**20
        noise = (rss[1] - rss[0]) / 2**20
        kernel = send_queues(port) / 2**20
        g = gauges(port)
        shown = (
            f"{g['charlstm_active_sequences']:.0f} active, "
            f"{g['charlstm_engine_sequences']:.0f} stepping"
        )
        for sock in socks:
            sock.close()
        return grown, noise, kernel, settled, shown
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--streams", type=int, default=64)
    ap.add_argument("--limit-s", type=float, default=2.0)
    ap.add_argument("--bound", type=int, default=65536, help="CHARLSTM_STREAM_BUFFER_BYTES")
    ap.add_argument("--probe", type=int, help=argparse.SUPPRESS)  # the prober's own process
    args = ap.parse_args()
    if args.probe:
        return probe(args.probe)
    print(f"{heading('bench.slow_clients')}\nmodels {args.models_dir}\n")
    limit = args.limit_s
    limits = {"header_timeout_s": limit, "body_timeout_s": limit, "keep_alive_s": limit}
    proc, port = serve(args.models_dir, True, **limits)
    try:
        prober = Prober(port)
        quiet = time.monotonic()
        time.sleep(5)
        gc2 = gen2_collections(port)
        began = time.monotonic()
        closed, opened = connections(port, args.connections, limit + 30)
        timed = prober.stop()
        gc2 = gen2_collections(port) - gc2
    finally:
        proc.terminate()
        proc.wait(30)
    print(
        f"| {args.connections} connections, limits {limit:g} s | closed | "
        "seconds to close p50 / max |"
    )
    print("|---|---|---|")
    for kind, times in closed.items():
        done = [t for t in times if t is not None]
        span = f"{statistics.median(done):.2f} / {max(done):.2f}" if done else "-"
        print(f"| {kind} | {len(done)} of {len(times)} | {span} |")
    print(
        f"\n/healthz p50 / p99 / max, GETs every 10 ms; the server's full GCs meanwhile: {gc2:.0f}"
    )
    print(f"- alone (5 s before): {figures(timed, quiet, began)}")
    print(
        f"- while {args.connections} connections open ({opened - began:.1f} s): "
        f"{figures(timed, began, opened)}"
    )
    print(f"- while they are held and closed: {figures(timed, opened)}")
    proc, port = serve(args.models_dir, False)
    try:
        prober = Prober(port)
        began = time.monotonic()
        bare, opened = connections(port, args.connections, limit + 5)
        timed = prober.stop()
    finally:
        proc.terminate()
        proc.wait(30)
    still = sum(t is None for times in bare.values() for t in times)
    print(
        f"\nbare uvicorn (before): {still} of {args.connections} still open "
        f"after {limit + 5:g} s; /healthz while"
    )
    print(
        f"they open ({opened - began:.1f} s): {figures(timed, began, opened)}; "
        f"held: {figures(timed, opened)}\n"
    )
    target = args.streams * args.bound / 2**20
    print(
        f"| {args.streams} unread streams, 5 logprobs | server RSS growth (noise) | "
        "kernel send queues | together "
        f"(target < {target:.1f} MB) | settled in | engine shows |"
    )
    print("|---|---|---|---|---|---|")
    rows = (
        (f"guarded, {args.bound // 1024} KiB bound", True, args.bound),
        ("guarded, 4 KiB bound (mostly a request's own cost)", True, 4096),
        ("bare uvicorn, 64 MiB bound (before)", False, 64 * 2**20),
    )
    for label, guarded, bound in rows:
        grown, noise, kernel, settled, shown = memory(args.models_dir, args.streams, bound, guarded)
        together = f"{grown + kernel:.1f} MB"
        print(
            f"| {label} | {grown:.1f} MB ({noise:+.1f}) | {kernel:.1f} MB | {together} | "
            f"{settled:.1f} s | {shown} |"
        )


if __name__ == "__main__":
    main()
