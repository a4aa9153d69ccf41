"""The page route without a browser: GET / renders, sends a strict CSP, carries the server's
limits as data-* attributes, has no inline script, and its static files are served.

    .venv/bin/pytest tests/test_page_route.py
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from app.routes.pages import router

STATIC_DIR = Path(__file__).resolve().parent.parent / "app" / "static"


class PageParser(HTMLParser):
    """Collects what a CSP cares about: scripts, event-handler and style attributes, URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_script: list[str] = []
        self.handlers: list[str] = []
        self.styles: list[str] = []
        self.urls: list[str] = []
        self.body: dict[str, str | None] = {}
        self.inputs: dict[str, dict[str, str | None]] = {}
        self.labels: set[str] = set()
        self.names: list[tuple[str, str]] = []  # (id or name, tag) of every element that has one
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.handlers += [k for k in a if k.startswith("on")]
        if "style" in a:
            self.styles.append(tag)
        self.urls += [v for k, v in a.items() if k in {"src", "href", "action"} and v]
        if tag == "script":
            self.scripts.append(a)
            self._in_script = True
        elif tag == "style":
            self.styles.append("<style>")
        elif tag == "body":
            self.body = a
        elif tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        self.names += [(str(name), tag) for name in {a.get("id"), a.get("name")} - {None}]
        if tag in {"input", "select", "textarea"} and a.get("id"):
            self.inputs[str(a["id"])] = a

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_script.append(data)


def make_app(**settings: object) -> FastAPI:
    """The page router and static mount as create_app wires them, with settings of our choosing."""
    app = FastAPI()
    values = {
        "max_chars": 5000,
        "max_prompt_chars": 10_000,
        "max_score_chars": 20_000,
        "default_model": None,
    }
    values.update(settings)
    app.state.settings = SimpleNamespace(**values)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def parse(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app())


def test_page_renders_with_strict_csp(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no CDN, no eval
    assert csp["style-src"] == ["'self'"]
    assert csp["connect-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert r.headers["x-content-type-options"] == "nosniff"


def test_no_inline_script_handlers_styles_or_remote_urls(client: TestClient) -> None:
    page = parse(client.get("/").text)
    assert page.scripts, "the page loads its module"
    assert all(s.get("src") for s in page.scripts)
    assert [s.get("type") for s in page.scripts] == ["module"]
    assert page.inline_script == []
    assert page.handlers == []  # onclick= etc. would be blocked by the CSP
    assert page.styles == []  # style attributes would be blocked too
    remote = [u for u in page.urls if re.match(r"^(https?:)?//", u)]
    assert remote == [], "no CDN: everything comes from this server"


def test_limits_reach_the_page_as_data_attributes() -> None:
    page = parse(
        TestClient(make_app(max_chars=300, max_prompt_chars=1234, default_model="bard"))
        .get("/")
        .text
    )
    assert page.body["data-max-chars"] == "300"
    assert page.body["data-max-prompt-chars"] == "1234"
    assert page.body["data-default-model"] == "bard"
    assert page.inputs["max_chars"]["max"] == "300"
    assert page.inputs["max_chars"]["value"] == "300"  # the API default (500) capped by the limit


def test_defaults_shown_in_the_form(client: TestClient) -> None:
    page = parse(client.get("/").text)
    assert page.body["data-default-model"] == ""
    temperature = page.inputs["temperature"]
    shown = tuple(temperature[k] for k in ("type", "min", "max", "value"))
    assert shown == ("range", "0", "2", "0.8")
    assert page.inputs["max_chars"]["value"] == "500"
    assert page.inputs["seed"].get("value") is None  # blank: a random seed


def test_every_control_has_a_label(client: TestClient) -> None:
    page = parse(client.get("/").text)
    controls = {
        "prompt",
        "model",
        "temperature",
        "top_k",
        "top_p",
        "seed",
        "max_chars",
        "stop-strings",
        "confidence",
    }
    assert controls <= set(page.inputs)
    # the checkbox sits inside its label
    unlabelled = set(page.inputs) - page.labels - {"confidence"}
    assert unlabelled == set()


def test_form_fields_are_reachable_by_name(client: TestClient) -> None:
    """`form.elements.stop` must be the stop-strings box: an element with the same id elsewhere
    would turn it into a list, and the page would silently send no stop strings."""
    page = parse(client.get("/").text)
    fields = ["prompt", "model", "temperature", "top_k", "top_p", "seed", "max_chars", "stop"]
    for field in fields:
        assert [tag for name, tag in page.names if name == field] in (
            ["textarea"],
            ["select"],
            ["input"],
        ), field


def test_settings_values_are_escaped() -> None:
    hostile = '"><script>alert(1)</script>'
    page = parse(TestClient(make_app(default_model=hostile)).get("/").text)
    assert page.body["data-default-model"] == hostile  # one attribute value, not markup
    assert len(page.scripts) == 1


def test_static_files_served_and_module_imports_resolve(client: TestClient) -> None:
    page = parse(client.get("/").text)
    srcs = [str(s["src"]) for s in page.scripts] + [u for u in page.urls if u.endswith(".css")]
    for src in srcs:
        r = client.get("/" + src)
        assert r.status_code == 200, src
    js = client.get("/static/app.js")
    assert "javascript" in js.headers["content-type"]
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    pending, seen = ["app.js"], set()
    while pending:  # follow the module graph: a missing import would break the page silently
        name = pending.pop()
        seen.add(name)
        r = client.get(f"/static/{name}")
        assert r.status_code == 200, name
        assert (
            "innerHTML" not in r.text
            and "insertAdjacentHTML" not in r.text
            and "eval(" not in r.text
        )
        for dep in re.findall(r'from "\./([\w-]+\.js)"', r.text):
            if dep not in seen:
                pending.append(dep)
    assert {"app.js", "sse.js", "confidence.js", "form.js"} <= seen
