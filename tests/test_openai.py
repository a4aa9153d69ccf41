"""`/v1/completions` and `/v1/models` driven by the official `openai` client against a real uvicorn.

Run: .venv/bin/pytest tests/test_openai.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import LiveServer, start_server

pytestmark = pytest.mark.slow  # starts a server


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[LiveServer]:
    live = start_server(models_dir, max_active="3", max_chars="1000000")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)


def streamed(
    client: openai.OpenAI, **params: object
) -> tuple[dict[int, str], dict[int, str | None]]:
    texts: dict[int, str] = {}
    reasons: dict[int, str | None] = {}
    for chunk in client.completions.create(stream=True, **params):  # type: ignore[call-overload]
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + choice.text
            reasons[choice.index] = choice.finish_reason or reasons.get(choice.index)
    return texts, reasons


def test_models_list(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == ["tiny"]


def test_completion_n_seed_and_usage(client: openai.OpenAI) -> None:
    first = client.completions.create(
        model="tiny", prompt="ROMEO:", max_tokens=30, n=2, seed=5, temperature=1.0
    )
    again = client.completions.create(
        model="tiny", prompt="ROMEO:", max_tokens=30, n=2, seed=5, temperature=1.0
    )
    assert first.object == "text_completion" and first.model == "tiny"
    assert [c.index for c in first.choices] == [0, 1]
    assert [c.text for c in first.choices] == [c.text for c in again.choices]
    assert first.choices[0].text != first.choices[1].text  # each completion has its own seed
    assert all(len(c.text) == 30 and c.finish_reason == "length" for c in first.choices)
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens, first.usage.total_tokens) == (
        6,
        60,
        66,
    )


def test_stream_matches_the_whole_completion(client: openai.OpenAI) -> None:
    params = {
        "model": "tiny",
        "prompt": "KING",
        "max_tokens": 200,
        "n": 3,
        "seed": 40,
        "temperature": 0.9,
    }
    whole = client.completions.create(**params)  # type: ignore[call-overload]
    texts, reasons = streamed(client, **params)
    assert texts == {c.index: c.text for c in whole.choices}
    assert reasons == {0: "length", 1: "length", 2: "length"}


def test_stop_strings(client: openai.OpenAI) -> None:
    full = client.completions.create(
        model="tiny", prompt="a", max_tokens=80, seed=3, temperature=1.0
    ).choices[0]
    stop = full.text[40:42]
    cut = full.text[: full.text.index(stop)]
    single = client.completions.create(
        model="tiny", prompt="a", max_tokens=80, seed=3, temperature=1.0, stop=stop
    )
    assert (single.choices[0].text, single.choices[0].finish_reason) == (cut, "stop")
    texts, reasons = streamed(
        client, model="tiny", prompt="a", max_tokens=80, seed=3, temperature=1.0, stop=[stop, "##"]
    )
    assert (texts[0], reasons[0]) == (cut, "stop")


def test_logprobs_in_the_legacy_shape(client: openai.OpenAI) -> None:
    choice = client.completions.create(
        model="tiny", prompt="abc", max_tokens=12, seed=1, logprobs=2
    ).choices[0]
    lp = choice.logprobs
    assert lp is not None and lp.tokens is not None and lp.token_logprobs is not None
    assert "".join(lp.tokens) == choice.text
    assert lp.text_offset == list(range(3, 15))
    assert lp.top_logprobs is not None and all(len(top) == 2 for top in lp.top_logprobs)
    assert all(v <= 0 for v in lp.token_logprobs)


def test_unknown_fields_are_ignored_and_bad_ones_refused(client: openai.OpenAI) -> None:
    ok = client.completions.create(
        model="tiny", prompt="a", max_tokens=5, user="someone", extra_body={"frobnicate": 1}
    )
    assert len(ok.choices[0].text) == 5
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="a")
    with pytest.raises(openai.BadRequestError) as info:  # 400, as OpenAI and vLLM answer
        client.completions.create(model="tiny", prompt="a", temperature=-1)
    assert info.value.body["param"] == "temperature"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt="ж")


def test_unsupported_parameters_are_refused_unless_neutral(client: openai.OpenAI) -> None:
    refused: list[tuple[str, dict[str, object]]] = [
        ("best_of", {"best_of": 3}),
        ("suffix", {"suffix": "THE END"}),
        ("min_tokens", {"extra_body": {"min_tokens": 4}}),  # vLLM's
    ]
    for param, extra in refused:
        with pytest.raises(openai.BadRequestError) as info:
            create: Any = client.completions.create  # its overloads do not take a bare **extra
            create(model="tiny", prompt="a", max_tokens=5, **extra)
        assert info.value.body["param"] == param  # type: ignore[index]
    ok = client.completions.create(model="tiny", prompt="a", max_tokens=5, best_of=1, suffix=None)
    assert len(ok.choices[0].text) == 5


def test_temperature_left_out_is_1(client: openai.OpenAI) -> None:
    def text(**params: object) -> str:
        params = {
            "model": "tiny",
            "prompt": "a",
            "max_tokens": 100,
            "seed": 2,
            "logit_bias": {"0": 3},
            **params,
        }
        return client.completions.create(**params).choices[0].text  # type: ignore[call-overload]

    assert text() == text(temperature=1.0) != text(temperature=0.8)


def test_over_the_limit_is_a_rate_limit_error(client: openai.OpenAI, server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        hold = {"prompt": "a", "max_tokens": 1_000_000, "stream": True}
        with (
            http.stream("POST", "/v1/completions", json=hold) as a,
            http.stream("POST", "/v1/completions", json=hold) as b,
        ):
            lines = [a.iter_lines(), b.iter_lines()]  # kept: a dropped iterator closes its response
            assert all(next(it).startswith("data:") for it in lines)
            # 2 of 3 slots are taken: n=2 does not fit, n=1 does.
            with pytest.raises(openai.RateLimitError) as info:
                client.completions.create(model="tiny", prompt="a", max_tokens=5, n=2)
            assert info.value.response.headers["retry-after"]
            assert (
                len(
                    client.completions.create(model="tiny", prompt="a", max_tokens=5)
                    .choices[0]
                    .text
                )
                == 5
            )
    # More completions than MAX_ACTIVE could ever admit: refused as invalid, not "retry later".
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="tiny", prompt=["a", "b"], max_tokens=5, n=2)
