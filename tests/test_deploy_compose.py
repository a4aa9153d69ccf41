"""deploy/docker-compose.yml brought up for real: 2 replicas of the server image behind the nginx
balancer, in the compose project's own Docker network, the balancer published on a free loopback
port.

    .venv/bin/pytest -m docker tests/test_deploy_compose.py      (-s prints the Continue timings)

- streams go through unbuffered, marked with the replica that served them (X-Upstream);
- a Continue sent with the same X-Client-Id lands on the replica of the text it continues, and its
  first char comes as fast as from that replica directly (and far faster than from the other one);
- 200 streams with one replica killed (SIGKILL) half-way: every request sent after the kill
  succeeds, and every stream running on the survivor at the kill finishes.

The server image is tests/test_docker.py's (same tag, same build: all cache hits when that test
has built it; DEPLOY_TEST_IMAGE names another one instead); the balancer's image is built from
deploy/nginx on the same base. Skipped only where no engine or no docker-compose can be had
(scripts/docker_engine.sh, scripts/docker_compose.sh).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.test_docker import build_test_image, start_engine

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "deploy" / "docker-compose.yml"
LB_IMAGE = "char-lstm-lb:test"
MAX_ACTIVE = 128  # per replica: the survivor takes the dead one's clients on top of its own
KILL_STREAMS = 100  # streams running when a replica is killed; as many again are sent after it
KILL_CHARS = 2500  # long enough that most are still running at the kill, on a quiet machine too
AFTER_AT_ONCE = 25  # those sent after the kill, at most this many at once

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]


@dataclass
class Stack:
    project: str
    url: str  # the balancer
    env: dict[str, str]

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "-p", self.project, "-f", str(COMPOSE_FILE), *args]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env)
        if check and run.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({run.returncode}):\n{run.stderr[-3000:]}"
            )
        return run

    def replicas(self) -> dict[str, str]:
        """Container name → its address:port in the project's network, for each server replica."""
        names = self.compose("ps", "-q", "app").stdout.split()
        found = {}
        for container in names:
            template = "{{.Name}} {{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}"
            run = subprocess.run(
                ["docker", "inspect", "-f", template, container], capture_output=True, text=True
            )
            name, _, address = run.stdout.strip().lstrip("/").partition(" ")
            found[name] = f"{address}:8000"
        return found

    def logs(self) -> str:
        run = self.compose("logs", "--no-color", "--tail", "40", check=False)
        return run.stdout + run.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    start_engine()
    installed = subprocess.run(
        ["bash", str(ROOT / "scripts/docker_compose.sh")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if installed.returncode != 0:
        pytest.skip(f"no docker-compose: {(installed.stderr.strip().splitlines() or ['?'])[-1]}")
    # DEPLOY_TEST_IMAGE: an image already built from this tree (e.g. by `make docker-image`)
    # instead.
    image = os.environ.get("DEPLOY_TEST_IMAGE") or build_test_image(
        tmp_path_factory.mktemp("docker-context")
    )
    port = free_port()
    env = os.environ | {
        "APP_IMAGE": image,
        "LB_IMAGE": LB_IMAGE,
        "LB_PORT": str(port),
        "REPLICAS": "2",
        "MAX_ACTIVE": str(MAX_ACTIVE),
    }
    stack = Stack(f"charlstm-test-{port}", f"http://127.0.0.1:{port}", env)
    stack.compose("down", "-t", "1", check=False)
    try:
        stack.compose("build", "lb", timeout=900)
        # returns once both replicas are healthy and nginx started
        stack.compose("up", "-d", timeout=600)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ready(stack.url):
            time.sleep(0.5)
        assert ready(stack.url), f"the balancer's /readyz never answered 200:\n{stack.logs()}"
        assert len(stack.replicas()) == 2
        yield stack
    finally:
        stack.compose("down", "-t", "5", check=False, timeout=120)


def ready(url: str) -> bool:
    try:
        return httpx.get(url + "/readyz", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Stream:
    """One streamed generation as the client saw it."""

    status: int = 0
    upstream: str = ""  # the replica that answered: the last address in X-Upstream
    tried: str = ""  # X-Upstream itself: every replica nginx tried, in order
    first_char_s: float | None = None
    text: str = ""
    done: dict[str, object] | None = None
    error: str = ""
    started: threading.Event = field(default_factory=threading.Event)
    ended_at: float = 0.0  # time.monotonic() when the stream closed


def stream(
    url: str, prompt: str, max_chars: int, client_id: str, seed: int = 0, into: Stream | None = None
) -> Stream:
    """POST /api/generate/stream, reading every event into `into` (or a new Stream); never
    raises."""
    result, sent = into or Stream(), time.perf_counter()
    body = {"prompt": prompt, "max_chars": max_chars, "seed": seed}
    try:
        with httpx.stream(
            "POST",
            url + "/api/generate/stream",
            json=body,
            headers={"X-Client-Id": client_id},
            timeout=60,
        ) as response:
            result.status = response.status_code
            result.tried = response.headers.get("x-upstream", "")
            result.upstream = result.tried.split(",")[-1].strip()
            event = "message"
            for line in response.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    data = json.loads(line.removeprefix("data:"))
                    if event == "message":
                        result.first_char_s = result.first_char_s or time.perf_counter() - sent
                        result.text += data["text"]
                        result.started.set()
                    elif event == "done":
                        result.done = data
                    event = "message"
    except (httpx.HTTPError, ValueError) as exc:
        result.error = repr(exc)
    result.ended_at = time.monotonic()
    result.started.set()
    return result


def finished(result: Stream, max_chars: int) -> bool:
    return (
        result.status == 200
        and result.done is not None
        and result.done["finish_reason"] == "length"
        and len(result.text) == max_chars
    )


def test_streams_go_through_unbuffered_with_the_replica_named(stack: Stack) -> None:
    result = stream(stack.url, "ROMEO:", 1500, "writer-unbuffered")
    assert finished(result, 1500), result
    assert result.upstream in stack.replicas().values()
    # The first chars arrive long before the end: nothing holds the stream back.
    started = time.perf_counter()
    with httpx.stream(
        "POST", stack.url + "/api/generate/stream", json={"prompt": "", "max_chars": 1500}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        next(line for line in lines if line.startswith("data:") and '"text"' in line)
        first = time.perf_counter() - started
        for _ in lines:
            pass
        total = time.perf_counter() - started
    assert first < total / 3, f"first chars after {first:.2f} s of a {total:.2f} s stream"


def test_each_client_id_sticks_to_one_replica_and_the_ids_spread_over_both(stack: Stack) -> None:
    """nginx's workers each pick the replica: they must agree (consistent hashing on one ring)."""
    homes: dict[str, set[str]] = {}
    for round_ in range(4):
        for i in range(12):
            result = stream(stack.url, "A", 1, f"sticky-{i}", seed=round_)
            assert finished(result, 1), result
            homes.setdefault(f"sticky-{i}", set()).add(result.tried)
    assert all(len(tried) == 1 for tried in homes.values()), homes
    assert {next(iter(tried)) for tried in homes.values()} == set(stack.replicas().values()), homes


def test_continue_lands_on_the_replica_of_its_text_and_starts_as_fast_as_direct(
    stack: Stack,
) -> None:
    replicas = set(stack.replicas().values())
    through, direct, other = [], [], []
    for writer in range(3):
        client_id = f"writer-{writer}"
        first = stream(stack.url, "ROMEO:", 1500, client_id, seed=writer)
        assert finished(first, 1500), first
        continuation = "ROMEO:" + first.text  # what the page's Continue sends
        again = stream(stack.url, continuation, 20, client_id, seed=writer)
        assert finished(again, 20), again
        assert again.tried == first.tried == first.upstream, (
            f"{client_id}: text on {first.tried}, Continue on {again.tried}"
        )
        through.append(again.first_char_s or 0.0)
        # The same Continue straight to its replica, and to the other one (whose cache lacks the
        # text).
        home = stream(f"http://{first.upstream}", continuation, 20, client_id, seed=writer)
        (away,) = replicas - {first.upstream}
        cold = stream(f"http://{away}", continuation, 20, client_id, seed=writer)
        assert finished(home, 20) and finished(cold, 20)
        assert home.text == again.text == cold.text, (
            "a Continue gives the same text wherever it runs"
        )
        direct.append(home.first_char_s or 0.0)
        other.append(cold.first_char_s or 0.0)
    t, d, o = (statistics.median(x) * 1e3 for x in (through, direct, other))
    print(
        f"\nContinue of 1,506 chars, first char (median of 3, ms): "
        f"balancer {t:.1f}, direct {d:.1f}, other {o:.1f}"
    )
    # Within 2x of direct; a few ms of slack for the extra hop on a loaded 2-core machine.
    assert t <= max(2 * d, d + 25), f"through the balancer {t:.1f} ms, direct {d:.1f} ms"


def test_replica_killed_half_way_new_requests_succeed_and_survivor_streams_finish(
    stack: Stack,
) -> None:
    replicas = stack.replicas()
    victim, survivor = sorted(replicas)  # container names: <project>_app_1, <project>_app_2
    pool = ThreadPoolExecutor(max_workers=KILL_STREAMS)
    # Half: streams long enough to be running when the replica dies, spread over both by client id.
    before = [Stream() for _ in range(KILL_STREAMS)]
    futures = [
        pool.submit(stream, stack.url, "ROMEO:", KILL_CHARS, f"before-{i}", i, before[i])
        for i in range(KILL_STREAMS)
    ]
    assert all(s.started.wait(120) for s in before), "not every stream started within 120 s"
    killed_at = time.monotonic()
    subprocess.run(["docker", "kill", victim], check=True, capture_output=True, timeout=60)
    # The other half, sent after the kill: among them clients whose hash points at the dead replica.
    with ThreadPoolExecutor(max_workers=AFTER_AT_ONCE) as senders:
        after = list(
            senders.map(
                lambda i: stream(stack.url, "ROMEO:", 200, f"after-{i}", i), range(KILL_STREAMS)
            )
        )
    for f in futures:
        f.result(timeout=300)
    pool.shutdown()
    took = time.monotonic() - killed_at

    failed_after = [
        (i, s.status, s.error, s.upstream) for i, s in enumerate(after) if not finished(s, 200)
    ]
    assert failed_after == [], (
        f"{len(failed_after)} requests sent after the kill failed: {failed_after[:5]}"
    )
    assert {s.upstream for s in after} == {replicas[survivor]}
    on_survivor = [s for s in before if s.upstream == replicas[survivor]]
    on_victim = [s for s in before if s.upstream == replicas[victim]]
    assert len(on_survivor) >= 10 and len(on_victim) >= 10, (
        "the client ids did not spread over both replicas"
    )
    running = [s for s in on_survivor if s.ended_at > killed_at]
    assert len(running) >= 10, (
        f"only {len(running)} streams were still running on the survivor at the kill"
    )
    unfinished = [s for s in on_survivor if not finished(s, KILL_CHARS)]
    assert unfinished == [], (
        f"{len(unfinished)} of {len(on_survivor)} streams on the survivor did not finish"
    )
    print(
        f"\n{len(on_victim)} streams on the killed replica, "
        f"{len(on_survivor)} on the survivor (all finished, "
        f"{len(running)} of them running at the kill); "
        f"{KILL_STREAMS} sent after the kill, all finished; {took:.1f} s from the kill to the last"
    )
