"""requirements.txt installs on linux/aarch64 (ARM servers, Apple-silicon Docker) as on x86_64,
checked without an ARM machine.

    .venv/bin/pytest tests/test_requirements_arm.py

The environment markers are evaluated for each architecture (packaging.markers), then pip resolves
the chosen set, dependencies included, for that platform alone: `pip install --dry-run --report`
with `--platform manylinux_2_17…2_36_<arch>` (the manylinux tags a Debian bookworm image accepts;
pip does not widen one tag to the older ones itself) and `--only-binary=:all:`, so only metadata
is fetched, never the ~250 MB of wheels. The resolution is skipped, saying so, when no package
index answers. One thing pip cannot do here: the markers of the dependencies' own requirements are
evaluated for this machine, not the target (none of the pinned set's dependencies has one on
platform_machine today).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
GLIBC_MINORS = range(17, 37)  # manylinux_2_17 (= manylinux2014) … 2_36, bookworm's glibc
ARCHES = ("aarch64", "x86_64")


def linux_environment(machine: str) -> dict[str, str]:
    """The marker variables of CPython 3.11 on Linux for `machine`, as the image's pip sees them."""
    return {
        "platform_machine": machine,
        "platform_system": "Linux",
        "sys_platform": "linux",
        "os_name": "posix",
        "python_version": "3.11",
        "python_full_version": "3.11.2",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }


def pinned_for(machine: str, file: str = "requirements.txt") -> dict[str, Requirement]:
    """Normalised name → requirement (marker dropped) of each line whose marker holds on
    `machine`."""
    chosen: dict[str, Requirement] = {}
    for raw in (ROOT / file).read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            chosen |= pinned_for(machine, line[3:].strip())
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate(linux_environment(machine)):
            req.marker = None
            chosen[canonicalize_name(req.name)] = req
    return chosen


def test_markers_pick_the_tensorflow_build_and_tbb_per_architecture() -> None:
    arm, x86 = pinned_for("aarch64"), pinned_for("x86_64")
    assert "tensorflow" in arm and "tensorflow-cpu" not in arm
    assert "tensorflow-cpu" in x86 and "tensorflow" not in x86
    assert str(arm["tensorflow"].specifier) == str(x86["tensorflow-cpu"].specifier), (
        "one TensorFlow version"
    )
    assert "tbb" in x86 and "tbb" not in arm, "tbb has x86_64 wheels only"
    same = set(arm) - {"tensorflow"}
    assert same == set(x86) - {"tensorflow-cpu", "tbb"}, "every other pin is the same on both"
    assert all(str(arm[n]) == str(x86[n]) for n in same)
    assert all(
        len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in arm.values()
    )


def index_url() -> str:
    """The index pip uses here (PIP_INDEX_URL, pip's config, else PyPI)."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"].split()[0]
    run = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return (
        run.stdout.strip().split()[0]
        if run.returncode == 0 and run.stdout.strip()
        else "https://pypi.org/simple"
    )


def skip_unless_index_answers(url: str) -> None:
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/numba/", timeout=15) as response:
            response.read(1)
    except (urllib.error.URLError, OSError) as exc:
        pytest.skip(
            f"no package index reachable at {url} ({exc}): the aarch64 resolution cannot be checked"
        )


@pytest.mark.slow
@pytest.mark.parametrize("machine", ARCHES)
def test_pinned_set_resolves_to_wheels_for_manylinux(machine: str, tmp_path: Path) -> None:
    skip_unless_index_answers(index_url())
    pins = pinned_for(machine)
    listed = tmp_path / f"requirements-{machine}.txt"
    listed.write_text("".join(f"{r}\n" for r in pins.values()))
    platforms = [f"manylinux2014_{machine}"] + [f"manylinux_2_{m}_{machine}" for m in GLIBC_MINORS]
    report = tmp_path / "report.json"
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet"]
    argv += [
        "--report",
        str(report),
        "--ignore-installed",
        "--target",
        str(tmp_path / "target"),
        "--retries",
        "3",
    ]
    argv += [
        "--only-binary=:all:",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ]
    argv += [word for p in platforms for word in ("--platform", p)] + ["-r", str(listed)]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 0, (
        f"pip could not resolve the set for {machine}:\n{run.stderr[-3000:]}"
    )
    installed = {
        canonicalize_name(i["metadata"]["name"]): i
        for i in json.loads(report.read_text())["install"]
    }
    for name, req in pins.items():  # every pin, at its pinned version
        assert name in installed, f"{name} missing from the resolution"
        assert installed[name]["metadata"]["version"] in req.specifier, (
            name,
            installed[name]["metadata"]["version"],
        )
    for (
        name,
        item,
    ) in installed.items():  # and every package a wheel for this architecture or for any
        wheel = item["download_info"]["url"].rsplit("/", 1)[-1]
        assert wheel.endswith(".whl"), f"{name}: {wheel} is not a wheel"
        platform_tag = wheel.removesuffix(".whl").split("-")[-1]
        assert platform_tag == "any" or machine in platform_tag, (
            f"{name}: {wheel} is not for {machine}"
        )
    if machine == "aarch64":
        assert installed["tensorflow"]["download_info"]["url"].endswith("_aarch64.whl")
        assert {"tensorflow-cpu", "tbb"}.isdisjoint(installed)
