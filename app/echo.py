"""`/v1/completions` with `echo: true, max_tokens: 0`: the prompt's own log-probabilities, OpenAI's
shape.

    client.completions.create(model="shakespeare", prompt="ROMEO:", echo=True, logprobs=3,
    max_tokens=0)

This is how lm-evaluation-harness and other log-likelihood tools score a text through a completions
API.  Each prompt is read on the engine thread (app/reading.py, model/reading/score.py); the answer
is the legacy `logprobs` object with `tokens` (one char each), `token_logprobs` (null for the first
char, as OpenAI gives no prediction for the first token, and for a char outside the vocab),
`top_logprobs` (null first) and `text_offset`.  `max_tokens: 0` without echo is an empty completion,
its prompts checked as for generation (a char outside the vocab: 400 naming `prompt`).  Echo with
generation (max_tokens > 0) is refused (param `echo`; /v1 answers it with 400, as every invalid
field).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.deps import ServerState, check_prompt
from app.errors import ApiError
from app.reading import read_text
from app.sse import EventStream, sse


def echo_logprobs(chars: list[dict[str, Any]]) -> dict[str, Any]:
    """/api/score's per-char entries → OpenAI's legacy `logprobs` (the first char unscored)."""
    return {
        "tokens": [c["char"] for c in chars],
        "token_logprobs": [None if i == 0 else c["logprob"] for i, c in enumerate(chars)],
        "top_logprobs": [
            None if i == 0 or c["logprob"] is None else dict(c.get("top", []))
            for i, c in enumerate(chars)
        ],
        "text_offset": list(range(len(chars))),
    }


async def echo_completion(
    state: ServerState, params: Any, request: Request, head: dict[str, Any]
) -> Response:
    """The whole answer to an echo / max_tokens 0 request; refused for echo with generation."""
    if params.echo and params.max_tokens != 0:
        raise ApiError(
            422,
            "echo: only with max_tokens 0 (scoring the prompt)",
            param="echo",
            code="unsupported",
        )
    model = state.model(params.model)
    prompts = [params.prompt] if isinstance(params.prompt, str) else list(params.prompt)
    limit = state.settings.max_prompt_chars
    if any(len(p) > limit for p in prompts):
        raise ApiError(
            422,
            f"prompt: at most {limit} chars (MAX_PROMPT_CHARS)",
            param="prompt",
            code="prompt_too_long",
        )
    # only scoring reads chars outside the vocab; an empty completion checks as generation does
    if not params.echo:
        for prompt in prompts:
            check_prompt(model, prompt, state.settings)
    choices: list[dict[str, Any]] = []
    for prompt in prompts:
        logprobs = None
        if params.echo and params.logprobs is not None:
            reading = await read_text(state, model, prompt, request, top=params.logprobs)
            logprobs = echo_logprobs(reading.chars())
        text = prompt if params.echo else ""
        for _ in range(params.n):
            choices.append(
                {
                    "text": text,
                    "index": len(choices),
                    "logprobs": logprobs,
                    "finish_reason": "length",
                }
            )
    prompt_tokens = sum(len(p) for p in prompts)
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 0, "total_tokens": prompt_tokens}
    head = {**head, "model": model.name}
    if not params.stream:
        return JSONResponse({**head, "choices": choices, "usage": usage})

    async def events() -> AsyncIterator[str]:
        for choice in choices:
            yield sse({**head, "choices": [choice]})
        if params.stream_options and params.stream_options.include_usage:
            yield sse({**head, "choices": [], "usage": usage})
        yield sse("[DONE]")

    return EventStream(events(), on_close=lambda: None)
