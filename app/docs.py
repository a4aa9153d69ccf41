"""The OpenAPI document (`/openapi.json`), made to describe the real server, and `/docs`.

`/docs` is Swagger UI served by this server (it works offline): the bundle and CSS come from the
fastapi-offline package (current Swagger UI 5 builds), at /docs/assets; the page starts it from
app/static/docs.js, so the page's Content-Security-Policy is the browser page's, as strict
(everything from this origin, no inline script or style).  ReDoc is not served.

FastAPI's generated schema is patched twice: limits that are settings (MAX_CHARS,
MAX_PROMPT_CHARS) and the default model's vocabulary (a `pattern` on prompts, except /v1's
with `echo`, and on logit_bias keys), layers and units (/api/inspect) become schema keywords,
so a schema-valid request is one the server accepts; and each
`text/event-stream` response gets the schema of its events (`event` + JSON `data`), as
Open API 3.1 tools such as schemathesis read them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.deps import ServerState
from app.openai_schemas import Completion
from app.registry import LoadedModel
from app.routes.pages import PAGE_HEADERS
from app.schemas import MAX_SEED, ErrorResponse, StreamChunk, StreamDone, StreamStart

REF = "#/components/schemas/{model}"
# swagger-ui-bundle.js, swagger-ui.css
DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API</title>
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
<link rel="icon" href="{root}/docs/assets/favicon.png">
</head>
<body data-openapi="{root}/openapi.json">
<div id="swagger-ui"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/static/docs.js"></script>
</body>
</html>
"""


def vocab_pattern(chars: tuple[str, ...], repeat: str = "*") -> str:
    """A regex matching strings of these chars only (\\uXXXX escapes read the same in ECMA,
    Python, Rust)."""
    parts = [f"\\u{ord(ch):04x}" if ord(ch) < 0x10000 else ch for ch in chars]
    return "^[" + "".join(parts) + "]" + repeat + "$"


def id_pattern(size: int) -> str:
    """A regex matching the decimal char ids 0 … size-1 (leading zeros allowed, as the server
    reads them)."""
    return "^0*(" + "|".join(str(i) for i in range(size - 1, -1, -1)) + ")$"


def json_data(ref: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": ref}


def event(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"const": name}, "data": data},
    }


def ref(model: type) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def add_components(schema: dict[str, Any], *models: type) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        generated = model.model_json_schema(  # type: ignore[attr-defined]
            ref_template=REF, mode="serialization"
        )
        for name, sub in generated.pop("$defs", {}).items():
            components.setdefault(name, sub)
        components.setdefault(model.__name__, generated)


def patch_limits(schema: dict[str, Any], state: ServerState) -> None:
    settings, components = state.settings, schema["components"]["schemas"]
    pattern = None
    if state.registry is not None:
        patch_model_limits(components, state.registry.get(None))
        pattern = vocab_pattern(state.registry.get(None).vocab.chars)

    for params in ("GenerateParams", "CompletionParams"):
        # Exact, as an int: FastAPI writes bounds as floats, and 2^63 - 1 is not a float.
        for branch in components[params]["properties"]["seed"]["anyOf"]:
            if branch["type"] == "integer":
                branch.pop("exclusiveMaximum", None)
                branch["maximum"] = MAX_SEED - 1
    api = components["GenerateParams"]["properties"]
    api["prompt"]["maxLength"] = settings.max_prompt_chars
    if pattern:
        api["prompt"]["pattern"] = pattern
    api["max_chars"].update(maximum=settings.max_chars, default=min(500, settings.max_chars))
    v1 = components["CompletionParams"]["properties"]
    for branch in v1["prompt"]["anyOf"]:
        (branch if branch["type"] == "string" else branch["items"])["maxLength"] = (
            settings.max_prompt_chars
        )
    # `echo: true` scores the prompt: only with max_tokens 0, and it reads chars outside the vocab
    # (their logprob is null, app/echo.py), so the vocab pattern holds only without echo.
    components["CompletionParams"]["if"] = {
        "properties": {"echo": {"const": True}},
        "required": ["echo"],
    }
    components["CompletionParams"]["then"] = {
        "properties": {"max_tokens": {"const": 0}},
        "required": ["max_tokens"],
    }
    if pattern:
        only_vocab = {"type": "string", "pattern": pattern}
        components["CompletionParams"]["else"] = {
            "properties": {
                "prompt": {"anyOf": [only_vocab, {"type": "array", "items": only_vocab}]}
            }
        }
    for branch in v1["max_tokens"]["anyOf"]:
        if branch["type"] == "integer":
            branch["maximum"] = settings.max_chars


