"""The queue limit: the wait the engine predicts from its measured priming rates
(model/engine/rate.py), and the 429 with Retry-After when it is over CHARLSTM_MAX_QUEUE_S
(app/admission.py, app/job.py).

    .venv/bin/pytest tests/test_queue_limit.py
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings, load_settings
from model.engine.loop import Engine
from model.engine.rate import PrimeRate
from model.sampling.generate import GenerationRequest
from tests.test_cell import random_stack
from tests.test_engine import RecordingSink
from tests.test_primer import VOCAB

MS = 0.001


def test_an_idle_engine_adds_no_wait_and_rows_generating_slow_priming() -> None:
    rate = PrimeRate(share=0.25, fitted=(1 * MS, 0.25 * MS, 2 * MS))  # a, b per char; a step 2 ms
    assert rate.wait([2000], [], generating=False) == 0.0
    # Beside generating rows: a char per 2 ms step, plus slices for a quarter of the time (1/3 of a
    # step's 2 ms, at 1.25 ms a char): 1 + 0.53 chars per 2.67 ms.
    per_char = 2 * MS * (4 / 3) / (1 + 2 * MS * (1 / 3) / (1.25 * MS))
    assert rate.wait([2000], [], generating=True) == pytest.approx(2000 * (per_char - 1.25 * MS))


def test_prompts_queued_cost_their_rows_for_the_chars_they_share() -> None:
    rate = PrimeRate(share=0.25, fitted=(1 * MS, 0.25 * MS, 2 * MS))
    # Idle: 2,000 chars beside prompts with 500 and 5,000 chars left: 3 rows for 500 chars, then 2.
    expected = 500 * 1.75 * MS + 1500 * 1.5 * MS - 2000 * 1.25 * MS
    assert rate.wait([2000], [500, 5000], generating=False) == pytest.approx(expected)
    # Two new prompts: each shares with the other, and the longer one waits longest.
    assert rate.wait([100, 2000], [], generating=False) == pytest.approx(0.25 * MS * 100)
    # nothing measured yet: no refusal
    assert PrimeRate().wait([2000], [10_000], generating=True) == 0.0


def test_the_rate_is_fitted_from_the_slices_and_steps_it_measures() -> None:
    rate = PrimeRate()
    for rows in [1, 6, 2, 12, 1, 6, 32, 3] * 3:
        # a = 0.4 ms, b = 0.1 ms per char
        rate.slice((0.4 + 0.1 * rows) * MS * 16, chars=16, rows=rows)
    # no step yet: a lone char's time
    assert rate.fitted is not None and rate.fitted[2] == pytest.approx(0.5 * MS)
    for _ in range(50):
        rate.step(3 * MS)
    a, b, step = rate.fitted
    assert (
        a == pytest.approx(0.4 * MS)
        and b == pytest.approx(0.1 * MS)
        and step == pytest.approx(3 * MS)
    )
    lone = PrimeRate()
    lone.slice(1.4 * MS * 16, chars=16, rows=1)  # one row count only: a and b split as usual
    assert lone.fitted is not None and sum(lone.fitted[:2]) == pytest.approx(1.4 * MS)


def test_the_engine_counts_prompts_still_queued() -> None:
    # not started: its inbox keeps them
    engine = Engine(random_stack(units=8, vocab=len(VOCAB)), VOCAB)
    engine.rate.fitted = (1 * MS, 0.25 * MS, 2 * MS)
    for _ in range(3):
        engine.submit(GenerationRequest("abcdefghij" * 100, 5, seed=1), RecordingSink())
    assert engine.predicted_wait([1000]) == pytest.approx(0.25 * MS * 3000)  # no row generates


def test_an_idle_engine_predicts_no_wait_whatever_its_last_loop_did() -> None:
    """A long prompt on an idle server is never refused: the last loop's "rows were generating"
    no longer counts once the batch is empty, and the burst kernel's compile happens at
    construction, never inside a measured step (a 13 s first burst once refused every long
    prompt for a while)."""
    from model.engine import burst as burst_module

    engine = Engine(random_stack(units=8, vocab=len(VOCAB)), VOCAB)
    assert burst_module._burst._dispatcher is not None  # compiled or loaded already
    engine.start()
    try:
        sink = RecordingSink()
        engine.submit(GenerationRequest("abc", 40, seed=1), sink)
        sink.wait()
        while engine.active:
            time.sleep(0.001)
        engine.rate.fitted = (1 * MS, 0.25 * MS, 100.0)  # a step of 100 s, were anything to step
        assert engine.predicted_wait([2000]) == 0.0
    finally:
        engine.stop()


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir, max_queue_s=5))) as c:
        yield c


@pytest.mark.parametrize("route", ["/api/generate", "/api/generate/stream", "/v1/completions"])
def test_a_request_the_queue_would_keep_too_long_is_429_with_retry_after(
    client: TestClient, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = client.app.state.server.registry.get("tiny").engine  # type: ignore[attr-defined]
    asked: list[list[int]] = []

    def predicted_wait(prompt_chars: list[int]) -> float:
        asked.append(prompt_chars)
        return 7.2

    monkeypatch.setattr(engine, "predicted_wait", predicted_wait)
    body = (
        {"prompt": "ROMEO:", "max_tokens": 5, "n": 2}
        if route.startswith("/v1")
        else {"prompt": "ROMEO:"}
    )
    response = client.post(route, json=body)
    # 7.2 s, limit 5 s
    assert response.status_code == 429 and response.headers["Retry-After"] == "3"
    error = response.json()["error"]
    assert (
        error["type"] == "overloaded"
        and error["code"] == "queue_full"
        and "MAX_QUEUE_S" in error["message"]
    )
    assert asked == [
        [6, 6] if route.startswith("/v1") else [6]
    ]  # every sequence's prompt, before any work
    monkeypatch.setattr(engine, "predicted_wait", lambda prompt_chars: 4.9)
    assert client.post(route, json=body).status_code == 200
    assert client.app.state.server.admission.active == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_a_bad_max_queue_s_stops_start_up_naming_it(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARLSTM_MAX_QUEUE_S", value)
    with pytest.raises(SystemExit, match="CHARLSTM_MAX_QUEUE_S"):
        load_settings()
    monkeypatch.setenv("CHARLSTM_MAX_QUEUE_S", "2.5")
    assert load_settings().max_queue_s == 2.5
