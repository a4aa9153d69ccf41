"""Streaming through real HTTP against the engine in-process, on the same model in the same run.

    python -m bench.http [--models-dir DIR] [--chars 2000] [--streams 32]   (also `make bench`; 1-3
    min)

Starts the server (app/serve.py, as `make serve` runs it) on a free loopback port and streams
`/api/generate/stream` (through a minimal raw-socket client, so the client's own CPU stays small on
a small machine) with 1 client (three times, one after another) and with 32 at once, `--chars`
chars each; then drives a `model.engine.Engine` in this process with the same requests (same
prompt, seeds and sampling). Prints chars/s per stream and in aggregate, time to first char
p50/p95, the HTTP/in-process ratios (target ≥ 0.8; for time to first char the ratio is
in-process/HTTP, so higher is better there too) and the failed streams. Never passes or fails.
Without a model directory it saves a randomly initialised model of the bundled shape (2×512 LSTM,
embedding 64, 65 chars) to a temporary directory and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import httpx

from app.serve import command
from bench.machine import heading

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE_CHARS = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # 65
PROMPT = "ROMEO:\n"
DEFAULT_MODELS_DIR = ROOT / "model" / "pretrained"


@dataclass
class Run:
    """One stream's timings (seconds from its own request) and outcome."""

    ttfc: float | None = None
    total: float | None = None
    chars: int = 0
    failed: str | None = None


def random_model_dir(root: Path) -> Path:
    """A randomly initialised model of the bundled shape, saved as a complete model directory."""
    from model.artifact import save_artifact
    from model.cells.network import NetworkConfig, build_model
    from model.vocab import Vocab

    vocab = Vocab.from_chars(SHAKESPEARE_CHARS)
    config = NetworkConfig(
        vocab_size=len(vocab), embedding_dim=64, units=512, layers=2, dropout=0.0
    )
    model = build_model(config)
    card = {
        "name": "random-2x512",
        "vocab_size": len(vocab),
        "params": int(model.count_params()),
        "config": config.to_dict(),
        "note": "randomly initialised, for benchmarks",
    }
    save_artifact(root / "random-2x512", model, vocab, card)
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(models_dir: Path, chars: int, streams: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CHARLSTM_MODELS_DIR": str(models_dir),
        "CHARLSTM_MAX_CHARS": str(max(chars, 5000)),
        "CHARLSTM_MAX_ACTIVE": str(max(64, streams)),
        "CHARLSTM_LOG_LEVEL": "warning",
    }
    cmd = command("127.0.0.1", port, "--no-access-log", "--log-level", "warning")
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"the server did not start:\n{proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server was not ready within 180 s")