def patch_model_limits(components: dict[str, Any], model: LoadedModel) -> None:
    """The default model's vocabulary (logit_bias keys), layers and units (/api/inspect) as
    schema keywords."""
    chars = model.vocab.chars
    api_bias = components["GenerateParams"]["properties"]["logit_bias"]["anyOf"][0]
    api_bias["propertyNames"]["pattern"] = vocab_pattern(chars, repeat="")
    v1_bias = components["CompletionParams"]["properties"]["logit_bias"]["anyOf"][0]
    value = next(iter(v1_bias.pop("patternProperties").values()))
    v1_bias.update(
        additionalProperties=value,
        propertyNames={"minLength": 1, "maxLength": 6, "pattern": id_pattern(len(chars))},
    )
    stack = getattr(model.engine, "stack", None)
    if stack is not None and "InspectParams" in components:
        inspect = components["InspectParams"]["properties"]
        inspect["layer"]["maximum"] = stack.num_layers - 1
        inspect["units"]["items"]["maximum"] = stack.units - 1
    if stack is not None and "GatesParams" in components:
        gates = components["GatesParams"]["properties"]
        gates["layer"]["maximum"] = stack.num_layers - 1
        gates["units"]["items"]["maximum"] = stack.units - 1


def add_stream_schemas(schema: dict[str, Any]) -> None:
    add_components(schema, StreamStart, StreamChunk, StreamDone, ErrorResponse, Completion)
    api_events = {
        "oneOf": [
            event("start", json_data(ref(StreamStart))),
            event("message", json_data(ref(StreamChunk))),
            event("done", json_data(ref(StreamDone))),
            event("error", json_data(ref(ErrorResponse))),
        ]
    }
    v1_data = {
        "anyOf": [
            {"type": "string", "const": "[DONE]"},
            json_data({"anyOf": [ref(Completion), ref(ErrorResponse)]}),
        ]
    }
    v1_events = event("message", v1_data)
    for path, events in (("/api/generate/stream", api_events), ("/v1/completions", v1_events)):
        content = schema["paths"][path]["post"]["responses"]["200"]["content"]
        content["text/event-stream"] = {"schema": events}


def add_bearer_auth(schema: dict[str, Any]) -> None:
    """CHARLSTM_API_KEY is set: /api/* and /v1/* want a Bearer token (Swagger UI's Authorize
    button)."""
    schema["components"].setdefault("securitySchemes", {})["apiKey"] = {
        "type": "http",
        "scheme": "bearer",
    }
    for path, operations in schema["paths"].items():
        if path.startswith(("/api/", "/v1/")):
            for operation in operations.values():
                operation["security"] = [{"apiKey": []}]
                operation.setdefault("responses", {})["401"] = {
                    "description": "No or wrong API key",
                    "content": {"application/json": {"schema": ref(ErrorResponse)}},
                }


def install_openapi(app: FastAPI, state: ServerState) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        patch_limits(schema, state)
        add_stream_schemas(schema)
        if state.settings.api_key is not None:
            add_bearer_auth(schema)
        if state.registry is not None:  # complete only once the models are loaded
            app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_docs(app: FastAPI) -> None:
    """`/docs` (create the app with docs_url=None and redoc_url=None) and its assets."""
    app.mount("/docs/assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = html.escape(str(request.scope.get("root_path", "")), quote=True)
        page = DOCS_PAGE.format(title=html.escape(app.title), root=root)
        return HTMLResponse(page, headers=PAGE_HEADERS)
