"""One error envelope everywhere: `{"error": {"message", "type", "param", "code"}}` (OpenAI's shape).

`ApiError` is raised by handlers (`unavailable()` is the one 503, `generation_failed()` the one
500 for a failure inside generation); `install_handlers` converts it, FastAPI's validation errors
and Starlette's 404/405 into the envelope.  Messages never echo raw input back: validation
messages are built from pydantic's message and the field name only.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Send

log = logging.getLogger("app.errors")

INVALID, NOT_FOUND, OVERLOADED, UNAVAILABLE, SERVER_ERROR = (
    "invalid_request_error",
    "not_found",
    "overloaded",
    "unavailable",
    "server_error",
)


REASONS = {400: "bad_encoding", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
           422: "invalid", 429: "overloaded", 503: "unavailable"}  # fmt: skip


OPENAI_PREFIX = "/v1/"


class ApiError(Exception):
    """An error answered with the envelope; `reason` labels the rejected-requests metric."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = INVALID,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}
        self._reason: str | None = None

    @property
    def reason(self) -> str:
        """A label from a small fixed set, for the rejected-requests metric."""
        return self._reason or REASONS.get(self.status, str(self.status))

    def for_path(self, path: str) -> ApiError:
        """As answered on `path`: a validation error is 400 on /v1/* (what OpenAI and vLLM answer, the
        openai client's BadRequestError), 422 everywhere else."""
        if self.status != 422 or not path.startswith(OPENAI_PREFIX):
            return self
        error = ApiError(400, self.message, self.type, self.param, self.code, self.headers)
        error._reason = self.reason  # still counted as a validation refusal
        return error

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), self.status, headers=self.headers)


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def unavailable(shutting_down: bool = False) -> ApiError:
    """The one 503: the models are not loaded yet, or the server is shutting down."""
    if shutting_down:
        return ApiError(503, "the server is shutting down", UNAVAILABLE, code="shutting_down")
    return ApiError(503, "models are not loaded yet", UNAVAILABLE, code="not_ready")


def generation_failed(error: BaseException) -> ApiError:
    """The error a client gets for a sequence that failed inside the engine (details only in the log)."""
    log.error("generation failed", exc_info=error)
    return ApiError(500, "generation failed inside the server", SERVER_ERROR, code="generation_failed")


async def send_error(send: Send, error: ApiError) -> None:
    """Answer from plain ASGI middleware, before the app has seen the request."""
    response = error.response()
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Any:  # pragma: no cover - a JSONResponse never reads
    return {"type": "http.disconnect"}


def _param_of(loc: tuple[Any, ...]) -> str | None:
    """("body", "stop", 0) → "stop"; the whole body or a JSON position → None."""
    parts = [p for p in loc if isinstance(p, str)]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return parts[0] if parts else None


def _validation_message(err: dict[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        detail = (err.get("ctx") or {}).get("error", "")
        return f"malformed JSON body ({detail})" if detail else "malformed JSON body"
    param = _param_of(tuple(err.get("loc", ())))
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "model_attributes_type":
        return "the body must be a JSON object sent with Content-Type: application/json"
    if err.get("type") == "missing" and param is None:
        return "a JSON body is required (Content-Type: application/json)"
    return f"{param}: {msg}" if param else msg


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    first = errors[0] if errors else {"msg": "invalid request"}
    code = str(first.get("type")) if first.get("type") else None  # pydantic's error type, e.g. "int_type"
    return ApiError(422, _validation_message(first), INVALID, _param_of(tuple(first.get("loc", ()))), code)


def install_handlers(app: FastAPI) -> None:
    """Route every error FastAPI or Starlette can raise through the envelope."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        exc = exc.for_path(request.url.path)
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None and exc.status != 500:
            metrics.rejected(exc.reason)
        return exc.response()

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return await on_api_error(request, validation_error(list(exc.errors())))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        status, headers = exc.status_code, dict(exc.headers or {})
        if status == 404:
            err = ApiError(404, "no such route", NOT_FOUND, code="route_not_found", headers=headers)
        elif status == 405:
            err = ApiError(405, "method not allowed on this route", INVALID, code="method_not_allowed", headers=headers)
        elif status == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            err = ApiError(400, "the body is not valid UTF-8", INVALID, code="invalid_utf8")
        elif status == 400:
            # FastAPI answers 400 for JSON it cannot parse (e.g. nesting too deep): malformed JSON.
            err = ApiError(422, "malformed JSON body", INVALID, code="invalid_json")
        else:
            err = ApiError(status, "request failed", INVALID if status < 500 else SERVER_ERROR, headers=headers)
        return await on_api_error(request, err)

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return ApiError(500, "internal server error", SERVER_ERROR).response()

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
