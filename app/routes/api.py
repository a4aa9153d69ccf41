"""`/api/*`: generate (whole text or a stream of server-sent events) and list the models.

curl -s localhost:8000/api/generate -H 'content-type: application/json' -d '{"prompt": "ROMEO:", "seed": 1}'
curl -sN localhost:8000/api/generate/stream -H 'content-type: application/json' -d '{"max_chars": 200}'
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.errors import UNAVAILABLE, ApiError
from app.generation import Job, ServerState, State, check_max_chars, check_prompt, collect_or_abandon, generation_failed
from app.registry import LoadedModel
from app.schemas import GenerateParams, GenerateResponse, ModelsResponse, StreamDone, error_responses
from app.sse import EventStream, sse
from model.generate import GenerationRequest
from model.sampling import SamplingParams

router = APIRouter(prefix="/api", tags=["generate"])
ERRORS = error_responses(400, 404, 413, 422, 429, 500, 503)
STREAM_ERRORS = error_responses(400, 404, 413, 422, 429, 500, 503, by_ref=True)
STREAM_DOC = {
    "description": '`data: {"text": ...}` events (with `logprobs` when asked for), then `event: done` with '
    f"{sorted(StreamDone.model_fields)}, or `event: error` with the error envelope",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def prepare(state: ServerState, params: GenerateParams) -> tuple[LoadedModel, GenerationRequest]:
    """The model and the engine request for `params`; 404/422/503 before any work."""
    model = state.model(params.model)
    check_prompt(model, params.prompt, state.settings)
    max_chars = params.max_chars
    if "max_chars" not in params.model_fields_set:
        max_chars = min(max_chars, state.settings.max_chars)  # the default never exceeds the server's limit
    check_max_chars(max_chars, state.settings)
    sampling = SamplingParams(params.temperature, params.top_k, params.top_p)
    request = GenerationRequest(
        params.prompt, max_chars, sampling, tuple(params.stop or ()), params.logprobs, params.seed
    )
    return model, request


def summary(model: LoadedModel, request: GenerationRequest, generated: int, end: Any) -> dict[str, Any]:
    usage = {"prompt_chars": len(request.prompt), "generated_chars": generated}
    return {"finish_reason": end.finish_reason, "usage": usage, "seed": int(end.seed), "model": model.name}


@router.post("/generate", response_model=GenerateResponse, responses=ERRORS)
async def generate(params: GenerateParams, request: Request, state: State) -> Response:
    model, req = prepare(state, params)
    job = Job.start(state, model, [req], stream=False)
    try:
        batches = await collect_or_abandon(job, request)
        if batches is None:
            return Response(status_code=499)  # the client left; nobody reads this
        job.note(batches[0])
    finally:
        job.close()
    text, end = batches[0].text, batches[0].end
    if isinstance(end, BaseException):
        raise generation_failed(end)
    if end.finish_reason == "cancelled":  # only the shutdown drain cancels a waiting request
        raise ApiError(503, "the server is shutting down", UNAVAILABLE, code="shutting_down")
    body = {"text": text, **summary(model, req, len(text), end)}
    if req.logprobs:
        body["logprobs"] = batches[0].logprobs
    return JSONResponse(body)


async def events(job: Job, model: LoadedModel, req: GenerationRequest, interval: float) -> AsyncIterator[str]:
    sent = 0
    async for batches in job.collector.coalesced(interval):
        batch = batches[0]
        job.note(batch)
        if batch.text:
            chunk: dict[str, Any] = {"text": batch.text}
            if req.logprobs:
                chunk["logprobs"] = batch.logprobs
            sent += len(batch.text)
            yield sse(chunk)
        if isinstance(batch.end, BaseException):
            yield sse(generation_failed(batch.end).body(), event="error")
        elif batch.end is not None:
            yield sse(summary(model, req, sent, batch.end), event="done")


@router.post(
    "/generate/stream", status_code=200, response_class=EventStream, responses={200: STREAM_DOC, **STREAM_ERRORS}
)
async def generate_stream(params: GenerateParams, state: State) -> Response:
    model, req = prepare(state, params)
    job = Job.start(state, model, [req], stream=True)
    return EventStream(events(job, model, req, state.settings.coalesce_ms / 1000), on_close=job.close)


@router.get("/models", response_model=ModelsResponse, responses=error_responses(503))
async def models(state: State) -> dict[str, Any]:
    registry = state.registry
    if registry is None:
        raise ApiError(503, "models are not loaded yet", UNAVAILABLE, code="not_ready")
    return {"models": [m.info(name == registry.default) for name, m in sorted(registry.models.items())]}
