"""The benchmark scripts' building blocks still run against the model's current code.

    .venv/bin/pytest tests/test_bench.py      (~10 s, kernels cached)

The benchmarks print figures and never pass or fail, so nothing else notices when a change in
model/ breaks one (a cell's `gates` taking one row broke bench.engine's gates row once).  These
run the cheap parts on tiny shapes.
"""

from __future__ import annotations

import math

import pytest

from bench.engine import gates_runner


@pytest.mark.parametrize("vectorised", [True, False])
def test_the_gates_row_runs(vectorised: bool) -> None:
    microseconds = gates_runner(batch=3, units=8, vectorised=vectorised)()
    assert math.isfinite(microseconds) and microseconds > 0
