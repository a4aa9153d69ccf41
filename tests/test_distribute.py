"""Multi-worker training on localhost: two processes, each with its own TF_CONFIG, train in
lockstep.

The chief alone writes the model directory; a worker killed with SIGKILL makes the other one fail
fast; starting both again resumes from the chief's last checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model.artifact import load_artifact
from tests.conftest import ROOT, free_port
from tests.test_train import TINY, history, make_corpus
from training.train import main as train_main

DIGEST = re.compile(r"^worker (\d) of 2: final weights sha256 ([0-9a-f]{64})$", re.M)
RESUMED = re.compile(r"^resuming from the checkpoint at epoch (\d+), step (\d+)$", re.M)


class Cluster:
    """Two `python -m training.train --strategy multi-worker` processes on free loopback ports."""

    def __init__(self, tmp_path: Path, args: list[str]):
        self.tmp_path, self.args = tmp_path, args
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def start(self, run: str) -> None:
        ports: list[int] = []
        while len(ports) < 2:  # two distinct free ports
            port = free_port()
            ports += [] if port in ports else [port]
        cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
        self.procs, self.logs = [], []
        for index in range(2):
            env = {
                **os.environ,
                "CUDA_VISIBLE_DEVICES": "-1",
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                ),
            }
            log = self.tmp_path / f"{run}-worker{index}.log"
            with open(log, "wb") as out:
                cmd = [
                    sys.executable,
                    "-m",
                    "training.train",
                    "--strategy",
                    "multi-worker",
                    *self.args,
                ]
                proc = subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.procs.append(proc)
            self.logs.append(log)

    def output(self, index: int) -> str:
        return self.logs[index].read_text("utf-8", errors="replace")

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        codes = [proc.wait(max(0.1, deadline - time.monotonic())) for proc in self.procs]
        return codes

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


@pytest.fixture
def cluster_factory(tmp_path: Path):
    made: list[Cluster] = []

    def make(args: list[str]) -> Cluster:
        made.append(Cluster(tmp_path, args))
        return made[-1]

    yield make
    for cluster in made:
        cluster.kill()


def latest_checkpoint(work: Path) -> int:
    """Number of the chief's newest complete checkpoint (0: none yet)."""
    state = work / "ckpt" / "checkpoint"
    found = re.search(
        r'^model_checkpoint_path: "ckpt-(\d+)"', state.read_text() if state.exists() else "", re.M
    )
    return int(found.group(1)) if found else 0


def digests(cluster: Cluster) -> dict[str, str]:
    return {m.group(1): m.group(2) for i in range(2) for m in DIGEST.finditer(cluster.output(i))}


@pytest.mark.slow
def test_two_workers_train_in_lockstep_and_only_the_chief_writes_the_model(
    tmp_path: Path, cluster_factory
) -> None:
    corpus = make_corpus(tmp_path / "c.txt")
    out, work = tmp_path / "m", tmp_path / "w"
    args = [
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--work-dir",
        str(work),
        "--epochs",
        "2",
        "--max-steps",
        "6",
    ]
    cluster = cluster_factory([*args, *TINY])
    cluster.start("run")
    codes = cluster.wait(timeout=240)
    assert codes == [0, 0], cluster.output(0) + cluster.output(1)
    sums = digests(cluster)
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"]  # the same weights on both workers
    assert "wrote" in cluster.output(0) and "wrote" not in cluster.output(1)
    art = load_artifact(out)
    assert art.card["distribution"] == {
        "strategy": "CollectiveAllReduceStrategy",
        "replicas": 2,
        "workers": 2,
    }
    assert art.card["epochs_run"] == 2 and art.card["held_out_loss_nats"] > 0
    assert [r["epoch"] for r in history(work)] == ["0", "1"]  # one writer: no duplicate rows
    assert not list(work.glob(".worker-ckpt-*"))  # the non-chief's private checkpoints are gone


@pytest.mark.slow
def test_a_killed_worker_stops_the_other_and_a_restart_resumes(
    tmp_path: Path, cluster_factory
) -> None:
    corpus = make_corpus(tmp_path / "c.txt", words=12000)
    out, work = tmp_path / "m", tmp_path / "w"
    args = [
        "--corpus",
        str(corpus),
        "--out",
        str(out),
        "--work-dir",
        str(work),
        "--epochs",
        "3",
        "--max-steps",
        "20",
    ]
    cluster = cluster_factory([*args, *TINY])
    cluster.start("first")
    deadline = time.monotonic() + 240
    # the chief saved epoch 1
    while "Epoch 2/3" not in cluster.output(0) and time.monotonic() < deadline:
        assert cluster.procs[0].poll() is None, cluster.output(0)
        time.sleep(0.1)
    assert "Epoch 2/3" in cluster.output(0), cluster.output(0)
    at_epoch_end = latest_checkpoint(work)
    while latest_checkpoint(work) == at_epoch_end and time.monotonic() < deadline:
        time.sleep(0.02)  # until the first backup inside epoch 2 is on disk
    # the chief: it also hosts TF's coordination service
    os.killpg(cluster.procs[0].pid, signal.SIGKILL)
    killed = time.monotonic()
    code = cluster.procs[1].wait(timeout=90)
    waited = time.monotonic() - killed
    print(f"the surviving worker exited {waited:.1f} s after the chief was killed")
    assert code == 3, cluster.output(1)  # wait(timeout=90) above only stops a hang
    assert "lost contact with another worker" in cluster.output(1)
    assert not out.exists() and len(history(work)) == 1

    cluster.start("second")  # the same command on both, as a supervisor would
    codes = cluster.wait(timeout=300)
    assert codes == [0, 0], cluster.output(0) + cluster.output(1)
    for index in range(2):
        resumed = RESUMED.search(cluster.output(index))
        assert resumed, cluster.output(index)
        epoch, step = int(resumed.group(1)), int(resumed.group(2))
        assert (epoch == 2 and step > 0) or epoch > 2  # from the checkpoint, not from scratch
        assert "Epoch 1/3" not in cluster.output(index)
    sums = digests(cluster)
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"]
    assert [r["epoch"] for r in history(work)] == ["0", "1", "2"]
    assert load_artifact(out).card["epochs_run"] == 3


@pytest.mark.parametrize(
    ("tf_config", "message"),
    [
        (None, "needs the TF_CONFIG variable"),
        ("{not json", "TF_CONFIG is not a usable cluster"),
        (
            '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
            "task index 3",
        ),
        (
            '{"cluster": {"ps": ["127.0.0.1:1"]}, "task": {"type": "ps", "index": 0}}',
            "only 'chief' and 'worker'",
        ),
    ],
)
def test_a_bad_tf_config_is_named_before_any_training(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tf_config: str | None,
    message: str,
) -> None:
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    corpus = make_corpus(tmp_path / "c.txt", words=300)
    argv = [
        "--corpus",
        str(corpus),
        "--out",
        str(tmp_path / "m"),
        "--work-dir",
        str(tmp_path / "w"),
    ]
    rc = train_main([*argv, *TINY, "--strategy", "multi-worker"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err, err
    assert not (tmp_path / "m").exists()
