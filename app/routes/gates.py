"""`/api` routes that show the recurrent cell at work: its gates, what it remembers, model figures.

curl -s localhost:8000/api/gates -H 'content-type: application/json' \\
     -d '{"text": "ROMEO:\\nAy me!", "layer": 1, "units": [7, 300]}'
curl -s localhost:8000/api/influence -H 'content-type: application/json' -d '{"text": "...",
"position": 200}' curl -s localhost:8000/api/models/shakespeare/figures

Gates run on the model's engine thread in step-sized slices, like scoring (app/reading.py), with the
kernel's own bits.  Influence is a TensorFlow gradient on the Keras model, one request at a time in
a worker thread (TensorFlow runs on one core there, so streams keep the other).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from fastapi import APIRouter, Request

from app.deps import ServerState, StateDep
from app.errors import NOT_FOUND, ApiError, unavailable
from app.gate_schemas import GatesParams, GatesResponse, InfluenceParams, InfluenceResponse
from app.reading import cached, model_file, run_on_engine
from app.registry import LoadedModel
from app.routes.read import check_text
from app.schemas import error_responses
from model.reading import (
    FIGURES_FILE,
    MAX_CONTEXT,
    GateReading,
    Influence,
    memory_span,
)

router = APIRouter(prefix="/api", tags=["read the model"])
ERRORS = error_responses(400, 404, 413, 422, 429, 500, 503)
_influence_lock = threading.Lock()  # one gradient at a time: each already uses a whole core


@router.post("/gates", response_model=GatesResponse, responses=ERRORS)
async def gates(params: GatesParams, request: Request, state: StateDep) -> dict[str, Any]:
    """Per char, the chosen cells' gates and states: i, f, g, o, c, h (LSTM); z, r, n, h (GRU); h
    (RNN)."""
    model = state.model(params.model)
    check_text(state, params.text)
    stack = model.engine.stack
    reading = await run_on_engine(
        state,
        model,
        request,
        lambda done: GateReading(
            stack, model.vocab, params.text, params.layer, tuple(params.units), done
        ),
    )
    return {"model": model.name, **reading.result()}


@router.post("/influence", response_model=InfluenceResponse, responses=ERRORS)
async def influence(params: InfluenceParams, state: StateDep) -> dict[str, Any]:
    """How much each earlier char moves the prediction of the char at `position` (a gradient
    norm)."""
    model = state.model(params.model)
    check_text(state, params.text)
    if params.position >= len(params.text):
        raise ApiError(
            422,
            f"Pick a position inside the text: 1 to {len(params.text) - 1}.",
            param="position",
            code="invalid_value",
        )
    start = max(0, params.position - MAX_CONTEXT)
    window = params.text[start : params.position + 1]
    unknown = sorted({ch for ch in window if ch not in model.vocab})
    if unknown:
        raise ApiError(
            422,
            "The text up to that position has chars the model does not know: remove them"
            " or pick a later position.",
            param="text",
            code="unknown_chars",
        )
    ids = model.vocab.encode(window)
    lease = state.admission.acquire(1)
    try:
        curve, log_p = await asyncio.to_thread(_gradient, state, model, ids)
    finally:
        lease.release()
    return {
        "model": model.name,
        "position": params.position,
        "char": params.text[params.position],
        "logprob": round(log_p, 5),
        "start": start,
        "influence": [float(f"{v:.5g}") for v in curve],
        "span": memory_span(curve),
    }


def _gradient(state: ServerState, model: LoadedModel, ids: Any) -> tuple[Any, float]:
    if model.keras is None:
        raise unavailable(shutting_down=False)
    with _influence_lock:
        if model.influence is None:
            model.influence = Influence(model.keras)
        return model.influence.at(ids, len(ids) - 1)


@router.get("/models/{name}/figures", responses=error_responses(404, 503))
async def figures(name: str, request: Request, state: StateDep) -> Any:
    """Gate saturation, memory span, loss by position and speed, computed once per model."""
    model: LoadedModel = state.model(name)
    path = model_file(model, FIGURES_FILE)
    found = (
        cached(request, f"figures:{model.name}", lambda: json.loads(path.read_text("utf-8")))
        if path
        else None
    )
    if found is None:
        raise ApiError(
            404,
            f"model {model.name!r} has no {FIGURES_FILE}: run `python -m model.reading.figures "
            "--model DIR --corpus FILE`",
            NOT_FOUND,
            "name",
            "no_figures",
        )
    return found
