"""Mixed load over real HTTP: long streams beside long prompts and short requests, the numbers users
feel.

    python -m bench.mixed [--seconds 60] [--model-dir DIR]      (also `make bench`; about 1.5 ×
    --seconds)

Starts `uvicorn app.main:app` on a free loopback port with the bundled model (bench/http.py's
`start_server`), then, for --seconds: 16 streams that never end by themselves; 6 clients that each
send unique 2,000-char prompts (slices of the model's corpus) with max_chars 20, one after the
other; 6 that send 20-char prompts with max_chars 100 the same way.  Before that, in the same run:
each kind of request alone (3 times, median) and the 16 streams alone, for the ratios. Prints p50,
p99 and max of whole-request time and of time to first char by kind, the failures (a 429 is one),
the streams' aggregate chars/s against their speed alone, and each issue-25 target met or not.
Never passes or fails.  The CPU model and the instruction set the kernels are compiled for (numba's
target, or NUMBA_CPU_NAME / NUMBA_CPU_FEATURES when set: bench/machine.py) head the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.http import ROOT, Run, http_stream, start_server
from bench.machine import heading

STREAMS, LONG_CLIENTS, SHORT_CLIENTS = 16, 6, 6
LONG_PROMPT, LONG_MAX, SHORT_PROMPT, SHORT_MAX = 2000, 20, 20, 100
STREAM_MAX = 1_000_000  # the streams are cut at the end, never finished
DEFAULT_MODEL = ROOT / "model" / "pretrained" / "shakespeare"


@dataclass
class Stream:
    """One endless stream's chars as they arrived: (seconds since the bench's clock zero, chars)."""

    arrivals: list[tuple[float, int]] = field(default_factory=list)
    failed: str | None = None

    def chars_between(self, start: float, end: float) -> int:
        return sum(n for t, n in self.arrivals if start <= t < end)


async def read_stream(
    host: str, port: int, body: dict[str, Any], stream: Stream, until: asyncio.Event
) -> None:
    """Read an SSE stream's text events (chunked transfer decoded) until `until` is set."""
    payload = json.dumps(body).encode()
    head = (
        f"POST /api/generate/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head.encode() + payload)
        if b" 200 " not in (status := await reader.readline()):
            stream.failed = status.decode(errors="replace").strip()
            return
        while (await reader.readline()) not in (b"\r\n", b""):  # headers
            pass
        pending = b""
        while not until.is_set():
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                stream.failed = "the stream ended"
                break
            pending += (await reader.readexactly(size + 2))[:-2]
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.startswith(b'data: {"text"'):
                    stream.arrivals.append((time.perf_counter(), len(json.loads(line[6:])["text"])))
        writer.close()
    except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
        stream.failed = type(exc).__name__


class Prompts:
    """Unique prompts: slices of the model's corpus at random offsets (no two share a cached
    prefix)."""

    def __init__(self, model_dir: Path, seed: int = 0):
        path = model_dir / "memory.txt"
        self.text = (
            path.read_text()
            if path.exists()
            else "ROMEO:\nWhat light through yonder window breaks?\n" * 5000
        )
        self.rng = random.Random(seed)

    def take(self, chars: int) -> str:
        start = self.rng.randrange(len(self.text) - chars)
        return self.text[start : start + chars]


def body(prompt: str, max_chars: int, seed: int) -> dict[str, Any]:
    return {"prompt": prompt, "max_chars": max_chars, "temperature": 0.8, "seed": seed}


async def client(
    host: str, port: int, prompts: Prompts, kind: tuple[int, int], end: float, runs: list[Run]
) -> None:
    """One closed-loop client: a request, then the next as soon as it is answered (a second after a
    refusal, as a client honouring Retry-After would), until `end`."""
    while time.perf_counter() < end:
        runs.append(await http_stream(host, port, body(prompts.take(kind[0]), kind[1], len(runs))))
        if runs[-1].failed is not None:
            await asyncio.sleep(1.0)


READS = ("/api/gates", "/api/score", "/api/influence")  # what a reader client sends, in turn


async def reader(url: str, prompts: Prompts, end: float, runs: dict[str, list[Run]]) -> None:
    """A closed-loop client reading the model beside the streams (--readers): gates of 16 cells
    and a score, each on 2,000 chars, then an influence with 256 chars of context, in turn."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        turn = 0
        while time.perf_counter() < end:
            route = READS[turn % len(READS)]
            text = prompts.take(LONG_PROMPT if route != "/api/influence" else 257)
            payload: dict[str, Any] = {"text": text}
            if route == "/api/gates":
                payload.update(layer=1, units=list(range(16)))
            elif route == "/api/influence":
                payload["position"] = 256
            began = time.perf_counter()
            response = await http.post(route, json=payload)
            took = time.perf_counter() - began
            failed = None if response.status_code == 200 else f"{route} {response.status_code}"
            runs[route].append(
                Run(took, took, failed=failed) if failed is None else Run(failed=failed)
            )
            turn += 1


async def streams_alone(host: str, port: int, seconds: float) -> float:
    """Aggregate chars/s of the 16 streams with nothing else running (after their first second)."""
    done, streams = asyncio.Event(), [Stream() for _ in range(STREAMS)]
    tasks = [
        asyncio.create_task(read_stream(host, port, body("ROMEO:\n", STREAM_MAX, i), s, done))
        for i, s in enumerate(streams)
    ]
    start = time.perf_counter() + 1.0
    await asyncio.sleep(1.0 + seconds)
    done.set()
    await asyncio.gather(*tasks)
    return sum(s.chars_between(start, start + seconds) for s in streams) / seconds


async def mixed(
    host: str, port: int, prompts: Prompts, seconds: float, readers: int = 0
) -> tuple[dict[str, list[Run]], float, int]:
    """The mix for `seconds`; returns (runs by kind, streams' aggregate chars/s, streams that
    failed)."""
    done, streams = asyncio.Event(), [Stream() for _ in range(STREAMS)]
    tasks = [
        asyncio.create_task(read_stream(host, port, body("ROMEO:\n", STREAM_MAX, 100 + i), s, done))
        for i, s in enumerate(streams)
    ]
    await asyncio.sleep(1.0)  # the streams are running before the first prompt arrives
    start = time.perf_counter()
    end = start + seconds
    runs: dict[str, list[Run]] = {"2,000-char prompt": [], "20-char prompt": []}
    clients = [
        client(host, port, prompts, (LONG_PROMPT, LONG_MAX), end, runs["2,000-char prompt"])
        for _ in range(LONG_CLIENTS)
    ]
    clients += [
        client(host, port, prompts, (SHORT_PROMPT, SHORT_MAX), end, runs["20-char prompt"])
        for _ in range(SHORT_CLIENTS)
    ]
    if readers:
        runs.update({route: [] for route in READS})
        clients += [reader(f"http://{host}:{port}", prompts, end, runs) for _ in range(readers)]
    # requests still open at `end` finish; the streams run on meanwhile
    await asyncio.gather(*clients)
    done.set()
    await asyncio.gather(*tasks)
    aggregate = sum(s.chars_between(start, end) for s in streams) / seconds
    return runs, aggregate, sum(s.failed is not None for s in streams)


async def alone(host: str, port: int, prompts: Prompts, kind: tuple[int, int]) -> Run:
    """The median of 3 requests of one kind with nothing else running."""
    runs = [
        await http_stream(host, port, body(prompts.take(kind[0]), kind[1], i)) for i in range(3)
    ]
    ok = [r for r in runs if r.failed is None and r.total is not None and r.ttfc is not None]
    if not ok:
        return Run(failed=runs[0].failed)
    return Run(
        statistics.median(r.ttfc for r in ok if r.ttfc),
        statistics.median(r.total for r in ok if r.total),
    )


def spread(values: list[float]) -> str:
    """p50/p99/max in seconds."""
    if not values:
        return "-"
    return "/".join(
        f"{v:.2f}" for v in (percentile(values, 0.5), percentile(values, 0.99), max(values))
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="length of the mixed load (default 60)"
    )
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL)
    parser.add_argument(
        "--readers",
        type=int,
        default=0,
        help="clients reading the model beside the mix: gates, score, influence in turn",
    )
    args = parser.parse_args()
    if not (args.model_dir / "model.keras").exists():
        raise SystemExit(f"no model at {args.model_dir} (bench.mixed measures the bundled model)")
    prompts = Prompts(args.model_dir)
    server, url = start_server(
        args.model_dir, STREAM_MAX, STREAMS + LONG_CLIENTS + SHORT_CLIENTS + args.readers
    )
    host, port = url.removeprefix("http://").split(":")
    try:

        async def go() -> tuple[dict[str, Run], float, tuple[dict[str, list[Run]], float, int]]:
            await http_stream(host, int(port), body("ROMEO:\n", 5, 0))  # warm-up
            lone = {
                "2,000-char prompt": await alone(host, int(port), prompts, (LONG_PROMPT, LONG_MAX)),
                "20-char prompt": await alone(host, int(port), prompts, (SHORT_PROMPT, SHORT_MAX)),
            }
            streams = await streams_alone(host, int(port), max(5.0, args.seconds / 4))
            return lone, streams, await mixed(host, int(port), prompts, args.seconds, args.readers)

        lone, streams_speed, (runs, streams_mixed, streams_failed) = asyncio.run(go())
    finally:
        server.terminate()
        server.wait(30)
    report(args, lone, streams_speed, runs, streams_mixed, streams_failed)


def report(
    args: argparse.Namespace,
    lone: dict[str, Run],
    streams_speed: float,
    runs: dict[str, list[Run]],
    streams_mixed: float,
    streams_failed: int,
) -> None:
    print(
        f"bench.mixed: {args.seconds:g} s of {STREAMS} streams + {LONG_CLIENTS} clients × "
        f"{LONG_PROMPT:,}-char prompts (max_chars {LONG_MAX}) + {SHORT_CLIENTS} clients × "
        f"{SHORT_PROMPT}-char prompts (max_chars {SHORT_MAX}); model {args.model_dir}"
    )
    print(heading("bench.mixed"))
    print("(the load average is read at the end)\n")
    head = (
        f"{'kind':<18} {'requests':>8} {'failed':>6}   "
        f"{'whole p50/p99/max s':>20}   {'first char p50/p99/max':>22}"
    )
    print(head + "   alone: whole, first char s")
    print("-" * (len(head) + 30))
    stats = {}
    for kind, kind_runs in runs.items():
        ok = [r for r in kind_runs if r.failed is None and r.total is not None]
        whole = [r.total for r in ok if r.total is not None]
        first = [r.ttfc for r in ok if r.ttfc is not None]
        stats[kind] = (percentile(whole, 0.99), max(whole, default=float("nan")))
        solo = lone.get(kind)
        if solo is None:
            solo_text = "(a read: whole request)"
        else:
            solo_text = (
                f"{solo.total:.2f}, {solo.ttfc:.2f}"
                if solo.total and solo.ttfc
                else f"failed ({solo.failed})"
            )
        print(
            f"{kind:<18} {len(kind_runs):>8} {len(kind_runs) - len(ok):>6}   {spread(whole):>20}   "
            f"{spread(first):>22}   {solo_text}"
        )
    reasons = sorted({r.failed for rs in runs.values() for r in rs if r.failed})
    keep = streams_mixed / streams_speed if streams_speed else float("nan")
    print(
        f"\nstreams: {streams_mixed:,.0f} chars/s in aggregate in the mix, "
        f"{streams_speed:,.0f} alone: "
        f"keep {keep:.2f}; {streams_failed} failed"
    )
    failed = sum(
        len(rs) - sum(r.failed is None and r.total is not None for r in rs) for rs in runs.values()
    )
    if reasons:
        print(f"failures: {', '.join(reasons)}")
    long_alone = lone["2,000-char prompt"].total or float("nan")
    bound = max(3.0, 6 * long_alone)
    (long_p99, long_max), (short_p99, _) = stats["2,000-char prompt"], stats["20-char prompt"]
    print("\ntargets (quiet machine):")
    for label, met in (
        (f"no failed request ({failed + streams_failed})", failed + streams_failed == 0),
        (
            (
                f"2,000-char p99 {long_p99:.2f} s ≤ max(3 s, 6 × {long_alone:.2f} s alone) "
                f"= {bound:.2f}"
            ),
            long_p99 <= bound,
        ),
        (f"2,000-char max {long_max:.2f} s ≤ 10 s", long_max <= 10),
        (f"20-char p99 {short_p99:.2f} s ≤ 2 s", short_p99 <= 2),
        (f"streams keep {keep:.2f} ≥ 0.5 of their speed alone", keep >= 0.5),
    ):
        print(f"  {'✓' if met else '✗'} {label}")


if __name__ == "__main__":
    main()
