"""The FastAPI application: `create_app(settings)` and the lifespan that loads the models.

    uvicorn app.main:app --host 127.0.0.1 --port 8000      # settings from CHARLSTM_* variables

Importing this module is cheap (settings are read, nothing is loaded); the lifespan loads
every model directory once and starts one engine thread per model.  A model directory or a
setting that cannot be used stops start-up with one line naming the file or variable.

On SIGTERM (or Ctrl-C) the server stops admitting (generation routes and /readyz answer 503
`unavailable`) and ends every open sequence at once: `/api` streams end with `event: done`
and finish_reason "cancelled", `/v1` streams with an error chunk (type `unavailable`), and
requests waiting for a whole text get 503.  Then uvicorn's graceful shutdown completes and
the process exits 0.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from app.admission import Admission
from app.connection import LIMITS, ConnectionLimits
from app.deps import ServerState
from app.docs import install_docs, install_openapi
from app.errors import install_handlers
from app.logs import configure_logging
from app.metrics import Metrics, RequestMetrics
from app.middleware import (
    ApiKeyGuard,
    BodyGuard,
    QuietStartupFailure,
    ReplicaHeader,
    replica_name,
)
from app.registry import StartupError, load_registry
from app.routes import api, gates, openai, ops, pages, read
from app.settings import Settings, load_settings
from model.runtime import configure, import_tensorflow

log = logging.getLogger("app.main")
STATIC_DIR = Path(__file__).resolve().parent / "static"
# How often a thread holding the GIL hands it over (Python's default: 5 ms).  The engine threads
# and the event loop take turns; at 5 ms the loop waits for the engine's Python between steps.
# Measured (bench.http, 2-core Xeon, 2026-12-06): HTTP / in-process at 32 streams 0.76 → 0.87.
SWITCH_INTERVAL_S = 0.0005


def settle_interpreter() -> float:
    """Once the models are loaded: freeze the objects loading made (TensorFlow and Keras leave
    some 380,000) out of the garbage collector's reach, and shorten the GIL's switch interval;
    returns the interval it replaced, for `unsettle_interpreter`.

    A full collection walked them all in 230-290 ms (measured on the 2-core Xeon), stalling every
    stream and every request at once: 32 streams opened together got their first char 210-260
    ms late whenever one fell in.  Objects made later are still collected as usual.
    """
    gc.collect()
    gc.freeze()
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    return before


def unsettle_interpreter(switch_interval_s: float) -> None:
    """The lifespan's end: what was frozen may be collected again (tests start many apps)."""
    gc.unfreeze()
    sys.setswitchinterval(switch_interval_s)


def chain_stop_signals(on_stop: Callable[[], None]) -> Callable[[], None]:
    """Call `on_stop` on SIGTERM/SIGINT before uvicorn's own handler starts its graceful shutdown.

    uvicorn waits for open responses before running the lifespan's shutdown, so this is the moment
    to stop admitting and end the streams.  Returns a function restoring the handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        prev = signal.getsignal(sig)
        if not callable(prev):
            continue  # not under uvicorn's handler: leave the default behaviour alone

        def handler(signum: int, frame: FrameType | None, prev: Callable[..., Any] = prev) -> None:
            on_stop()  # runs on the main thread, between two steps of the event loop
            prev(signum, frame)

        previous[sig] = prev
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, prev in previous.items():
            signal.signal(sig, prev)

    return restore


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
    state: ServerState = app.state.server
    configure()  # numba: kernel cache, threading layer (model/runtime)
    # before Keras loads the models: its load-time log lines stay off stderr
    tf = import_tensorflow()
    # TensorFlow only loads models and takes gradients (/api/influence) here: one core, so the
    # engine's kernels keep the others while it works.
    with contextlib.suppress(RuntimeError):  # TensorFlow already ran in this process (tests)
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        registry = load_registry(state.settings)
    except StartupError as exc:
        state.startup_error = f"start-up refused: {exc}"
        raise
    registry.start()
    state.registry = registry
    switch_interval_s = settle_interpreter()

    def drain() -> None:
        if not state.admission.draining:
            log.info("stopping: ending %d open request(s)", state.admission.drain())

    restore = chain_stop_signals(drain)
    log.info("ready: models %s (default %s)", sorted(registry.models), registry.default)
    try:
        yield {
            LIMITS: ConnectionLimits.of(state.settings, state.metrics.rejected)
        }  # read by app/connection.py
    finally:
        restore()
        drain()
        registry.stop()
        unsettle_interpreter(switch_interval_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    metrics = Metrics()
    state = ServerState(settings, metrics, Admission(settings.max_active))
    metrics.watch(
        active=lambda: state.admission.active,
        queued=lambda: state.registry.queued if state.registry else 0,
        generating=lambda: state.registry.generating if state.registry else 0,
    )
    app = FastAPI(
        title="char-lstm",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app/docs.py serves /docs itself, offline and under the page's CSP
        redoc_url=None,
        description=(
            "Character-level LSTM text generation. "
            'Errors: `{"error": {message, type, param, code}}`.'
        ),
    )
    app.state.settings, app.state.server, app.state.metrics = settings, state, metrics
    install_handlers(app)
    install_openapi(app, state)
    install_docs(app)
    for module in (api, openai, ops, pages, read, gates):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Added innermost first: the request counter sees the body guard's 413s and 400s.
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes, on_reject=metrics.rejected)
    # outside the body guard: no body is read for a request without the key
    if settings.api_key is not None:
        app.add_middleware(
            ApiKeyGuard, key=settings.api_key.get_secret_value(), on_reject=metrics.rejected
        )
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(QuietStartupFailure, reason=lambda: state.startup_error)
    # outermost: preflights are answered here, and 401s carry the CORS headers
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Replica"],
            max_age=600,
        )
    # on every response
    app.add_middleware(ReplicaHeader, replica=replica_name(settings.replica_id))
    return app


def _exit_zero(signum: int, frame: FrameType | None) -> None:
    # uvicorn has finished its graceful shutdown (streams ended, lifespan done).  Exit at once:
    # the interpreter's own teardown of TensorFlow takes seconds, which would push a
    # `docker stop` past its grace period.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def exit_zero_after_sigterm() -> None:
    """After its graceful shutdown uvicorn re-raises SIGTERM under the handler it found at start;
    with the default one the process would die by the signal (status −15) although it stopped
    cleanly.  Installed before uvicorn starts, this makes that last step exit 0.

    Measured (2-core VM at load 18-25, bundled model, one request served, graceful timeout 5 s),
    SIGTERM to exit: this handler 2.7 and 3.5 s, status 0; no handler 3.3 and 5.0 s, status −15;
    sys.exit(0) instead of os._exit(0) 29 and 55 s (TensorFlow's teardown), past `docker stop`'s 10
    s.
    """
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _exit_zero)


# The entry point (`uvicorn app.main:app`, app/serve.py): the one place that sets process-wide
# state.  create_app() alone (tests, embedding) changes nothing outside the app.
app = create_app()
exit_zero_after_sigterm()
