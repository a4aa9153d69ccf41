"""model/runtime/native_log.py: TensorFlow's load-time log lines stay off stderr; everything else
gets through."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from model.runtime.native_log import ABSL_NOTICE, filtered_stderr, keep
from tests.conftest import ROOT

ONEDNN = b"I0000 00:00:1796017546.151402    7630 port.cc:153] oneDNN custom operations are on.\n"
WARN = b"W1130 05:41:02.123456   12 rendezvous.cc:404] Local rendezvous is aborting\n"
ERROR = (
    b"E0000 00:00:1796017546.151402    7630 cuda_dnn.cc:8579] Unable to register cuDNN factory\n"
)


def test_lines_below_the_level_and_absls_notice_are_dropped() -> None:
    assert not keep(ABSL_NOTICE + b"\n", 2) and keep(ABSL_NOTICE + b"\n", 0)
    assert [keep(line, 2) for line in (ONEDNN, WARN, ERROR)] == [False, False, True]
    assert [keep(line, 1) for line in (ONEDNN, WARN, ERROR)] == [False, True, True]
    assert [keep(line, 3) for line in (ONEDNN, WARN, ERROR)] == [False, False, False]
    for other in (
        b"Traceback (most recent call last):\n",
        b"UserWarning: I0000 looks like a log\n",
        b"seed: 1\n",
    ):
        assert keep(other, 3)


def test_filtered_stderr_passes_the_rest_on_in_order(capfd: pytest.CaptureFixture[str]) -> None:
    with filtered_stderr(2):
        os.write(2, ABSL_NOTICE + b"\n" + ONEDNN + b"first\n")
        os.write(2, b"second\n")
        os.write(2, ERROR)
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "first\nsecond\n" + ERROR.decode() + "after\n"


@pytest.mark.slow
def test_importing_tensorflow_and_keras_prints_nothing() -> None:
    code = (
        "from model.runtime.native_log import import_tensorflow; "
        "import_tensorflow(); import keras; print('ok')"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "ok\n", "")
