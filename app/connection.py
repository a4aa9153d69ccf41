"""Connections that slow or idle clients cannot hold open: uvicorn's httptools protocol with
deadlines.

    python -m app.serve                       # uses it, as `make serve` and the Docker image do
    uvicorn app.main:app --http app.connection:GuardedHttpProtocol

Plain uvicorn closes an idle keep-alive connection after a response, and nothing else: a connection
that sends nothing, half its headers or half its body stays open for ever, and so does one whose
client stops reading.  This protocol adds, per connection (CHARLSTM_* in app/settings.py):

- HEADER_TIMEOUT_S, from the connection's start (or a later request's first byte) to its last
header;
- BODY_TIMEOUT_S, from the last header to the end of the body;
- KEEP_ALIVE_S, idle between two requests (uvicorn's own timer, set from this setting);
- SLOW_CLIENT_S: the write buffer stays full this long, i.e. the client reads nothing: the
connection
  is aborted and logged as a slow consumer.  Its stream sees the disconnect and ends "cancelled",
  freeing its slot (app/job.py); until then its generation is paused (app/collector.py).

STREAM_BUFFER_BYTES (B) bounds what one unread response holds, kernel included: the socket's send
buffer gets B/8 (SO_SNDBUF; Linux doubles it for its bookkeeping, so B/4), the transport's write
buffer B/8 (its high-water mark), and app/collector.py pauses a stream at B/8 more, beside the one
event a blocked send holds: about B/2 in all, the rest of B left for the request's own objects. Left
to itself the kernel grows a send buffer to 4 MiB (net.ipv4.tcp_wmem) for a client that reads
nothing: whole texts sit there, charged to the container, long after the server thinks them sent.
The fixed buffer costs no speed on a LAN (a balancer in front); at 64 KiB and 50 ms of round trip a
connection still carries ~320 KB/s (a stream needs a few KB/s), and a larger B buys more.

A request cut off after some bytes gets a 408 in the error envelope before the close; a connection
that sent nothing is closed without a word (browsers open spare ones).  The limits come from the
app's lifespan state (app/main.py), so they are the settings the app was made with; under another
app this is uvicorn's httptools protocol unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

log = logging.getLogger("app.connection")
LIMITS = "connection_limits"  # the key in the lifespan state
LAST_LOOK_S = 0.01  # after a deadline, one more turn of the loop's I/O before the verdict
Phase = Literal["header", "body"]


@dataclass(frozen=True)
class ConnectionLimits:
    header_s: float
    body_s: float
    keep_alive_s: float
    slow_client_s: float
    write_high: int  # bytes in the transport's buffer above which a send waits: B/8
    send_buffer: int  # the socket's SO_SNDBUF: B/8 (the kernel's own cap: twice that)
    on_cut: Callable[
        [str], None
    ]  # a request or response cut off: "header_timeout", "body_timeout", "slow_client"

    @classmethod
    def of(cls, settings: Settings, on_cut: Callable[[str], None]) -> ConnectionLimits:
        return cls(
            settings.header_timeout_s,
            settings.body_timeout_s,
            settings.keep_alive_s,
            settings.slow_client_s,
            max(512, settings.stream_buffer_bytes // 8),
            settings.stream_buffer_bytes // 8,
            on_cut,
        )


def request_timeout(message: str) -> bytes:
    """A whole 408 response in the error envelope, closing the connection."""
    error = {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": "request_timeout",
    }
    body = json.dumps({"error": error}).encode()
    head = (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    return head + body


class GuardedHttpProtocol(HttpToolsProtocol):
    def __init__(
        self, config: Any, server_state: Any, app_state: dict[str, Any], _loop: Any = None
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: ConnectionLimits | None = app_state.get(LIMITS)
        if self.limits is not None:
            self.timeout_keep_alive = self.limits.keep_alive_s  # uvicorn's timer
        self._deadline: asyncio.TimerHandle | None = None  # for the headers or the body
        self._stall: asyncio.TimerHandle | None = None  # while the write buffer is full
        self._begun = False  # a byte of the request being read has arrived

    # --- the connection ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limits is not None:
            high = self.limits.write_high
            transport.set_write_buffer_limits(high=high, low=high // 4)
            sock = transport.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):  # e.g. a Unix socket's own rules
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.send_buffer)
            self._arm("header")  # a connection that sends nothing counts as slow headers

    def connection_lost(self, exc: Exception | None) -> None:
        self._arm(None)
        self._unstall()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.limits is not None and self._stall is None:
            self._stall = self.loop.call_later(self.limits.slow_client_s, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._unstall()

    # --- httptools' parser callbacks -------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._begun = True
        if self._deadline is None:  # a new connection's deadline runs from its start
            self._arm("header")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        upgrading = self.parser.should_upgrade() and self._should_upgrade()
        self._arm(None if upgrading else "body")

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._arm(None)
        self._begun = False

    # --- deadlines -------------------------------------------------------------------------
    def _arm(self, phase: Phase | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if phase is not None and self.limits is not None:
            seconds = self.limits.header_s if phase == "header" else self.limits.body_s
            self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _expired(self, phase: Phase, seconds: float, last_look: bool = False) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.limits is None:
            return
        # a late timer (a starved loop) may run before the bytes already read: let them in
        if not last_look:
            self._deadline = self.loop.call_later(LAST_LOOK_S, self._expired, phase, seconds, True)
            return
        client = self._peer()
        if not self._begun and phase == "header":
            log.debug("idle connection from %s closed after %g s", client, seconds)
            self.transport.close()
            return
        self.limits.on_cut(f"{phase}_timeout")  # counted
        log.debug(
            "%s from %s not received within %g s: 408, connection closed", phase, client, seconds
        )
        cycle = self.cycle  # for the body, this request's; for the headers, the one before, if any
        # no response under way on this connection
        between = cycle is None or cycle.response_complete
        # a 408 never lands inside a response
        if between if phase == "header" else not cycle.response_started:
            self.transport.write(
                request_timeout(f"the request's {phase} did not arrive within {seconds:g} s")
            )
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = (
                True  # the app reads a disconnect; nothing more it sends is written
            )
            cycle.message_event.set()
        self.transport.close()

    def _stalled(self) -> None:
        self._stall = None
        if self.transport.is_closing() or self.limits is None:
            return
        scope = self.scope or {}
        client = self._peer()
        log.warning(
            "slow consumer: %s read nothing of %s %s for %g s; "
            "connection closed (a stream ends cancelled)",
            client,
            scope.get("method", "?"),
            scope.get("path", "?"),
            self.limits.slow_client_s,
        )
        self.limits.on_cut("slow_client")
        self.transport.abort()  # close() would wait for the unread buffer to drain

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "?"

    def _unstall(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
