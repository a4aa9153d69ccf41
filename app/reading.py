"""Run "read the model" work for the routes in app/routes/read.py, and find a model's extra files.

    reading = await read_text(state, model, text, top=3, request=request)   # on the engine thread
    cells = model_file(model, "cells.json")                                 # Path or None

A reading (model/reading/score.py) runs on the model's engine thread in step-sized slices, so
streams that are running keep at least half their speed while it runs; it holds one admission slot
(429 when MAX_ACTIVE are busy) and is cancelled when the client leaves or the server drains.  The
model directory's optional files (cells.json, the memorisation index) are read lazily, once per app,
and kept on `app.state.reading_cache`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from fastapi import Request

from app.deps import ServerState
from app.errors import SERVER_ERROR, ApiError, unavailable
from app.job import until_disconnect
from app.registry import LoadedModel
from model.engine import EngineClosed
from model.reading import Probe, Reading


class EngineReading(Protocol):
    """What run_on_engine needs of a reading, besides being a model.engine.Work."""

    finished: threading.Event
    error: BaseException | None

    def cancel(self) -> None: ...


W = TypeVar("W", bound=EngineReading)


async def read_text(
    state: ServerState,
    model: LoadedModel,
    text: str,
    request: Request,
    top: int = 0,
    probe: Probe | None = None,
) -> Reading:
    """Score (and probe) `text` on the model's engine; 422 for a bad probe, 429, 503 when
    stopping."""
    return await run_on_engine(
        state,
        model,
        request,
        lambda done: Reading(
            model.engine.stack, model.vocab, text, top=top, probe=probe, on_done=done
        ),
    )


async def run_on_engine(
    state: ServerState, model: LoadedModel, request: Request, make: Callable[[Any], W]
) -> W:
    """Build a reading with `make(on_done)` (a model.engine.Work: Reading, GateReading) and run it
    on
    the model's engine thread; 422 when `make` raises ValueError ("field: message"), 429, 503."""
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()

    def settle() -> None:
        if not finished.done():
            finished.set_result(None)

    def on_done(_: Any) -> None:  # engine thread
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
            loop.call_soon_threadsafe(settle)

    try:
        reading = make(on_done)
    except ValueError as exc:  # "field: what to do"
        field, _, message = str(exc).partition(": ")
        raise ApiError(422, message or str(exc), param=field, code="invalid_value") from None
    lease = state.admission.acquire(1)
    lease.tickets.append(reading)  # the shutdown drain cancels it like a stream
    gone = asyncio.ensure_future(until_disconnect(request))
    try:
        try:
            model.engine.submit_work(reading)
        except EngineClosed:
            raise unavailable(shutting_down=True) from None
        await asyncio.wait({finished, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        reading.cancel()  # a no-op once read; else the engine drops it before its next slice
        lease.release()
    if not reading.finished.is_set() or reading.error is not None:
        if state.admission.draining or not reading.finished.is_set():
            raise unavailable(shutting_down=True)
        raise ApiError(
            500, "reading the text failed inside the server", SERVER_ERROR, code="reading_failed"
        )
    return reading


def model_file(model: LoadedModel, name: str) -> Path | None:
    """`name` in the directory the model was loaded from, if it is there."""
    return model.path / name if model.path is not None and (model.path / name).exists() else None


def cached(request: Request, key: str, load: Any) -> Any:
    """`load()` once per app and key (a model's cells.json, its memorisation index)."""
    cache: dict[str, Any] | None = getattr(request.app.state, "reading_cache", None)
    if cache is None:
        cache = request.app.state.reading_cache = {}
    if key not in cache:
        cache[key] = load()
    return cache[key]
