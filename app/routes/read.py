"""`/api` routes that read the model: score a text, look inside its cells, find what it copied.

curl -s localhost:8000/api/score -H 'content-type: application/json' \\
     -d '{"text": "ROMEO:\\nAy me!", "top": 3}'
curl -s localhost:8000/api/inspect -H 'content-type: application/json' \\
     -d '{"text": "\\"Hi,\\" she said", "layer": 1, "units": [7, 300], "what": "c"}'
curl -s localhost:8000/api/models/shakespeare/cells
curl -s localhost:8000/api/copied -H 'content-type: application/json' \\
     -d '{"text": "...", "min_chars": 24}'

Scoring and inspecting run on the model's engine thread between generation steps (app/reading.py);
the memorisation lookup runs in a worker thread on an index read once.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.deps import ServerState, StateDep
from app.errors import NOT_FOUND, ApiError
from app.read_schemas import (
    CopiedParams,
    CopiedResponse,
    InspectParams,
    InspectResponse,
    ScoreParams,
    ScoreResponse,
)
from app.reading import cached, model_file, read_text
from app.registry import LoadedModel
from app.schemas import error_responses
from model.reading import Probe

router = APIRouter(prefix="/api", tags=["read the model"])
ERRORS = error_responses(400, 404, 413, 422, 429, 500, 503)


def check_text(state: ServerState, text: str) -> None:
    limit = state.settings.max_score_chars
    if len(text) > limit:
        raise ApiError(
            422, f"Send at most {limit:,} chars of text.", param="text", code="text_too_long"
        )


@router.post("/score", response_model=ScoreResponse, responses=ERRORS)
async def score(params: ScoreParams, request: Request, state: StateDep) -> JSONResponse:
    """Each char's log-probability (nats) given the text before it, with the top alternatives."""
    model = state.model(params.model)
    check_text(state, params.text)
    reading = await read_text(state, model, params.text, request, top=params.top)
    held_out = model.card.get("held_out_bits_per_char")
    summary = {
        **reading.summary(),
        "held_out_bits_per_char": held_out if isinstance(held_out, int | float) else None,
    }
    # As built: response_model would add "top": null to every char when no alternatives were asked
    # for.
    return JSONResponse({"model": model.name, "chars": reading.chars(), "summary": summary})


@router.post("/inspect", response_model=InspectResponse, responses=ERRORS)
async def inspect(params: InspectParams, request: Request, state: StateDep) -> dict[str, Any]:
    """The chosen cells' activations (h or c of one layer) after each char."""
    model = state.model(params.model)
    check_text(state, params.text)
    probe = Probe(params.layer, tuple(params.units), params.what)
    reading = await read_text(state, model, params.text, request, probe=probe)
    return {
        "model": model.name,
        "layer": params.layer,
        "units": params.units,
        "what": params.what,
        "chars": list(params.text),
        "activations": reading.activation_rows(),
    }


def _load_json(path: Any) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None


@router.get("/models/{name}/cells", responses=error_responses(404, 503))
async def cells(name: str, request: Request, state: StateDep) -> Any:
    """Cells whose activation tracks simple features of the text (model/reading/finder.py wrote
    the file)."""
    model: LoadedModel = state.model(name)
    path = model_file(model, "cells.json")
    found = (
        cached(request, f"cells:{model.name}", lambda: _load_json(path))
        if path is not None
        else None
    )
    if found is None:
        raise ApiError(
            404,
            f"model {model.name!r} has no cells.json: "
            "run `python -m model.reading.finder --model DIR --corpus FILE`",
            NOT_FOUND,
            "name",
            "no_cells",
        )
    return found


@router.post("/copied", response_model=CopiedResponse, responses=ERRORS)
async def copied(params: CopiedParams, request: Request, state: StateDep) -> dict[str, Any]:
    """Spans of the text that appear verbatim (≥ min_chars) in the model's training text."""
    from model.reading import INDEX_FILE, MemoryIndex

    model = state.model(params.model)
    check_text(state, params.text)
    path = model_file(model, INDEX_FILE)
    base = {"model": model.name, "min_chars": params.min_chars}
    if path is None:
        message = (
            f"model {model.name!r} has no index of its training text "
            "(python -m model.reading.memory)"
        )
        return {**base, "indexed": False, "message": message, "spans": [], "copied_chars": 0}
    index = await asyncio.to_thread(
        cached, request, f"memory:{model.name}", lambda: MemoryIndex.load(path.parent)
    )
    spans = await asyncio.to_thread(index.copied_spans, params.text, params.min_chars)
    covered: set[int] = set()
    for span in spans:
        covered.update(range(span["start"], span["end"]))
    return {**base, "indexed": True, "message": None, "spans": spans, "copied_chars": len(covered)}
