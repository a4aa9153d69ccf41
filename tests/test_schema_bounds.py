"""Every request schema, fed extreme values: always a 4xx or a 200, never a 5xx.

Each field of each POST body the server publishes in /openapi.json (so a new field or route is
covered without editing this file) gets, on top of a valid body, extreme integers (±2^63, 10^400),
non-finite and subnormal floats, huge and empty strings, lists and objects, null and booleans;
a hypothesis test then mixes several at once.  The stream routes must also not end in
`event: error` (their 500).  The OpenAPI document must give every number both bounds, and an
integer field takes a whole float such as 1e3 only where a float is exact.

In-process (TestClient) on the tiny model.  Run: .venv/bin/pytest tests/test_schema_bounds.py
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from app.settings import Settings
from model.limits import MAX_TOP_K
from model.sampling import SamplingParams

JSON = {"content-type": "application/json"}
# A valid body per POST route; the sweep changes one field at a time on top of it.
BASE: dict[str, dict[str, Any]] = {
    "/api/generate": {"prompt": "A", "max_chars": 3},
    "/api/generate/stream": {"prompt": "A", "max_chars": 3},
    "/v1/completions": {"prompt": "A", "max_tokens": 3},
    "/api/score": {"text": "ROMEO"},
    "/api/inspect": {"text": "AB", "layer": 0, "units": [0]},
    "/api/copied": {"text": "ROMEO and JULIET"},
    "/api/gates": {"text": "AB", "layer": 0, "units": [0]},
    "/api/influence": {"text": "ROMEO", "position": 2},
}
# Fields the schemas do not list that a route still reads (/v1's unsupported OpenAI parameters).
EXTRA_FIELDS = {
    "/v1/completions": ["best_of", "suffix", "min_tokens", "use_beam_search", "length_penalty"]
}


def raw(token: str) -> str:
    """A JSON number written as is (json.dumps cannot write 1e999, an overflow, or 3.0 for an int
    field)."""
    return f"@@{token}@@"


RAW = [raw("1e999"), raw("-1e999"), raw("1e3")]

INTS = [0, -1, 17, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**400]
FLOATS = [-0.0, 0.5, 5e-324, 1e308, -1e308, float("nan"), float("inf")]
STRINGS = ["", "ж", "\ud800", "A" * 3000]
COLLECTIONS: list[Any] = [
    [],
    [2**63],
    [""],
    ["A"] * 17,
    ["A"] * 2000,
    {},
    {"A": 1e308},
    {"0": 2**63},
    {"AB": 1},
    {str(i): 1 for i in range(400)},
    {"A": {"B": 1}},
]
EXTREMES: list[Any] = [None, True, False, *INTS, *FLOATS, *STRINGS, *RAW, *COLLECTIONS]


def dumps(body: dict[str, Any]) -> str:
    # NaN and Infinity as json.dumps writes them: the server must refuse them.
    return re.sub(r'"@@([-+.0-9eE]+)@@"', r"\1", json.dumps(body))


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    config = Settings(
        models_dir=models_dir, max_chars=40, max_prompt_chars=2000, max_active=256, coalesce_ms=0
    )
    with TestClient(create_app(config), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return dict(client.get("/openapi.json").json())


def request_schemas(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each POST route's JSON body schema, as /openapi.json publishes it."""
    found = {}
    for path, operations in openapi["paths"].items():
        body = (
            operations.get("post", {})
            .get("requestBody", {})
            .get("content", {})
            .get("application/json")
        )
        if body:
            name = body["schema"]["$ref"].rsplit("/", 1)[-1]
            found[path] = openapi["components"]["schemas"][name]
    return found


def fields(openapi: dict[str, Any], path: str) -> list[str]:
    return [*request_schemas(openapi)[path]["properties"], *EXTRA_FIELDS.get(path, [])]


def post(client: TestClient, path: str, body: dict[str, Any]) -> tuple[int, str]:
    response = client.post(path, content=dumps(body), headers=JSON)
    return response.status_code, response.text


def failure(path: str, body: dict[str, Any], status: int, text: str) -> str | None:
    """What went wrong, or None: a 5xx, or a 200 stream that ended in `event: error`."""
    if status >= 500 or (status == 200 and ("event: error" in text or 'data: {"error"' in text)):
        return f"{path} {dumps(body)[:200]} → {status} {text[-300:]}"
    return None