async def http_stream(host: str, port: int, body: dict[str, Any]) -> Run:
    """One stream over a raw socket: a client this light leaves the 2 cores to the server."""
    run, payload = Run(), json.dumps(body).encode()
    head = (
        f"POST /api/generate/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(head.encode() + payload)
        status = await reader.readline()
        if b" 200 " not in status:
            return Run(failed=status.decode(errors="replace").strip())
        seen = b""  # the tail of what came, for markers split across reads
        while chunk := await reader.read(65536):
            seen = seen[-64:] + chunk
            if run.ttfc is None and b'data: {"text"' in seen:
                run.ttfc = time.perf_counter() - start
            if b"event: error" in seen:
                run.failed = "event: error"
            if b"event: done" in seen and run.total is None:
                run.total = time.perf_counter() - start
            if run.total is not None:
                seen += await reader.read()  # the rest of the done event, then the server closes
                done = seen[seen.index(b"event: done") :].split(b"data: ", 1)[1].split(b"\n", 1)[0]
                run.chars = json.loads(done)["usage"]["generated_chars"]
                break
        writer.close()
    except (OSError, ValueError, KeyError, IndexError) as exc:
        run.failed = type(exc).__name__
    if run.total is None and run.failed is None:
        run.failed = "no done event"
    return run


def http_round(url: str, bodies: list[dict[str, Any]]) -> tuple[list[Run], float]:
    host, port = url.removeprefix("http://").split(":")

    async def go() -> tuple[list[Run], float]:
        start = time.perf_counter()
        runs = await asyncio.gather(*(http_stream(host, int(port), b) for b in bodies))
        return list(runs), time.perf_counter() - start

    return asyncio.run(go())


class TimingSink:
    def __init__(self, start: float, done: threading.Event, left: list[int]):
        self.run, self.start, self.done, self.left = Run(), start, done, left

    def on_chunk(self, chunk: Any) -> None:
        if self.run.ttfc is None:
            self.run.ttfc = time.perf_counter() - self.start
        self.run.chars += len(chunk.text)

    def _end(self) -> None:
        self.left[0] -= 1  # only the engine thread calls this
        if not self.left[0]:
            self.done.set()

    def on_done(self, generation: Any) -> None:
        self.run.total = time.perf_counter() - self.start
        self._end()

    def on_error(self, exc: BaseException) -> None:
        self.run.failed = type(exc).__name__
        self._end()


def healthz_round(url: str, bodies: list[dict[str, Any]]) -> list[float]:
    """Seconds each /healthz took, probed every 20 ms while the streams of `bodies` run over HTTP.
    (tests/test_server_faults.py checks only that probes are answered between stream events.)"""
    host, port = url.removeprefix("http://").split(":")

    async def go() -> list[float]:
        streams = asyncio.gather(*(http_stream(host, int(port), b) for b in bodies))
        latencies = []
        async with httpx.AsyncClient(base_url=url, timeout=30) as probe:
            while not streams.done():
                start = time.perf_counter()
                await probe.get("/healthz")
                latencies.append(time.perf_counter() - start)
                await asyncio.sleep(0.02)
        await streams
        return latencies

    return asyncio.run(go())


def engine_round(engine: Any, bodies: list[dict[str, Any]]) -> tuple[list[Run], float]:
    from model.sampling import GenerationRequest, SamplingParams

    done, left = threading.Event(), [len(bodies)]
    start = time.perf_counter()
    sinks = []
    for b in bodies:
        sink = TimingSink(time.perf_counter(), done, left)
        request = GenerationRequest(
            b["prompt"], b["max_chars"], SamplingParams(b["temperature"]), seed=b["seed"]
        )
        engine.submit(request, sink)
        sinks.append(sink)
    done.wait(600)
    return [s.run for s in sinks], time.perf_counter() - start


@dataclass
class Figures:
    per_stream: float  # median chars/s of one stream, request to last char
    aggregate: float  # all chars / wall time of the round(s)
    ttfc50: float
    ttfc95: float
    failed: int


def figures(rounds: list[tuple[list[Run], float]]) -> Figures:
    runs = [r for rs, _ in rounds for r in rs]
    ok = [r for r in runs if r.failed is None and r.total]
    ttfc = sorted(r.ttfc for r in ok if r.ttfc is not None) or [float("nan")]
    p95 = ttfc[min(len(ttfc) - 1, round(0.95 * (len(ttfc) - 1)))]
    per_stream = statistics.median(r.chars / r.total for r in ok if r.total) if ok else 0.0
    aggregate = sum(r.chars for r in ok) / sum(wall for _, wall in rounds)
    return Figures(per_stream, aggregate, statistics.median(ttfc), p95, len(runs) - len(ok))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=32)
    args = parser.parse_args()

    from model.runtime import configure, import_tensorflow

    configure()  # numba: kernel cache, threading layer (model/runtime)

    import_tensorflow()  # its load-time log lines stay off the tables (model/runtime/native_log.py)
    from app.registry import StartupError, load_model, model_dirs

    with tempfile.TemporaryDirectory() as tmp:
        models_dir = args.models_dir
        try:
            model_dir = model_dirs(models_dir)[0]
            note = f"model: {model_dir}"
        except StartupError:
            if args.models_dir != DEFAULT_MODELS_DIR:
                raise
            models_dir = random_model_dir(Path(tmp))
            model_dir = models_dir / "random-2x512"
            note = (
                f"model: RANDOMLY INITIALISED 2×512 (no model under {args.models_dir}), "
                "saved to a temp dir"
            )
        loaded = load_model(model_dir, max_active=max(64, args.streams))
        server, url = start_server(models_dir, args.chars, args.streams)
        try:
            results = measure(loaded, url, args.chars, args.streams)
            bodies = [
                {"prompt": PROMPT, "max_chars": args.chars, "seed": i} for i in range(args.streams)
            ]
            probes = sorted(healthz_round(url, bodies))
        finally:
            server.terminate()
            server.wait(30)
            loaded.engine.stop()
    report(results, note, args.chars, args.streams)
    p50, p95 = probes[len(probes) // 2], probes[int(0.95 * (len(probes) - 1))]
    print(
        f"/healthz while {args.streams} streams run: p50 {1000 * p50:.1f} ms, "
        f"p95 {1000 * p95:.1f} ms "
        f"({len(probes)} probes)"
    )


def measure(loaded: Any, url: str, chars: int, streams: int) -> dict[tuple[str, str], Figures]:
    def bodies(n: int, first_seed: int) -> list[dict[str, Any]]:
        return [
            {
                "prompt": PROMPT,
                "max_chars": chars,
                "temperature": 0.8,
                "seed": first_seed + i,
                "model": loaded.name,
            }
            for i in range(n)
        ]

    loaded.engine.start()
    http_round(url, bodies(1, 99))  # warm-up: first-request costs on both paths
    engine_round(loaded.engine, bodies(1, 99))
    out = {}
    for label, n, repeats in (("1 stream", 1, 3), (f"{streams} streams", streams, 1)):
        engine_runs, http_runs = [], []
        for rep in range(repeats):  # alternated, so slow spells of a shared machine hit both paths
            engine_runs.append(engine_round(loaded.engine, bodies(n, 1000 * rep)))
            http_runs.append(http_round(url, bodies(n, 1000 * rep)))
        out[(label, "in-process")] = figures(engine_runs)
        out[(label, "HTTP")] = figures(http_runs)
    return out


def report(results: dict[tuple[str, str], Figures], note: str, chars: int, streams: int) -> None:
    print(f"bench.http: {chars} chars per stream, prompt {PROMPT!r}, temperature 0.8; {note}")
    print(heading("bench.http"))
    print(
        "(the load average is read at the end; the machine is shared: other work runs alongside)\n"
    )
    head = f"{'scenario':<12} {'path':<11} {'chars/s per stream':>18} {'aggregate chars/s':>18} "
    head += f"{'TTFC p50 ms':>12} {'TTFC p95 ms':>12} {'failed':>7}"
    print(head)
    print("-" * len(head))
    for (label, path), f in results.items():
        print(
            f"{label:<12} {path:<11} {f.per_stream:>18.0f} {f.aggregate:>18.0f} "
            f"{1000 * f.ttfc50:>12.1f} "
            f"{1000 * f.ttfc95:>12.1f} {f.failed:>7}"
        )
    print("\nHTTP / in-process (target ≥ 0.8; TTFC as in-process / HTTP)")
    for label in dict.fromkeys(label for label, _ in results):
        h, e = results[(label, "HTTP")], results[(label, "in-process")]
        print(
            f"{label:<12} per stream {h.per_stream / e.per_stream:5.2f}   "
            f"aggregate {h.aggregate / e.aggregate:5.2f}"
            f"   TTFC p50 {e.ttfc50 / h.ttfc50:5.2f}   TTFC p95 {e.ttfc95 / h.ttfc95:5.2f}"
        )
    print(f"\nfailed streams: {sum(f.failed for f in results.values())}")


if __name__ == "__main__":
    main()
