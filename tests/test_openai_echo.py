"""`/v1/completions` with `echo: true, max_tokens: 0` (scoring a prompt, as lm-evaluation-harness
does), driven by the official `openai` client against a real uvicorn.
Run: .venv/bin/pytest tests/test_openai_echo.py"""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import LiveServer

pytestmark = pytest.mark.slow  # starts a server
PROMPT = "ROMEO:\nWhat light?"


@pytest.fixture(scope="module")
def client(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=live_server.url + "/v1", api_key="unused", max_retries=0, timeout=60
    )


def test_echo_gives_the_prompts_logprobs_in_openai_shape(
    client: openai.OpenAI, live_server: LiveServer
) -> None:
    done = client.completions.create(
        model="tiny", prompt=PROMPT, echo=True, logprobs=2, max_tokens=0
    )
    [choice] = done.choices
    assert choice.text == PROMPT and choice.finish_reason == "length"
    lp = choice.logprobs
    assert (
        lp is not None and lp.tokens == list(PROMPT) and lp.text_offset == list(range(len(PROMPT)))
    )
    assert lp.token_logprobs is not None and lp.top_logprobs is not None
    assert lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
    scored = httpx.post(live_server.url + "/api/score", json={"text": PROMPT, "top": 2}).json()[
        "chars"
    ]
    assert lp.token_logprobs[1:] == pytest.approx([c["logprob"] for c in scored[1:]], abs=1e-6)
    assert all(len(top) == 2 for top in lp.top_logprobs[1:])
    assert lp.top_logprobs[1] == dict((k, v) for k, v in scored[1]["top"])
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.completion_tokens) == (
        len(PROMPT),
        0,
    )


def test_echo_for_several_prompts_and_n(client: openai.OpenAI) -> None:
    done = client.completions.create(
        model="tiny", prompt=["AB", "CDE"], echo=True, logprobs=1, max_tokens=0, n=2
    )
    assert [c.text for c in done.choices] == ["AB", "AB", "CDE", "CDE"]
    assert [c.index for c in done.choices] == [0, 1, 2, 3]


def test_echo_without_logprobs_and_max_tokens_0_without_echo(client: openai.OpenAI) -> None:
    echoed = client.completions.create(model="tiny", prompt="AB", echo=True, max_tokens=0)
    assert echoed.choices[0].text == "AB" and echoed.choices[0].logprobs is None
    empty = client.completions.create(model="tiny", prompt="AB", max_tokens=0)
    assert empty.choices[0].text == "" and empty.choices[0].finish_reason == "length"


def test_echo_streamed(client: openai.OpenAI) -> None:
    chunks = list(
        client.completions.create(
            model="tiny", prompt="ABC", echo=True, logprobs=1, max_tokens=0, stream=True
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == "ABC"
    assert chunks[0].choices[0].logprobs is not None and chunks[0].choices[0].logprobs.tokens == [
        "A",
        "B",
        "C",
    ]


def test_echo_with_generation_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny", prompt="AB", echo=True, max_tokens=5)
    assert caught.value.body["param"] == "echo"  # type: ignore[index]


def test_echo_scores_unknown_chars_but_an_empty_completion_checks_the_prompt(
    client: openai.OpenAI,
) -> None:
    scored = client.completions.create(
        model="tiny", prompt="A€", echo=True, logprobs=1, max_tokens=0
    )
    lp = scored.choices[0].logprobs
    # € unscored
    assert lp is not None and lp.tokens == ["A", "€"] and lp.token_logprobs == [None, None]
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny", prompt=["AB", "A€"], max_tokens=0)
    assert caught.value.body["param"] == "prompt"  # type: ignore[index]
