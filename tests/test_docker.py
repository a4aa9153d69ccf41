"""The Docker image built from this repository and run for real: health, a streamed generation,
a non-root process, HEALTHCHECK, and a clean `docker stop`.

    .venv/bin/pytest -m docker tests/test_docker.py      (make test runs it too)

The image is built from a temporary copy of the repository (tracked and untracked, non-ignored
files) holding the bundled model when it exists and a tiny stand-in named "shakespeare" otherwise,
so the test never waits on a training run. The container runs with --network host (the engine
here has no bridge), --read-only and a tmpfs /tmp, on a free port. Skipped only where no engine
can be started (scripts/docker_engine.sh says why).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import build_tiny_model_dir, free_port

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "char-lstm:test"
BUNDLED = Path("model/pretrained/shakespeare")
STOP_GRACE_S = (
    10  # docker stop's default before SIGKILL; the image's CMD lets requests finish for 4 s
)

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]


def docker(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and run.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} failed ({run.returncode}):\n{run.stderr[-3000:]}"
        )
    return run


@pytest.fixture(scope="module")
def engine() -> None:
    start_engine()


def start_engine() -> None:
    """A running Docker engine (scripts/docker_engine.sh), or the calling test is skipped saying
    why."""
    run = subprocess.run(
        ["bash", str(ROOT / "scripts/docker_engine.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode != 0:
        reason = (run.stderr.strip().splitlines() or ["scripts/docker_engine.sh failed"])[-1]
        pytest.skip(f"no Docker engine could be started: {reason}")


def copy_repository(dest: Path) -> None:
    """The files a fresh clone plus this work tree's new files would hold (never .venv,
    checkpoints)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if src.is_file():  # tracked files deleted in the work tree are skipped
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


@pytest.fixture(scope="module")
def image(engine: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_test_image(tmp_path_factory.mktemp("docker-context"))


def build_test_image(context: Path) -> str:
    """Build IMAGE from a copy of the repository in `context` (tests/test_deploy_compose.py runs it
    too: a second build of the same files is all cache hits, seconds)."""
    copy_repository(context)
    if not (context / BUNDLED / "model.keras").is_file():
        shutil.rmtree(context / BUNDLED, ignore_errors=True)
        build_tiny_model_dir(context / BUNDLED, name="shakespeare")
    run = subprocess.run(
        ["bash", str(ROOT / "scripts/docker_image.sh"), IMAGE, str(context)],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, f"image build failed:\n{(run.stdout + run.stderr)[-4000:]}"
    return IMAGE


@dataclass
class Container:
    name: str
    url: str
    started: float  # time.monotonic() at `docker run`

    def logs(self) -> str:
        run = docker("logs", self.name, check=False)
        return run.stdout + run.stderr

    def inspect(self, template: str) -> str:
        return docker("inspect", "-f", template, self.name).stdout.strip()

    def wait_for(self, path: str, within_s: float) -> float:
        """Seconds since start when `path` first answered 200; fails with the logs otherwise."""
        while time.monotonic() - self.started < within_s:
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            if self.inspect("{{.State.Running}}") != "true":
                break
            time.sleep(0.25)
        raise AssertionError(
            f"{path} did not answer 200 within {within_s} s:\n{self.logs()[-3000:]}"
        )


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[Container]:
    port = free_port()
    name = f"charlstm-test-{port}"
    docker("rm", "-f", name, check=False)
    started = time.monotonic()
    # A short health interval so HEALTHCHECK's verdict arrives in seconds, not the image's 30 s.
    docker(
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "host",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "-e",
        f"UVICORN_PORT={port}",
        "--health-interval",
        "2s",
        "--health-start-period",
        "60s",
        image,
    )
    yield Container(name, f"http://127.0.0.1:{port}", started)
    docker("rm", "-f", name, check=False)


def test_healthz_answers_within_60_seconds(container: Container) -> None:
    container.wait_for("/healthz", within_s=60)
    assert httpx.get(container.url + "/healthz", timeout=5).json() == {"status": "ok"}


def iter_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    """(event name, data) for each server-sent event, as they arrive."""
    name = "message"
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            yield name, json.loads(line.removeprefix("data:"))
            name = "message"


def stream_events(url: str, body: dict[str, object]) -> list[tuple[str, dict[str, object]]]:
    """All events of one streamed generation."""
    with httpx.stream("POST", url + "/api/generate/stream", json=body, timeout=60) as response:
        assert response.status_code == 200, response.read().decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(iter_events(response))


def test_streamed_generation_of_200_chars_from_the_bundled_model(container: Container) -> None:
    container.wait_for("/readyz", within_s=120)
    events = stream_events(container.url, {"prompt": "ROMEO:", "max_chars": 200, "seed": 7})
    text = "".join(str(data["text"]) for name, data in events if name == "message")
    assert len(text) == 200
    assert events[-1][0] == "done", events[-1]
    done = events[-1][1]
    assert done["finish_reason"] == "length" and done["model"] == "shakespeare"
    assert done["usage"] == {"prompt_chars": 6, "generated_chars": 200}


def test_server_process_is_not_root(container: Container) -> None:
    container.wait_for("/healthz", within_s=60)
    # same kernel, no user namespace: the host sees its uid
    pid = container.inspect("{{.State.Pid}}")
    uids = Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[:4]
    assert "0" not in uids, f"container process runs with uids {uids}"
    assert container.inspect("{{.Config.User}}") == "10001:10001"


def test_healthcheck_reports_healthy(container: Container) -> None:
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline and status != "healthy":
        status = container.inspect("{{.State.Health.Status}}")
        time.sleep(0.5)
    assert status == "healthy", (
        f"health status {status!r}: {container.inspect('{{json .State.Health}}')}"
    )


def test_image_is_under_1_5_gb(image: str) -> None:
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout)
    assert size < 1.5e9, f"image is {size / 1e9:.2f} GB"


def test_docker_stop_ends_the_server_cleanly_within_the_grace_period(container: Container) -> None:
    """Stopped while a stream is open: the client gets a proper end, the process exits 0 in time."""
    container.wait_for("/readyz", within_s=120)
    stopped: list[tuple[float, str]] = []  # (seconds docker stop took, its stderr)

    def docker_stop() -> None:
        start = time.monotonic()
        run = docker(
            "stop",
            "--time",
            str(STOP_GRACE_S),
            container.name,
            timeout=STOP_GRACE_S + 30,
            check=False,
        )
        stopped.append((time.monotonic() - start, run.stderr))

    stopper = threading.Thread(target=docker_stop)
    events: list[tuple[str, dict[str, object]]] = []
    body = {"prompt": "", "max_chars": 5000, "seed": 3}
    with httpx.stream(
        "POST", container.url + "/api/generate/stream", json=body, timeout=60
    ) as response:
        assert response.status_code == 200
        try:
            for event in iter_events(response):
                events.append(event)
                if len(events) == 1:  # generating: now stop the container
                    stopper.start()
        except httpx.HTTPError as exc:
            events.append(("connection lost", {"error": repr(exc)}))
    stopper.join(STOP_GRACE_S + 40)
    logs = container.logs()
    assert stopped, f"docker stop never ran or never returned; events: {events[-3:]}"
    took, error = stopped[0]
    # Exit code 0, not 137: the server stopped by itself within the grace period, not by SIGKILL.
    assert container.inspect("{{.State.ExitCode}}") == "0", (
        f"docker stop took {took:.1f} s; {error}\n{logs[-3000:]}"
    )
    assert "Traceback" not in logs, logs[-3000:]
    assert events[-1][0] == "done", f"the open stream did not end with a done event: {events[-1]}"
