"""Server-sent events: the wire format and a streaming response that always frees its job.

    return EventStream(events(), on_close=job.close)     # events() yields sse({...}) strings

`on_close` runs however the response ends (finished, client gone, server stopping), even when
the client leaves before the first event, when an async generator's own `finally` never runs.
After CHARLSTM_SSE_PING_S (app/settings.py) without an event, a `: ping` comment goes out
(clients skip comments), so proxies that cut idle connections keep long streams open.

Why not FastAPI's EventSourceResponse (issue 20, item 5): `python -m bench.sse`, 2026-12-06, on
an Intel Xeon (AVX-512), 2 cores shared with other work (load 18); 20,002 events a stream in
the /api shape (`event: start`, `data: {"text": "a"}`..., `event: done`) through uvicorn,
7 interleaved rounds, medians, one run:

    route                                 server CPU µs/event   events/s   ratios to today
    EventStream + sse() (this module)                     7.0     14,502
    EventSourceResponse yielding dicts                   60.0      2,533   0.12× CPU, 0.17×/s
      yielding ServerSentEvent(data=...)                 80.5      1,896   0.09×, 0.13×
      yielding ServerSentEvent(raw_data=...)             67.0      2,474   0.10×, 0.17×

The bar was 0.95×: FastAPI passes each event through two memory streams between two extra
tasks, under a new timeout scope per event.  It would also lose behaviour: its ping interval is
`fastapi.routing._PING_INTERVAL`, one private constant per process, so an app's sse_ping_s is
ignored (0.25 s set: 4 pings in 1.2 s of silence here, 0 there); and the endpoint must be the
generator, whose body runs after the 200 has gone out, so a refusal raised before the first
event (Job.start's 429) ends as a 200 cut off mid-body plus a logged traceback, and
/v1/completions (JSON or a stream from one route) cannot use it.  Cleanup when the client leaves
before the first event works in both; on the wire only its compact JSON would differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from app.settings import SSE_PING_S

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no proxy buffering
PING = ": ping\n\n"


def sse(data: Any, event: str | None = None) -> str:
    """One event; the JSON is on one line (newlines inside strings are escaped by JSON)."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return f"{head}data: {payload}\n\n"


class EventStream(StreamingResponse):
    media_type = "text/event-stream"

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None]):
        super().__init__(events, headers=SSE_HEADERS)
        self._events, self._on_close = events, on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = getattr(getattr(scope.get("app"), "state", None), "settings", None)
        keepalive = KeepAlive(send, float(getattr(settings, "sse_ping_s", SSE_PING_S)))
        pinger = asyncio.ensure_future(keepalive.run())
        try:
            await super().__call__(scope, receive, keepalive.send)
        finally:
            pinger.cancel()
            with contextlib.suppress(BaseException):
                await pinger
            self._on_close()
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()


class KeepAlive:
    """Sends the response's messages; in between, PING after each `every` seconds without one.

    A task beside the stream that wakes once per `every` seconds of silence, so an event costs only
    a time stamp and an uncontended lock.
    """

    def __init__(self, send: Send, every: float):
        self._send, self.every = send, every
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._last = self._loop.time()
        self._open = False  # headers sent, body not finished

    async def send(self, message: Message) -> None:
        async with self._lock:
            await self._send(message)
            self._last = self._loop.time()
            if message["type"] == "http.response.start":
                self._open = True
            elif not message.get("more_body", False):
                self._open = False

    async def run(self) -> None:
        ping = {"type": "http.response.body", "body": PING.encode(), "more_body": True}
        while True:
            wait = self._last + self.every - self._loop.time() if self._open else self.every
            await asyncio.sleep(max(0.0, wait))
            async with self._lock:
                if self._open and self._loop.time() - self._last >= self.every:
                    await self._send(ping)
                    self._last = self._loop.time()
