"""The page's ranges and defaults come from model/limits.py, each defined once: GET / (no browser)
renders every control's min/max/default from the constants, <body> carries the rest to the
scripts, and no limit's number is typed in templates/index.html or app/static/*.js.

    .venv/bin/pytest tests/test_page_limits.py
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.routes import pages
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
)
from tests.test_page_route import PageParser, make_app, parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "index.html"
SCRIPTS = sorted((ROOT / "app" / "static").glob("*.js"))


def render(**settings: object) -> tuple[str, PageParser]:
    html = TestClient(make_app(**settings)).get("/").text
    return html, parse(html)


def text_of(html: str, element_id: str) -> str:
    """The text of the element with this id, each tag a space, whitespace collapsed."""
    match = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1\s*>', html, re.S)
    assert match, element_id
    return " ".join(unescape(re.sub(r"<[^>]*>", " ", match.group(2))).split())


def number(attrs: dict[str, str | None], key: str) -> float:
    value = attrs.get(key)
    assert value is not None, key
    return float(value)


def test_sampling_controls_carry_the_limits() -> None:
    _, page = render()
    c = page.inputs
    assert number(c["temperature"], "value") == DEFAULT_TEMPERATURE
    assert number(c["temperature"], "min") == 0
    assert 0 < number(c["temperature"], "max") <= MAX_TEMPERATURE  # the slider; the API goes on
    assert number(c["repetition_penalty"], "max") == MAX_REPETITION_PENALTY
    assert 0 < number(c["repetition_penalty"], "min") <= 1
    assert number(c["repetition_window"], "max") == MAX_REPETITION_WINDOW
    assert number(c["repetition_window"], "placeholder") == DEFAULT_REPETITION_WINDOW
    for name in ("presence_penalty", "frequency_penalty"):
        assert (number(c[name], "min"), number(c[name], "max")) == (-MAX_PENALTY, MAX_PENALTY)
    assert 0 < number(c["top_p"], "min") < number(c["top_p"], "max") == 1
    assert (number(c["min_p"], "min"), number(c["min_p"], "max")) == (0, 1)
    assert number(c["top_k"], "min") == 1


def test_length_controls_follow_the_settings() -> None:
    for max_chars in (300, 5000, 1_000_000):
        html, page = render(max_chars=max_chars)
        shown = page.inputs["max_chars"]
        assert (number(shown, "min"), number(shown, "max")) == (1, max_chars)
        assert number(shown, "value") == min(DEFAULT_MAX_CHARS, max_chars)
        assert text_of(html, "max_chars-hint") == f"1 to {max_chars:,}."


def test_hints_and_body_carry_the_rest() -> None:
    html, page = render()
    bias = f"{MAX_LOGIT_BIAS:g}"
    assert f"−{bias} to {bias};" in text_of(html, "logit_bias-hint")
    assert text_of(html, "stop-hint").startswith(f"Up to {MAX_STOPS}, one per line")
    low, high = pages.COMPARE_COLUMNS
    assert text_of(html, "compare-hint").startswith(f"{low} to {high} values")
    slider = page.inputs["temperature"]
    scale = text_of(html, "temperature-scale")
    assert scale == f"{slider['min']} greedy 1 {slider['max']} wild"
    assert text_of(html, "temperature-value") == f"{DEFAULT_TEMPERATURE:.2f}"
    body = page.body
    assert float(str(body["data-max-temperature"])) == MAX_TEMPERATURE  # Side by side's range
    assert body["data-alternatives"] == str(MAX_LOGPROBS)  # the confidence view's top chars
    assert body["data-max-seed"] == str(MAX_SEED)
    assert (body["data-min-columns"], body["data-max-columns"]) == (str(low), str(high))


def test_changing_a_constant_changes_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each number on the page follows its one definition: change it there and the page follows."""
    odd = {
        "DEFAULT_TEMPERATURE": 0.65,
        "TEMPERATURE_SLIDER_MAX": 3.0,
        "MAX_TEMPERATURE": 4.5,
        "MAX_REPETITION_PENALTY": 7.5,
        "MAX_REPETITION_WINDOW": 4321,
        "DEFAULT_REPETITION_WINDOW": 77,
        "MAX_PENALTY": 1.5,
        "MAX_LOGIT_BIAS": 42.0,
        "MAX_LOGPROBS": 3,
        "MAX_STOPS": 6,
        "DEFAULT_MAX_CHARS": 321,
        "SMALLEST_TOP_P": 0.02,
        "SMALLEST_REPETITION_PENALTY": 0.2,
        "COMPARE_COLUMNS": (3, 5),
    }
    for name, value in odd.items():
        monkeypatch.setattr(pages, name, value)
    html, page = render()
    c = page.inputs
    assert (c["temperature"]["value"], c["temperature"]["max"]) == ("0.65", "3")
    assert text_of(html, "temperature-value") == "0.65"
    assert text_of(html, "temperature-scale") == "0 greedy 1.5 3 wild"
    assert (c["repetition_penalty"]["min"], c["repetition_penalty"]["max"]) == ("0.2", "7.5")
    assert (c["repetition_window"]["max"], c["repetition_window"]["placeholder"]) == ("4321", "77")
    assert (c["presence_penalty"]["min"], c["frequency_penalty"]["max"]) == ("-1.5", "1.5")
    assert c["top_p"]["min"] == "0.02" and c["max_chars"]["value"] == "321"
    assert "−42 to 42;" in text_of(html, "logit_bias-hint")
    assert text_of(html, "stop-hint").startswith("Up to 6,")
    assert text_of(html, "compare-hint").startswith("3 to 5 values")
    assert page.body["data-max-temperature"] == "4.5" and page.body["data-alternatives"] == "3"


