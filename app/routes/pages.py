"""The browser page: `GET /` renders templates/index.html (markup only; behaviour is in app/static/).

The server's limits and defaults reach the page as `data-*` attributes on <body>, never as an
inline script, so the Content-Security-Policy sent here can forbid inline script outright and
allow nothing from other origins.  create_app (app/main.py) includes `router` and mounts
app/static at /static.

    uvicorn app.main:app   # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from model.limits import DEFAULT_MAX_CHARS

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

# Everything from this origin only; no inline script or style, no plugins, no framing, no <base>.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter()
templates = Jinja2Templates(directory=TEMPLATES_DIR)


def page_context(settings: Any) -> dict[str, Any]:
    """The limits and defaults the page needs, read from the server's settings."""
    max_chars = int(settings.max_chars)
    return {
        "max_chars": max_chars,
        "max_prompt_chars": int(settings.max_prompt_chars),
        "default_max_chars": min(DEFAULT_MAX_CHARS, max_chars),
        "default_model": settings.default_model or "",
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    context = page_context(request.app.state.settings)
    return templates.TemplateResponse(request, "index.html", context, headers=PAGE_HEADERS)
