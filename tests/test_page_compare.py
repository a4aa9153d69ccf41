"""The page's Compare view in Chromium (Playwright), against a real uvicorn serving three tiny
models built here, one per cell (LSTM, GRU, plain RNN), each with a card (held-out bits/char,
training time) and model-wide figures.  Skipped where /usr/bin/chromium is missing.

    .venv/bin/pytest -m browser tests/test_page_compare.py

Leaves screenshots in test-artifacts/: compare.png (1280 px) and compare-phone.png (390 px).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer, open_page, start_server
from tests.test_page import ARTIFACTS
from tests.test_page_gates import SPEED, build_model, warm_up, write_figures

pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]
CARDS = {  # name: (cell, held-out bits/char, training seconds, chars/s at 1 and 32 streams)
    "gru": ("gru", 2.345, 5400, 2100, 41000),
    "lstm": ("lstm", 2.123, 3600, 1900, 37000),
    "rnn": ("rnn", 2.987, 45, 3300, 52000),
}
SHOWN = {  # the table's rows, as the page writes them for each model
    "gru": ["GRU, 2 × 16", "2: update, reset", "2.345", "2,100", "41,000", "1 h 30 min"],
    "lstm": ["LSTM, 2 × 16", "3: input, forget, output", "2.123", "1,900", "37,000", "60 min"],
    "rnn": ["plain RNN, 2 × 16", "0: none", "2.987", "3,300", "52,000", "45 s"],
}
ROWS = [
    "cell",
    "gates",
    "held-out bits/char",
    "chars/s, 1 stream",
    "chars/s, 32 streams",
    "training time",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("compare-page")
    for name, (cell, bits, seconds, one, many) in CARDS.items():
        path = build_model(
            root, name, cell, figures=False, held_out_bits_per_char=bits, train_seconds=seconds
        )
        write_figures(path, {**SPEED, "chars_per_s_1": one, "chars_per_s_32": many})
    live = start_server(root, default_model="lstm")
    warm_up(live, list(CARDS))
    yield live
    live.stop()


def open_compare(page: Any) -> None:
    page.check('input[name="read-view"][value="compare"]')
    page.wait_for_function(
        "() => document.getElementById('compare-view').dataset.state === 'ready'"
    )


def table(page: Any) -> dict[str, dict[str, str]]:
    """The comparison table as {row title: {model: cell text}}."""
    names = page.locator("#cmp-table thead th").all_text_contents()
    rows = {}
    for row in page.locator("#cmp-table tbody tr").all():
        title = row.locator("th").text_content()
        rows[title] = dict(zip(names, row.locator("td").all_text_contents(), strict=True))
    return rows


def test_the_table_has_a_column_per_model_and_every_row_measured(
    page: Any, server: LiveServer
) -> None:
    open_compare(page)
    rows = table(page)
    models = {
        m["name"]: m for m in httpx.get(server.url + "/api/models", timeout=60).json()["models"]
    }
    assert sorted(rows["cell"]) == sorted(CARDS)
    for name, shown in SHOWN.items():
        assert [rows[title][name] for title in ROWS] == shown, name
        assert rows["parameters"][name] == f"{models[name]['params']:,}"
        memory = httpx.get(f"{server.url}/api/models/{name}/figures", timeout=60).json()["memory"]
        reach = len(memory["curve"])
        span = f"{memory['span']} chars" if memory["span"] <= reach else f"past {reach} chars"
        assert rows["memory span"][name] == span
    charts = page.locator("#cmp-table tbody tr").last.locator("td svg path.line")
    assert charts.count() == 3  # loss vs position, one small chart per model
    # The speeds name their CPU and the target the kernels were compiled for.
    assert f"{SPEED['cpu']} (kernels: {SPEED['kernels']})" in page.text_content("#cmp-note")
    assert not page.is_visible("#read-text")  # Compare writes from its own prompt


def test_the_model_picker_shows_cell_size_and_bits(page: Any, server: LiveServer) -> None:
    labels = page.locator("#model option").evaluate_all("os => os.map(o => o.label)")
    params = {
        m["name"]: m["params"]
        for m in httpx.get(server.url + "/api/models", timeout=60).json()["models"]
    }
    assert labels == [
        f"gru · GRU 2×16, {params['gru']:,} params, 2.345 bits/char",
        f"lstm (default) · LSTM 2×16, {params['lstm']:,} params, 2.123 bits/char",
        f"rnn · RNN 2×16, {params['rnn']:,} params, 2.987 bits/char",
    ]


def test_one_prompt_and_seed_every_model_writing_at_once(page: Any, server: LiveServer) -> None:
    open_compare(page)
    page.fill("#cmp-prompt", "ROMEO:")
    page.fill("#cmp-seed", "42")
    page.fill("#cmp-max", "60")
    page.click("#cmp-run")
    page.wait_for_function("() => document.getElementById('compare-view').dataset.run === 'done'")
    columns = page.locator("#cmp-columns .column")
    assert columns.count() == 3
    temperature = float(page.input_value("#temperature"))
    for column in columns.all():
        name = column.get_attribute("data-model")
        body = {
            "prompt": "ROMEO:",
            "max_chars": 60,
            "temperature": temperature,
            "seed": 42,
            "model": name,
        }
        alone = httpx.post(server.url + "/api/generate", json=body, timeout=60).json()["text"]
        assert column.locator(".column-text").text_content() == "ROMEO:" + alone, name
        assert column.get_attribute("data-finish") == "length"
        assert column.locator(".column-stats").text_content().startswith("60 chars")
    # All three were in flight together: each began before any of them ended.
    spans = page.evaluate(
        """() => performance.getEntriesByType('resource')
             .filter(e => e.name.endsWith('/api/generate/stream'))
             .map(e => [e.startTime, e.responseEnd])"""
    )
    assert len(spans) == 3 and max(s for s, _ in spans) < min(e for _, e in spans)
    assert "seed 42" in page.text_content("#cmp-status")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#read").screenshot(path=str(ARTIFACTS / "compare.png"))


def test_cancel_stops_every_column(page: Any) -> None:
    page.route("**/api/generate/stream", lambda route: None)  # never answered
    open_compare(page)
    page.click("#cmp-run")
    assert page.is_visible("#cmp-progress") and page.is_enabled("#cmp-cancel")
    page.click("#cmp-cancel")
    page.wait_for_function(
        "() => document.getElementById('compare-view').dataset.run === 'cancelled'"
    )
    finishes = page.locator("#cmp-columns .column").evaluate_all(
        "cs => cs.map(c => c.dataset.finish)"
    )
    assert finishes == ["stopped"] * 3
    assert not page.is_visible("#cmp-progress") and "Cancelled" in page.text_content("#cmp-status")


def test_a_bad_seed_is_refused_before_any_request(page: Any) -> None:
    open_compare(page)
    page.fill("#cmp-seed", "-3")
    page.click("#cmp-run")
    assert "Seed" in page.text_content("#cmp-error")
    assert page.locator("#cmp-columns .column").count() == 0


def test_keyboard_only_at_phone_width(browser: Any, server: LiveServer) -> None:
    context, tab, problems = open_page(browser, server, width=390, height=844)
    try:
        tab.focus('input[name="read-view"][value="score"]')
        for _ in range(4):
            tab.keyboard.press("ArrowRight")  # Inside, Copied, Gates, Compare
        tab.wait_for_function(
            "() => document.getElementById('compare-view').dataset.state === 'ready'"
        )
        tab.keyboard.press("Tab")  # the table's scrolling region
        assert tab.evaluate("document.activeElement.classList.contains('table-wrap')")
        tab.keyboard.press("ArrowRight")  # scrolls the table, not the page
        tab.wait_for_function("() => document.querySelector('.table-wrap').scrollLeft > 0")
        tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.id") == "cmp-prompt"
        tab.keyboard.press("Tab")
        tab.keyboard.type("7")  # the seed
        tab.keyboard.press("Tab")
        tab.keyboard.press("Control+A")
        tab.keyboard.type("30")  # max chars
        tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.id") == "cmp-run"
        tab.keyboard.press("Enter")
        tab.wait_for_function(
            "() => document.getElementById('compare-view').dataset.run === 'done'"
        )
        stats = tab.locator("#cmp-columns .column-stats").all_text_contents()
        assert len(stats) == 3 and all(s.startswith("30 chars") for s in stats)
        wide = tab.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"the page scrolls sideways at phone width ({wide} px)"
        ARTIFACTS.mkdir(exist_ok=True)
        tab.locator("#read").screenshot(path=str(ARTIFACTS / "compare-phone.png"))
    finally:
        context.close()
    assert problems == []
