"""One error envelope everywhere: `{"error": {"message", "type", "param", "code"}}` (OpenAI's
shape).

`ApiError` is raised by handlers (`unavailable()` is the one 503, `generation_failed()` the one 500
for a failure inside generation); `install_handlers` converts it, FastAPI's validation errors and
Starlette's 404/405 into the envelope.  Messages never echo raw input back, and say what to do in
the user's words; the field they are about is `param` (the page shows the message under it), so a
message does not repeat it.
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


REASONS = {
    400: "bad_encoding",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    422: "invalid",
    429: "overloaded",
    503: "unavailable",
}


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
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type,
            param,
            code,
        )
        self.headers = headers or {}
        self._reason: str | None = None

    @property
    def reason(self) -> str:
        """A label from a small fixed set, for the rejected-requests metric."""
        return self._reason or REASONS.get(self.status, str(self.status))

    def for_path(self, path: str) -> ApiError:
        """As answered on `path`: a validation error is 400 on /v1/* (what OpenAI and vLLM answer,
        the
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


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def unavailable(shutting_down: bool = False) -> ApiError:
    """The one 503: the models are not loaded yet, or the server is shutting down."""
    if shutting_down:
        return ApiError(503, "the server is shutting down", UNAVAILABLE, code="shutting_down")
    return ApiError(503, "models are not loaded yet", UNAVAILABLE, code="not_ready")


def generation_failed(error: BaseException) -> ApiError:
    """The error a client gets for a sequence that failed inside the engine (details only in the
    log)."""
    log.error("generation failed", exc_info=error)
    return ApiError(
        500, "generation failed inside the server", SERVER_ERROR, code="generation_failed"
    )


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


# What one and several items of a field are called, for messages about length ("at most 4 stop
# strings").
ITEMS = {
    "stop": ("stop string", "stop strings"),
    "prompt": ("prompt", "prompts"),
    "units": ("cell number", "cell numbers"),
    "logit_bias": ("char bias", "char biases"),
}
# What a type error asks for, in the words of someone writing JSON.
KINDS = {
    "int_type": "a whole number",
    "float_type": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
}
FIXED = {
    "model_attributes_type": "Send a JSON object as the body, with Content-Type: application/json.",
    "int_type": "Use a whole number, such as 10.",
    "finite_number": "Use a finite number (not NaN, Infinity or 1e999).",
    "extra_forbidden": (
        "Remove this field: the API has no field of that name (GET /docs lists them)."
    ),
    "missing": "Add this field: it is required.",
}
BOUNDS = {"ge": "of at least", "le": "of at most", "gt": "above", "lt": "below"}
BOUND_TYPES = {
    "greater_than_equal": "ge",
    "less_than_equal": "le",
    "greater_than": "gt",
    "less_than": "lt",
}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kind(kind: str, param: str | None) -> str:
    """What a type error asks for: "a list of stop strings" rather than "a list" where the field
    has item words."""
    return f"a list of {ITEMS[param][1]}" if kind == "list_type" and param in ITEMS else KINDS[kind]


def _length(kind: str, err: dict[str, Any], param: str | None) -> str:
    """`too_long` and friends: chars for a string, items for a list or object."""
    ctx, loc = err.get("ctx") or {}, tuple(err.get("loc", ()))
    most = kind.endswith("too_long")
    limit = int(ctx.get("max_length" if most else "min_length", 0))
    one, many = ITEMS.get(param or "", ("item", "items"))
    if "[key]" in loc:  # the one length rule on keys: /api's logit_bias is keyed by char
        return 'Use one char per key, such as "e" or "\\n".'
    if kind.startswith("string_") or ctx.get("field_type") in ("String", "Value"):
        per = f" per {one}" if param in ITEMS else ""
        return f"Use at {'most' if most else 'least'} {limit} char{'s' if limit != 1 else ''}{per}."
    return f"Send at {'most' if most else 'least'} {limit} {one if limit == 1 else many}."


def _validation_message(err: dict[str, Any], kinds: list[str] | None = None) -> str:
    """pydantic's error → what to do, in the user's words (the field is named by `param`, not here).

    `kinds`: the type errors of a field that takes several shapes (a string or a list of them)."""
    kind = str(err.get("type", ""))
    param = _param_of(tuple(err.get("loc", ())))
    ctx = err.get("ctx") or {}
    if kind == "json_invalid":
        detail = ctx.get("error", "")
        return (
            f"The body is not valid JSON ({detail})." if detail else "The body is not valid JSON."
        )
    if kind == "missing" and param is None:
        kind = "model_attributes_type"  # no body at all
    if kinds and len(kinds) > 1:
        return "Use " + " or ".join(_kind(k, param) for k in kinds) + "."
    if kind in BOUND_TYPES:
        bound = BOUND_TYPES[kind]
        what = "a whole number" if isinstance(ctx.get(bound), int) else "a number"
        return f"Use {what} {BOUNDS[bound]} {_number(ctx.get(bound))}."
    if kind.endswith(("too_long", "too_short")):
        return _length(kind, err, param)
    if kind in FIXED:
        return FIXED[kind]
    if kind == "literal_error":
        return f"Use {ctx.get('expected', 'one of the listed values')}."
    if kind == "string_pattern_mismatch" and "[key]" in tuple(err.get("loc", ())):
        return "Use char ids as keys: a char's index in GET /api/models' chars, such as \"0\"."
    if kind in KINDS:
        return f"Use {_kind(kind, param)}."
    msg = str(err.get("msg", "Invalid value")).removeprefix("Value error, ")
    return msg if msg.endswith(".") else f"{msg}."


def _pick(errors: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The error to report: the first field's.  A field that takes several shapes gets an error per
    shape; report the one about the shape the input has (too many stop strings, not "use a
    string"), or, when the input has none of them, every shape it could take."""
    first = errors[0]
    param = _param_of(tuple(first.get("loc", ())))
    same = [e for e in errors if _param_of(tuple(e.get("loc", ()))) == param]
    fits = [e for e in same if e.get("type") not in KINDS]
    if param is None or len(same) < 2:
        return first, []
    if fits:
        return fits[0], []
    return first, list(dict.fromkeys(str(e["type"]) for e in same))


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    if not errors:
        return ApiError(422, "Invalid request.", INVALID)
    err, kinds = _pick(errors)
    # pydantic's error type, e.g. "int_type"
    code = str(err.get("type")) if err.get("type") else None
    return ApiError(
        422, _validation_message(err, kinds), INVALID, _param_of(tuple(err.get("loc", ()))), code
    )


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
            err = ApiError(
                405,
                "method not allowed on this route",
                INVALID,
                code="method_not_allowed",
                headers=headers,
            )
        elif status == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
            err = ApiError(400, "the body is not valid UTF-8", INVALID, code="invalid_utf8")
        elif status == 400:
            # FastAPI answers 400 for JSON it cannot parse (e.g. nesting too deep): malformed JSON.
            err = ApiError(422, "The body is not valid JSON.", INVALID, code="invalid_json")
        else:
            err = ApiError(
                status, "request failed", INVALID if status < 500 else SERVER_ERROR, headers=headers
            )
        return await on_api_error(request, err)

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return ApiError(500, "internal server error", SERVER_ERROR).response()

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
