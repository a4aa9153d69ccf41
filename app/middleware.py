"""Plain ASGI middleware: the API key, the request-body limit and the UTF-8 check, before any route
runs; the replica's name on every response.

`ApiKeyGuard` (only when CHARLSTM_API_KEY is set) wants `Authorization: Bearer <key>` on /api/* and
/v1/*, the scheme in any case (`bearer`, RFC 7235), the key compared in constant time; anything else
there is a 401 in the error envelope.  The page, /docs, /healthz, /readyz and /metrics stay open,
and so do CORS preflights (OPTIONS carries no credentials).

`QuietStartupFailure` reports a refused start-up (a bad model directory or setting) as the one
line the lifespan recorded, not Starlette's traceback.

`ReplicaHeader` adds `X-Replica: <CHARLSTM_REPLICA_ID, else the host name>` to every response, so a
client behind a load balancer (or a test of its sticky routing) sees which replica answered.

The body is read here (it is small: at most MAX_BODY_BYTES), counted while it arrives so a chunked
upload without Content-Length is refused as soon as it passes the limit, then replayed to the app.
Later `receive()` calls go straight through, so routes still see the client's `http.disconnect`.
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import ApiError, send_error

PROTECTED = ("/api/", "/v1/")


class ApiKeyGuard:
    def __init__(self, app: ASGIApp, key: str, on_reject: Callable[[str], None] | None = None):
        self.app, self.on_reject = app, on_reject
        self.expected = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] == "OPTIONS"
            or not path.startswith(PROTECTED)
        ):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, credentials = given.strip().partition(b" ")
        bearer = scheme.lower() == b"bearer"  # auth schemes are case-insensitive (RFC 7235 2.1)
        # Time does not depend on where the keys differ; a wrong scheme is compared too, then
        # refused.
        if hmac.compare_digest(credentials.strip(), self.expected) and bearer:
            await self.app(scope, receive, send)
            return
        message = "an API key is needed: send the header Authorization: Bearer <key>"
        if given:
            message = "the API key is not valid"
        error = ApiError(
            401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"}
        )
        if self.on_reject:
            self.on_reject(error.reason)
        await send_error(send, error)


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return True  # no type given: the route will refuse it, but never as a decode crash
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


class BodyGuard:
    def __init__(
        self, app: ASGIApp, max_bytes: int, on_reject: Callable[[str], None] | None = None
    ):
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject

    async def _refuse(self, send: Send, error: ApiError) -> None:
        if self.on_reject:
            self.on_reject(error.reason)
        await send_error(send, error)

    def _too_large(self) -> ApiError:
        return ApiError(413, f"request body over {self.max_bytes} bytes", code="body_too_large")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            await self._refuse(send, self._too_large())  # refused before reading a byte
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left while sending: nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._refuse(send, self._too_large())
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        data = b"".join(chunks)
        if data and _is_json(headers.get(b"content-type")):
            try:
                data.decode("utf-8")  # strict: also refuses encoded surrogates and overlongs
            except UnicodeDecodeError:
                await self._refuse(
                    send, ApiError(400, "the body is not valid UTF-8", code="invalid_utf8")
                )
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def replica_name(configured: str | None) -> str:
    """CHARLSTM_REPLICA_ID, else the host name (a container's or pod's own), as visible ASCII."""
    name = configured or socket.gethostname()
    return "".join(c for c in name if "!" <= c <= "~")[:64] or "unknown"


class ReplicaHeader:
    def __init__(self, app: ASGIApp, replica: str):
        self.app = app
        self.header = (b"x-replica", replica.encode("ascii"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, named)


class QuietStartupFailure:
    """Replace a failed lifespan start-up's message with `reason()`, the one-line cause."""

    def __init__(self, app: ASGIApp, reason: Callable[[], str | None]):
        self.app, self.reason = app, reason

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def quiet(message: Message) -> None:
            reason = self.reason()
            if message["type"] == "lifespan.startup.failed" and reason:
                message = {**message, "message": reason}
            await send(message)

        await self.app(scope, receive, quiet)
