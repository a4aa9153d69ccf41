"""`/api/*`: generate (whole text or a stream of server-sent events) and list the models.

curl -s localhost:8000/api/generate -H 'content-type: application/json' -d '{"prompt": "ROMEO:",
"seed": 1}' curl -sN localhost:8000/api/generate/stream -H 'content-type: application/json' -d
'{"max_chars": 200}'

The first and last stop of a request's path (README, "Follow a request"): the schema has checked the
body, `plan` and `Job.start` (app/job.py) check it against the server and run it on the model's
engine, and this module formats the job's events (model/event.py) as JSON or SSE.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.deps import ServerState, StateDep
from app.errors import generation_failed
from app.job import Job, Plan, plan
from app.sampling_params import api_sampling
from app.schemas import (
    GenerateParams,
    GenerateResponse,
    ModelsResponse,
    StreamDone,
    error_responses,
)
from app.sse import EventStream, sse
from model.event import Chunk, Done

router = APIRouter(prefix="/api", tags=["generate"])
ERRORS = error_responses(400, 404, 413, 422, 429, 500, 503)
STREAM_ERRORS = error_responses(400, 404, 413, 422, 429, 500, 503, by_ref=True)
STREAM_DOC = {
    "description": '`event: start` with `{"seed", "model"}`, then `data: {"text": ...}` events '
    "(with `logprobs` when asked for), then `event: done` with "
    f"{sorted(StreamDone.model_fields)}, or `event: error` with the error envelope",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def plan_of(state: ServerState, params: GenerateParams) -> Plan:
    sampling = api_sampling(params, state.model(params.model).vocab)
    # default: capped by MAX_CHARS
    max_chars = params.max_chars if "max_chars" in params.model_fields_set else None
    stop = tuple(params.stop or ())
    return plan(
        state,
        params.model,
        [params.prompt],
        sampling,
        max_chars=max_chars,
        stop=stop,
        logprobs=params.logprobs,
        seed=params.seed,
    )


def done_body(done: Done, model: str) -> dict[str, Any]:
    return {
        "finish_reason": done.finish_reason,
        "usage": asdict(done.usage),
        "seed": done.seed,
        "model": model,
    }


@router.post("/generate", response_model=GenerateResponse, responses=ERRORS)
async def generate(params: GenerateParams, request: Request, state: StateDep) -> Response:
    job = Job.start(state, plan_of(state, params))
    wholes = await job.result(request)
    if wholes is None:
        return Response(status_code=499)  # the client left; nobody reads this
    (whole,) = wholes
    body = {"text": whole.text, **done_body(whole.done, job.model.name)}
    if whole.logprobs is not None:
        body["logprobs"] = whole.logprobs
    return JSONResponse(body)


async def sse_events(job: Job) -> AsyncIterator[str]:
    # a client that stops still knows it
    yield sse({"seed": job.seeds[0], "model": job.model.name}, event="start")
    async for _, event in job.events():
        if isinstance(event, Chunk):
            chunk: dict[str, Any] = {"text": event.text}
            if event.logprobs is not None:
                chunk["logprobs"] = event.logprobs
            yield sse(chunk)
        elif isinstance(event, Done):
            yield sse(done_body(event, job.model.name), event="done")
        else:
            yield sse(generation_failed(event.error).body(), event="error")


@router.post(
    "/generate/stream",
    status_code=200,
    response_class=EventStream,
    responses={200: STREAM_DOC, **STREAM_ERRORS},
)
async def generate_stream(params: GenerateParams, state: StateDep) -> Response:
    job = Job.start(state, plan_of(state, params))
    return EventStream(sse_events(job), on_close=job.close)


@router.get("/models", response_model=ModelsResponse, responses=error_responses(503))
async def models(state: StateDep) -> dict[str, Any]:
    registry = state.loaded()
    return {
        "models": [m.info(name == registry.default) for name, m in sorted(registry.models.items())]
    }
