"""OpenAI-compatible routes: `POST /v1/completions` (streamed or not, `n` completions) and `GET
/v1/models`.

from openai import OpenAI client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
client.completions.create(model="shakespeare", prompt="ROMEO:", max_tokens=200, n=2, seed=7)

The same path as app/routes/api.py (`plan`, `Job`, the same events), formatted as OpenAI's legacy
completions; `echo` and `max_tokens: 0` score the prompt instead (app/echo.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.deps import ServerState, StateDep
from app.echo import echo_completion
from app.job import Job, Plan, end_error, plan
from app.openai_schemas import (
    DEFAULT_TEMPERATURE,
    Completion,
    CompletionParams,
    ModelList,
    unsupported,
)
from app.sampling_params import openai_sampling
from app.schemas import error_responses
from app.sse import EventStream, sse
from model.event import CharLogprob, Chunk, Done

router = APIRouter(prefix="/v1", tags=["openai"])
STREAM_DOC = {
    "model": Completion,
    "description": "a completion; with `stream: true`, text/event-stream of "
    "completion chunks ending with `data: [DONE]`",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def plan_of(state: ServerState, params: CompletionParams) -> Plan:
    prompts = [params.prompt] if isinstance(params.prompt, str) else params.prompt
    stop = (params.stop,) if isinstance(params.stop, str) else tuple(params.stop or ())
    sampling = openai_sampling(params, state.model(params.model).vocab, DEFAULT_TEMPERATURE)
    return plan(
        state,
        params.model,
        prompts,
        sampling,
        n=params.n,
        max_chars=params.max_tokens,
        max_param="max_tokens",
        stop=stop,
        logprobs=params.logprobs or 0,
        seed=params.seed,
    )


def legacy_logprobs(entries: list[CharLogprob], offset: int) -> dict[str, Any]:
    """Our per-char entries in OpenAI's legacy completions shape; `offset` = chars before the
    first."""
    return {
        "tokens": [e["char"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [dict(e["top"]) for e in entries],
        "text_offset": list(range(offset, offset + len(entries))),
    }


def usage(params: CompletionParams, generated: int) -> dict[str, int]:
    prompt_tokens = (
        len(params.prompt) if isinstance(params.prompt, str) else sum(len(p) for p in params.prompt)
    )
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": generated,
        "total_tokens": prompt_tokens + generated,
    }


@router.post(
    "/completions",
    response_model=Completion,
    responses={
        200: STREAM_DOC,
        **error_responses(400, 404, 413, 429, 500, 503),
    },  # validation: 400 on /v1
)
async def completions(params: CompletionParams, request: Request, state: StateDep) -> Response:
    if (refused := unsupported(params)) is not None:
        raise refused
    # the prompt's own logprobs, no generation (app/echo.py)
    if params.echo or params.max_tokens == 0:
        head = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
        }
        return await echo_completion(state, params, request, head)
    job = Job.start(state, plan_of(state, params))
    head = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": job.model.name,
    }
    if params.stream:
        include_usage = bool(params.stream_options and params.stream_options.include_usage)
        return EventStream(chunks(job, head, params, include_usage), on_close=job.close)
    wholes = await job.result(request)
    if wholes is None:
        return Response(status_code=499)  # the client left; nobody reads this
    choices = [
        {
            "text": w.text,
            "index": i,
            "logprobs": None
            if w.logprobs is None
            else legacy_logprobs(w.logprobs, len(job.requests[i].prompt)),
            "finish_reason": w.done.finish_reason,
            "seed": w.done.seed,
        }
        for i, w in enumerate(wholes)
    ]
    return JSONResponse(
        {**head, "choices": choices, "usage": usage(params, sum(len(w.text) for w in wholes))}
    )


async def chunks(
    job: Job, head: dict[str, Any], params: CompletionParams, include_usage: bool
) -> AsyncIterator[str]:
    sent = [0] * len(job.requests)
    async for index, event in job.events():
        choice: dict[str, Any] = {
            "text": "",
            "index": index,
            "logprobs": None,
            "finish_reason": None,
        }
        if isinstance(event, Chunk):
            choice["text"] = event.text
            if event.logprobs:
                choice["logprobs"] = legacy_logprobs(
                    event.logprobs, len(job.requests[index].prompt) + sent[index]
                )
            sent[index] += len(event.text)
        elif (error := end_error(event)) is not None:
            yield sse(error.body())  # the openai client raises APIError on this chunk
            return  # closing the response cancels the other completions
        elif isinstance(event, Done):
            choice["finish_reason"], choice["seed"] = event.finish_reason, event.seed
        yield sse({**head, "choices": [choice]})
    if include_usage:
        yield sse({**head, "choices": [], "usage": usage(params, sum(sent))})
    yield sse("[DONE]")


@router.get("/models", response_model=ModelList, responses=error_responses(503))
async def models(state: StateDep) -> dict[str, Any]:
    registry = state.loaded()
    data = [
        {"id": name, "object": "model", "created": m.created, "owned_by": "char-lstm"}
        for name, m in sorted(registry.models.items())
    ]
    return {"object": "list", "data": data}
