"""Schemathesis over the server's own /openapi.json: generated requests, valid and invalid,
must never produce a 500, and every response must match the schema (status, content type,
headers, body, stream events), with schemathesis's default checks, phases included.

It runs the `schemathesis` CLI (its pytest loader does not work with this pytest) against a
real uvicorn on a free loopback port, with a fixed seed and few examples per operation so the
test is reproducible and bounded in time.  SCHEMATHESIS_MAX_EXAMPLES / SCHEMATHESIS_SEED
override them.  Run: .venv/bin/pytest tests/test_schemathesis.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_500_and_no_schema_violation(
    models_dir: Path, tmp_path: Path
) -> None:
    # MAX_ACTIVE ≥ 16 prompts × n = 16, so every schema-valid /v1 request can be admitted;
    # MAX_CHARS small so the biggest of them stays quick; MAX_BODY_BYTES big enough for 16
    # prompts of MAX_PROMPT_CHARS (a body size is no schema keyword).  No access log: hundreds
    # of requests must not fill the server's stdout pipe.
    env = {
        "CHARLSTM_MODELS_DIR": str(models_dir),
        "CHARLSTM_LOG_LEVEL": "warning",
        "CHARLSTM_MAX_CHARS": "100",
        "CHARLSTM_MAX_ACTIVE": "256",
        "CHARLSTM_MAX_BODY_BYTES": str(16 * 2**20),
    }
    server = LiveServer(env, ["--no-access-log", "--log-level", "warning"])
    try:
        server.wait_ready()
        cmd = [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(Path(__file__).with_name("schemathesis.toml")),
            "run",
            server.url + "/openapi.json",
            "--max-examples",
            os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"),
            "--seed",
            os.environ.get("SCHEMATHESIS_SEED", "20261125"),
            "--workers",
            "1",
            "--request-timeout",
            "60",
            "--no-color",
        ]
        result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"Operations: +(\d+) selected / \1 total", output), output[
        -3000:
    ]  # every operation
