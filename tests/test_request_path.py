"""The README's "Follow a request" lists the real path: every project file a streamed request
enters.

A `POST /api/generate/stream` runs in-process with a profiler on every thread (the route's and the
engine's); the project files it enters must be exactly the README's list, so the list cannot drift
from the code.  The count is printed for the issue's budget (≤ 12 files) to be read off.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def traced_path(models_dir: Path) -> list[str]:
    entered: list[str] = []
    on = [False]

    def profile(frame: Any, event: str, arg: Any) -> None:
        if on[0] and event == "call":
            name = frame.f_code.co_filename
            if name.startswith(str(ROOT)) and "/tests/" not in name and "/.venv/" not in name:
                rel = os.path.relpath(name, ROOT)
                if rel not in entered:
                    entered.append(rel)

    threading.setprofile(profile)  # threads started from here on: the server's and the engine's
    try:
        with TestClient(create_app(Settings(models_dir=models_dir))) as client:
            body = {"prompt": "ROMEO:", "max_chars": 20, "seed": 1}
            client.post("/api/generate/stream", json=body)  # warm: kernels loaded, first-call paths
            sys.setprofile(profile)
            on[0] = True
            client.post("/api/generate/stream", json={**body, "prompt": "ROMEO: what"})
            on[0] = False
            sys.setprofile(None)
    finally:
        threading.setprofile(None)
    return entered


def readme_path() -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    section = text.split("### Follow a request", 1)[1].split("```", 2)[1]
    return re.findall(r"^\s*\d+\.\s+(\S+\.py)", section, re.M)


def test_the_readme_lists_the_files_a_streamed_request_enters(models_dir: Path) -> None:
    path = traced_path(models_dir)
    print(f"\n{len(path)} project files on the path of POST /api/generate/stream")
    # The set, not the order: the engine thread and the request's thread interleave differently
    # from run to run (the README gives one run's order).
    assert sorted(path) == sorted(readme_path())
