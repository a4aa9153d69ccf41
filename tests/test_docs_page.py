"""`/docs` in a real browser with no network but the server: Swagger UI comes from the server
itself (the fastapi-offline package's build), under the page's strict CSP, and lists the API.

    .venv/bin/pytest -m browser tests/test_docs_page.py
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer

pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]


def test_docs_page_headers_and_assets_are_local(live_server: LiveServer) -> None:
    r = httpx.get(live_server.url + "/docs", timeout=60)
    csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
    assert csp["default-src"] == csp["script-src"] == csp["style-src"] == ["'self'"]
    assert "http" not in r.text.replace(live_server.url, "")  # no asset from another origin
    for asset in (
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/static/docs.js",
    ):
        assert httpx.get(live_server.url + asset, timeout=60).status_code == 200, asset
    assert httpx.get(live_server.url + "/redoc", timeout=60).status_code == 404


def test_docs_lists_the_operations_offline(live_server: LiveServer, browser: Any) -> None:
    blocked: list[str] = []
    problems: list[str] = []

    def only_the_server(route: Any) -> None:
        if route.request.url.startswith(live_server.url + "/"):
            route.continue_()
        else:  # a CDN, fonts, anything: the machine is offline
            blocked.append(route.request.url)
            route.abort()

    page = browser.new_page()
    try:
        page.route("**/*", only_the_server)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on(
            "console", lambda m: problems.append(m.text) if "Content Security" in m.text else None
        )
        page.goto(live_server.url + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=60_000)
        paths = page.locator(".opblock-summary-path").all_text_contents()
    finally:
        page.close()
    listed = {
        path.replace("\u200b", "") for path in paths
    }  # Swagger UI puts break opportunities in paths
    assert {"/api/generate", "/api/generate/stream", "/v1/completions", "/healthz"} <= listed, (
        listed
    )
    assert blocked == [] and problems == []
