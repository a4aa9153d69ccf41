"""OpenAI-compatible routes: `POST /v1/completions` (streamed or not, `n` completions) and `GET /v1/models`.

from openai import OpenAI
client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
client.completions.create(model="shakespeare", prompt="ROMEO:", max_tokens=200, n=2, seed=7)
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.errors import UNAVAILABLE, ApiError
from app.generation import Job, ServerState, State, check_max_chars, check_prompt, collect_or_abandon, generation_failed
from app.openai_schemas import Completion, CompletionParams, ModelList
from app.registry import LoadedModel
from app.schemas import MAX_SEED, error_responses
from app.sse import EventStream, sse
from model.generate import GenerationRequest
from model.sampling import SamplingParams

router = APIRouter(prefix="/v1", tags=["openai"])
DEFAULT_MAX_TOKENS = 500  # the shared schema's max_chars default
STREAM_DOC = {
    "model": Completion,
    "description": "a completion; with `stream: true`, text/event-stream of "
    "completion chunks ending with `data: [DONE]`",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


@dataclass
class Plan:
    model: LoadedModel
    prompts: list[str]
    n: int
    requests: list[GenerationRequest]

    def prompt_of(self, index: int) -> str:
        return self.prompts[index // self.n]


def plan(state: ServerState, params: CompletionParams) -> Plan:
    model = state.model(params.model)
    prompts = [params.prompt] if isinstance(params.prompt, str) else params.prompt
    if len(prompts) * params.n > state.settings.max_active:
        raise ApiError(422, f"n: n × prompts must be ≤ {state.settings.max_active} (MAX_ACTIVE)", param="n")
    max_tokens = min(DEFAULT_MAX_TOKENS, state.settings.max_chars) if params.max_tokens is None else params.max_tokens
    check_max_chars(max_tokens, state.settings, "max_tokens")
    for prompt in prompts:
        check_prompt(model, prompt, state.settings)
    stop = (params.stop,) if isinstance(params.stop, str) else tuple(params.stop or ())
    sampling = SamplingParams(0.8 if params.temperature is None else params.temperature, params.top_k, params.top_p)
    requests = []
    for index in range(len(prompts) * params.n):
        # Each completion its own seed, so n > 1 gives n different texts, each reproducible.
        seed = None if params.seed is None else (params.seed + index) % MAX_SEED
        requests.append(
            GenerationRequest(prompts[index // params.n], max_tokens, sampling, stop, params.logprobs or 0, seed)
        )
    return Plan(model, prompts, params.n, requests)


def legacy_logprobs(entries: list[dict[str, Any]], offset: int) -> dict[str, Any]:
    """Our per-char entries in OpenAI's legacy completions shape; `offset` = chars before the first."""
    return {
        "tokens": [e["char"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [dict(e["top"]) for e in entries],
        "text_offset": list(range(offset, offset + len(entries))),
    }


def usage(plan: Plan, generated: int) -> dict[str, int]:
    prompt_tokens = sum(len(p) for p in plan.prompts)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": generated, "total_tokens": prompt_tokens + generated}


def check_end(end: Any) -> None:
    if isinstance(end, BaseException):
        raise generation_failed(end)
    if end.finish_reason == "cancelled":
        raise ApiError(503, "the server is shutting down", UNAVAILABLE, code="shutting_down")


@router.post(
    "/completions",
    response_model=Completion,
    responses={200: STREAM_DOC, **error_responses(400, 404, 413, 422, 429, 500, 503)},
)
async def completions(params: CompletionParams, request: Request, state: State) -> Response:
    p = plan(state, params)
    job = Job.start(state, p.model, p.requests, stream=params.stream)
    head = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": p.model.name,
    }
    if params.stream:
        include_usage = bool(params.stream_options and params.stream_options.include_usage)
        return EventStream(stream(job, p, head, include_usage, state.settings.coalesce_ms / 1000), on_close=job.close)
    try:
        batches = await collect_or_abandon(job, request)
        if batches is None:
            return Response(status_code=499)  # the client left; nobody reads this
        for batch in batches:
            job.note(batch)
    finally:
        job.close()
    choices = []
    for b in batches:
        check_end(b.end)
        lp = legacy_logprobs(b.logprobs, len(p.prompt_of(b.index))) if params.logprobs else None
        choices.append(
            {
                "text": b.text,
                "index": b.index,
                "logprobs": lp,
                "finish_reason": b.end.finish_reason,
                "seed": int(b.end.seed),
            }
        )
    return JSONResponse({**head, "choices": choices, "usage": usage(p, sum(len(b.text) for b in batches))})


async def stream(job: Job, p: Plan, head: dict[str, Any], include_usage: bool, interval: float) -> AsyncIterator[str]:
    sent = [0] * len(p.requests)
    async for batches in job.collector.coalesced(interval):
        for b in batches:
            job.note(b)
            choice: dict[str, Any] = {"text": b.text, "index": b.index, "logprobs": None, "finish_reason": None}
            if b.logprobs:
                choice["logprobs"] = legacy_logprobs(b.logprobs, len(p.prompt_of(b.index)) + sent[b.index])
            sent[b.index] += len(b.text)
            if b.end is not None:
                try:
                    check_end(b.end)
                except ApiError as exc:
                    yield sse(exc.body())  # the openai client raises APIError on this chunk
                    return  # closing the response cancels the other completions
                choice["finish_reason"], choice["seed"] = b.end.finish_reason, int(b.end.seed)
            if b.text or b.end is not None:
                yield sse({**head, "choices": [choice]})
    if include_usage:
        yield sse({**head, "choices": [], "usage": usage(p, sum(sent))})
    yield sse("[DONE]")


@router.get("/models", response_model=ModelList, responses=error_responses(503))
async def models(state: State) -> dict[str, Any]:
    registry = state.registry
    if registry is None:
        raise ApiError(503, "models are not loaded yet", UNAVAILABLE, code="not_ready")
    data = [
        {"id": name, "object": "model", "created": m.created, "owned_by": "char-lstm"}
        for name, m in sorted(registry.models.items())
    ]
    return {"object": "list", "data": data}