def spellings(value: float) -> list[str]:
    """How a number could be typed: 10000 → 10000, 10_000, 10,000, 10000.0; 5.0 → 5.0, 5.00."""
    if float(value).is_integer():
        n = int(value)
        return [str(n), f"{n:_}", f"{n:,}", f"{n}.0"]
    return [repr(float(value)), f"{value:.2f}"]


# The limits whose numbers are distinctive enough to grep for.  Small ones (2, 4, 5) are all over
# code, and 0.8 sits in Side by side's example "0.5, 0.8, 1.2": the tests above show that those
# reach the page from their constants.
GREPPED = {
    "MAX_TEMPERATURE": f"{MAX_TEMPERATURE:.1f}",
    "MAX_REPETITION_PENALTY": MAX_REPETITION_PENALTY,
    "MAX_REPETITION_WINDOW": MAX_REPETITION_WINDOW,
    "DEFAULT_REPETITION_WINDOW": DEFAULT_REPETITION_WINDOW,
    "MAX_LOGIT_BIAS": MAX_LOGIT_BIAS,
    "DEFAULT_MAX_CHARS": DEFAULT_MAX_CHARS,
    "MAX_SEED": MAX_SEED,
}
# Numbers that are not limits though they look like one: a percentage's 100.
NOT_LIMITS = [r"\*\s*100\b", r"\b100%"]


def typed_limits(source: str) -> list[str]:
    """The grepped limits typed in `source`, as "NAME: spelling"."""
    for pattern in NOT_LIMITS:
        source = re.sub(pattern, "", source)
    hits = []
    for name, value in GREPPED.items():
        forms = [value] if isinstance(value, str) else spellings(value)
        if name == "MAX_SEED":
            forms += ["2 ** 63", "2**63", "0x7fffffff"]  # written as a power, or as its mask
        for form in dict.fromkeys(forms):  # once each: 10 is "10" in three of its spellings
            if re.search(rf"(?<![\w.]){re.escape(form)}(?![\w]|\.\d)", source):
                hits.append(f"{name}: {form}")
    return hits


def test_no_limit_number_is_typed_in_the_template_or_scripts() -> None:
    # Outside {{ … }} and comments: only what Jinja fills in may carry a limit.
    template = re.sub(r"\{\{.*?\}\}|\{#.*?#\}", "", TEMPLATE.read_text("utf-8"), flags=re.S)
    found = {"templates/index.html": typed_limits(template)}
    for script in SCRIPTS:
        found[f"app/static/{script.name}"] = typed_limits(script.read_text("utf-8"))
    assert {path: hits for path, hits in found.items() if hits} == {}


def test_each_control_takes_its_range_from_the_context() -> None:
    """In the template source, every min/max/value/placeholder of a control that page_context
    describes is a Jinja expression, never a number."""
    source = TEMPLATE.read_text("utf-8")
    for control, attrs in pages.controls(max_chars=5000).items():
        tag = re.search(rf'<input[^>]*\bid="{control}"[^>]*>', source, re.S)
        assert tag, control
        for attr in attrs:
            written = re.search(rf'\b{attr}="([^"]*)"', tag.group(0))
            assert written and re.fullmatch(r"\{\{[^}]*\}\}", written.group(1)), (control, attr)


def test_the_grep_finds_a_typed_limit() -> None:
    """The grep above is not blind: the old page's typed numbers are found."""
    old = '<input id="repetition_window" max="10000"> −100 to 100; [0, 5.0] || 10000; 0x7fffffff'
    found = typed_limits(old)
    assert {"MAX_REPETITION_WINDOW: 10000", "MAX_LOGIT_BIAS: 100", "MAX_SEED: 0x7fffffff"} <= set(
        found
    )
    assert typed_limits("(p * 100).toFixed(1); '100%'; 0.05; 1000; rows=5") == []