@pytest.mark.slow  # about 3000 requests: 9 s on an idle core
def test_every_field_with_an_extreme_value_is_4xx_or_200(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    assert set(request_schemas(openapi)) == set(BASE), "a new POST route needs a valid body in BASE"
    failures = []
    for path, base in BASE.items():
        status, text = post(client, path, base)
        # else every variation below would be a 4xx for that reason
        assert status == 200, (
            path,
            text,
        )
        for name in fields(openapi, path):
            for value in EXTREMES:
                body = {**base, name: value}
                status, text = post(client, path, body)
                if problem := failure(path, body, status, text):
                    failures.append(problem)
    assert not failures, "\n".join(failures[:20])


def edges(schema: dict[str, Any], components: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values `schema` allows, drawn at its edges: its bounds (or huge ints where it has none),
    subnormal floats, empty and full lists, optional fields left out or set."""
    if "$ref" in schema:
        return edges(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    if "anyOf" in schema:
        return st.one_of([edges(branch, components) for branch in schema["anyOf"]])
    if "const" in schema or "enum" in schema:
        return st.sampled_from([schema["const"]] if "const" in schema else schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(2**80) - 1) + 1)
        high = schema.get("maximum", schema.get("exclusiveMaximum", 2**80 + 1) - 1)
        return st.sampled_from([low, high]) | st.integers(low, high)
    if kind == "number":
        low, high = (
            schema.get("minimum", schema.get("exclusiveMinimum", -1e308)),
            schema.get("maximum", 1e308),
        )
        near = [
            v for v in (low, high, 0.0, 5e-324, 1e-300, 1.0) if v is not None and low <= v <= high
        ]
        near = [v for v in near if v != schema.get("exclusiveMinimum")]
        floats = st.floats(low, high, exclude_min="exclusiveMinimum" in schema, allow_nan=False)
        return st.sampled_from(near) | floats
    if kind == "string":
        low, high = schema.get("minLength", 0), min(schema.get("maxLength", 200), 200)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: low <= len(s) <= high
            )
        return st.text(min_size=low, max_size=high)
    if kind == "array":
        high = min(schema.get("maxItems", 16), 16)
        return st.lists(
            edges(schema["items"], components), min_size=schema.get("minItems", 0), max_size=high
        )
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        keys = edges({"type": "string", **schema.get("propertyNames", {})}, components)
        values = edges(schema["additionalProperties"], components)
        return st.dictionaries(keys, values, max_size=min(schema.get("maxProperties", 8), 8))
    if kind == "object":
        properties = {**schema["properties"], **schema.get("else", {}).get("properties", {})}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: edges(v, components) for k, v in properties.items() if k in required},
            optional={k: edges(v, components) for k, v in properties.items() if k not in required},
        )
    return st.booleans() if kind == "boolean" else st.none()


def check_edges(client: TestClient, path: str, bodies: st.SearchStrategy[Any]) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(bodies)
    def check(body: dict[str, Any]) -> None:
        status, text = post(client, path, body)
        assert failure(path, body, status, text) is None

    check()


def test_bodies_the_schema_allows_at_its_edges_are_200_or_4xx(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    # What the schema publishes is what the server takes: a body within every bound (top_k at
    # 2^80 where the schema set none, max_tokens at MAX_CHARS, 16 prompts × n = 16) never fails
    # inside the server.  A 4xx is still allowed: /v1's echo wants max_tokens 0, /api/inspect's
    # bounds are the default model's.
    for path, schema in request_schemas(openapi).items():
        check_edges(client, path, edges(schema, openapi["components"]["schemas"]))


def numbers(schema: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every integer or number schema inside `schema`, with where it is."""
    if isinstance(schema, dict):
        if schema.get("type") in ("integer", "number"):
            yield where, schema
        for key, sub in schema.items():
            yield from numbers(sub, f"{where}.{key}")
    elif isinstance(schema, list):
        for i, sub in enumerate(schema):
            yield from numbers(sub, f"{where}[{i}]")


def test_openapi_bounds_every_number_in_every_request(openapi: dict[str, Any]) -> None:
    unbounded = []
    for path, schema in request_schemas(openapi).items():
        for where, number in numbers(schema, path):
            low = "minimum" in number or "exclusiveMinimum" in number
            high = "maximum" in number or "exclusiveMaximum" in number
            if not (low and high):
                unbounded.append(where)
    assert not unbounded, unbounded


def test_whole_floats_are_ints_only_where_exact(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    # docs/API.md: 1e3 is the int 1000, as JSON Schema reads it; past 2^53 a float may not be the
    # number written (2^54 + 1 reads as 2^54), so it is refused rather than served as another.
    status, text = post(
        client, "/api/generate", {"prompt": "A", "max_chars": raw("2e1"), "seed": raw("7.0")}
    )
    assert status == 200 and len(json.loads(text)["text"]) == 20 and json.loads(text)["seed"] == 7
    served = []
    for path, schema in request_schemas(openapi).items():
        for name, field in schema["properties"].items():
            kinds = [
                (b.get("type"), b.get("items", {}).get("type")) for b in field.get("anyOf", [field])
            ]
            value: Any = raw(f"{2**54 + 1}.0")
            if ("array", "integer") in kinds:
                value = [value]
            elif ("integer", None) not in kinds:
                continue
            response = client.post(path, content=dumps({**BASE[path], name: value}), headers=JSON)
            if response.status_code < 400 or response.json()["error"]["param"] != name:
                served.append(f"{path} {name} → {response.status_code}")
    assert not served, served


def test_the_sampler_refuses_what_the_schema_refuses() -> None:
    # The sampler's own check (model/sampling/params.py, for the CLI and the engine) has the same
    # bound: a top_k past it would overflow the int64 array the draw reads.
    assert SamplingParams(top_k=MAX_TOP_K).top_k == MAX_TOP_K
    for k in (MAX_TOP_K + 1, 2**63, 10**400):
        with pytest.raises(ValueError, match="top_k"):
            SamplingParams(top_k=k)
