"""Shared fixtures: a tiny model directory built in the test session, free loopback ports and
a real uvicorn server (the in-process test client buffers streams and never disconnects)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.serve import command
from model.runtime import configure

configure()  # the test session is an entry point: numba's kernel cache and threading layer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
# The browser tests' skip where Debian's chromium is missing (`make chromium` installs it).
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no Debian chromium at /usr/bin/chromium: run `make chromium`"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TINY_CHARS = "\n !',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz<>/\"&é—"


def build_tiny_model_dir(
    path: Path,
    name: str = "tiny",
    chars: str = TINY_CHARS,
    units: int = 16,
    seed: int = 0,
    cell: str = "lstm",
) -> Path:
    """Save a tiny random-weight char-RNN (2 layers; an LSTM unless `cell` is "gru" or "rnn") as a
    complete model directory."""
    import keras

    from model.artifact import save_artifact
    from model.cells.network import NetworkConfig, build_model
    from model.vocab import Vocab

    keras.utils.set_random_seed(seed)
    vocab = Vocab.from_chars(chars)
    config = NetworkConfig(
        vocab_size=len(vocab), embedding_dim=8, units=units, layers=2, dropout=0.0, cell=cell
    )
    model = build_model(config)
    card = {
        "name": name,
        "vocab_size": len(vocab),
        "params": int(model.count_params()),
        "held_out_loss_nats": None,
        "held_out_bits_per_char": None,
        "config": config.to_dict(),
    }
    save_artifact(path, model, vocab, card)
    return path


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding one tiny model named 'tiny'."""
    root = tmp_path_factory.mktemp("models")
    build_tiny_model_dir(root / "tiny")
    return root


@pytest.fixture(scope="session")
def tiny_model_dir(models_dir: Path) -> Path:
    return models_dir / "tiny"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A real server subprocess (app/serve.py: uvicorn as `make serve` runs it) on a free loopback
    port."""

    def __init__(self, env: dict[str, str], args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = command("127.0.0.1", self.port, "--timeout-graceful-shutdown", "5", *(args or []))
        # A file, not a pipe: a chatty server could fill a pipe nobody reads and hang.  It lives
        # as long as the server, so no `with`.
        self.log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready in {timeout}s")

    def output(self) -> str:
        """Everything the server has printed so far."""
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


def start_server(models_dir: Path, **settings: str) -> LiveServer:
    env = {
        "CHARLSTM_MODELS_DIR": str(models_dir),
        **{f"CHARLSTM_{k.upper()}": v for k, v in settings.items()},
    }
    server = LiveServer(env)
    try:
        server.wait_ready()
    except Exception:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def live_server(models_dir: Path) -> Iterator[LiveServer]:
    """One uvicorn per test module, serving the tiny model."""
    server = start_server(models_dir)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium, driven by Playwright (the browser tests skip without it)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# The one console error a page test allows: the browser's own line for a 4xx the page handles (a
# model without figures, a cell number the model does not have).
HANDLED_4XX = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d")


def console_problem(message: Any) -> str | None:
    """A console message that fails a page test (any error but a handled 4xx's line), or None."""
    if message.type == "error" and not HANDLED_4XX.match(message.text):
        return f"console: {message.text}"
    return None


def open_page(
    browser: Any, server: LiveServer, width: int = 1280, height: int = 900
) -> tuple[Any, Any, list[str]]:
    """A fresh context and tab, the page ready; `problems` collects script errors and console
    problems (a CSP report is a console error too)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def on_console(message: Any) -> None:
        if problem := console_problem(message):
            problems.append(problem)

    tab.on("console", on_console)
    tab.set_default_timeout(120_000)  # a busy 2-core machine
    tab.goto(server.url + "/")
    tab.wait_for_selector("body.ready", state="attached")
    return context, tab, problems


@pytest.fixture
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """The page of the module's `server` in a fresh context; fails the test on any problem
    (modules with their own page fixture override this one)."""
    context, tab, problems = open_page(browser, server)
    yield tab
    context.close()
    assert problems == []
