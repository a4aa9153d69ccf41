"""The browser page: `GET /` renders templates/index.html (markup only; behaviour: app/static/).

Every range and default the page shows comes from here, never typed in the HTML or the scripts:
model/limits.py's constants and the server's settings become the controls' min/max/value
attributes (rendered by Jinja) and `data-*` attributes on <body> (read by app/static/limits.js).
No inline script, so the Content-Security-Policy sent here can forbid it outright and allow
nothing from other origins.  create_app (app/main.py) includes `router` and mounts app/static at
/static.

    uvicorn app.main:app   # then open http://127.0.0.1:8000/
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from model.limits import (
    DEFAULT_MAX_CHARS,
    DEFAULT_REPETITION_WINDOW,
    DEFAULT_TEMPERATURE,
    MAX_LOGIT_BIAS,
    MAX_LOGPROBS,
    MAX_PENALTY,
    MAX_REPETITION_PENALTY,
    MAX_REPETITION_WINDOW,
    MAX_SEED,
    MAX_STOPS,
    MAX_TEMPERATURE,
    MIN_REPETITION_PENALTY,
)
from model.reading import MAX_CONTEXT, MAX_UNITS

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

# The page's own choices, not limits of the API (which takes what model/limits.py allows):
TEMPERATURE_SLIDER_MAX = 2.0  # past 2 a char model's text is noise; Side by side goes further
SMALLEST_TOP_P = 0.01  # the API takes any top_p > 0; the box steps in hundredths
SMALLEST_REPETITION_PENALTY = MIN_REPETITION_PENALTY  # below 1 favours repeats
COMPARE_COLUMNS = (2, 4)  # Side by side: two to compare, no more than four fit the width

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


def number(x: float) -> str:
    """A number as an HTML attribute writes it: 2.0 → "2", 0.8 → "0.8", 10000 → "10000"."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def control(**attrs: float | str) -> dict[str, str]:
    """One form control's min / max / value / placeholder attributes, as text."""
    return {k: v if isinstance(v, str) else number(v) for k, v in attrs.items()}


def controls(max_chars: int) -> dict[str, dict[str, str]]:
    """The attributes of each number and range control, by the control's id."""
    penalty = control(min=-MAX_PENALTY, max=MAX_PENALTY, placeholder=0)  # 0: off
    return {
        "temperature": control(min=0, max=TEMPERATURE_SLIDER_MAX, value=DEFAULT_TEMPERATURE),
        "top_k": control(min=1),
        "top_p": control(min=SMALLEST_TOP_P, max=1),
        "min_p": control(min=0, max=1),
        "repetition_penalty": control(
            min=SMALLEST_REPETITION_PENALTY, max=MAX_REPETITION_PENALTY, placeholder="1 (off)"
        ),
        "repetition_window": control(
            min=1, max=MAX_REPETITION_WINDOW, placeholder=DEFAULT_REPETITION_WINDOW
        ),
        "presence_penalty": penalty,
        "frequency_penalty": penalty,
        "max_chars": control(min=1, max=max_chars, value=min(DEFAULT_MAX_CHARS, max_chars)),
    }


def page_context(settings: Any) -> dict[str, Any]:
    """The limits and defaults the page needs, from model/limits.py and the server's settings."""
    max_chars = int(settings.max_chars)
    shown = controls(max_chars)
    slider = shown["temperature"]
    middle = number((float(slider["min"]) + float(slider["max"])) / 2)
    return {
        "max_chars": max_chars,
        "max_prompt_chars": int(settings.max_prompt_chars),
        "max_score_chars": int(settings.max_score_chars),  # Read the model's text box
        "default_max_chars": shown["max_chars"]["value"],
        "default_model": settings.default_model or "",
        "controls": shown,
        "temperature_shown": f"{DEFAULT_TEMPERATURE:.2f}",
        "temperature_scale": [slider["min"], middle, slider["max"]],
        "max_temperature": number(MAX_TEMPERATURE),
        "max_logit_bias": number(MAX_LOGIT_BIAS),
        "max_stops": MAX_STOPS,
        "alternatives": MAX_LOGPROBS,
        "max_seed": str(MAX_SEED),
        "columns": dict(zip(("min", "max"), COMPARE_COLUMNS, strict=True)),
        "max_gate_units": MAX_UNITS,  # the Gates view: cells per request
        "max_influence_context": MAX_CONTEXT,  # chars before a position that influence reaches
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    context = page_context(request.app.state.settings)
    return templates.TemplateResponse(request, "index.html", context, headers=PAGE_HEADERS)
