"""The page's "Read the model" section in Chromium (Playwright), against a real uvicorn serving a
tiny model that has a held-out figure, a cells.json and a memorisation index.  Skipped where
/usr/bin/chromium is missing (`make chromium`).

    .venv/bin/pytest -m browser tests/test_page_read.py

Leaves screenshots in test-artifacts/: read-score.png, read-inside.png, read-copied.png and
read-phone.png (390 px wide).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer, open_page, start_server
from tests.test_page import ARTIFACTS
from tests.test_read_api import readable_tiny

pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]
CORPUS = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n"
)
CELLS = {
    "model": "tiny",
    "features": {
        "in_quotes": {
            "description": "inside quotes",
            "cells": [{"layer": 1, "unit": 3, "what": "c", "r": 0.71}],
        }
    },
}


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("read-page")
    readable_tiny(tiny_model_dir, root, CELLS, CORPUS)
    live = start_server(root)
    yield live
    live.stop()


def run_view(page: Any, view: str, text: str) -> None:
    page.check(f'input[name="read-view"][value="{view}"]')
    page.fill("#read-text", text)
    page.click("#read-run")
    page.wait_for_function("() => document.getElementById('read').dataset.state === 'done'")


def test_score_view_shades_each_char_and_shows_alternatives(page: Any) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    text = "ROMEO:\nBut soft, what light?"
    run_view(page, "score", text)
    assert page.locator("#read-score .ch").count() == len(text)
    summary = page.text_content("#read-summary")
    assert "bits/char" in summary and "the model's own held-out text: 2.2" in summary
    # Keyboard: Tab from the run button reaches the text; arrows move; the tip lists alternatives.
    page.focus("#read-score .ch")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.textContent") == "O"
    assert page.is_visible("#read-tip") and page.locator("#read-tip .alts li").count() == 5
    page.locator("#read").screenshot(path=str(ARTIFACTS / "read-score.png"))


def test_score_the_generated_output(page: Any) -> None:
    page.fill("#prompt", "ROMEO:")
    page.fill("#max_chars", "40")
    page.click("#generate")
    page.wait_for_function("() => Number(document.body.dataset.runs ?? 0) > 0")
    page.click("#read-use-output")
    page.wait_for_function("() => document.getElementById('read').dataset.state === 'done'")
    output = page.text_content("#output")
    assert page.input_value("#read-text") == output and page.locator(
        "#read-score .ch"
    ).count() == len(output)


def test_inside_view_colours_the_text_by_a_listed_cell(page: Any) -> None:
    page.check('input[name="read-view"][value="inside"]')
    page.wait_for_function("() => document.querySelectorAll('#cell-pick option').length > 1")
    page.select_option("#cell-pick", index=1)
    assert (
        page.input_value("#cell-layer"),
        page.input_value("#cell-unit"),
        page.input_value("#cell-what"),
    ) == (
        "1",
        "3",
        "c",
    )
    text = 'He said "so it goes" and left.'
    run_view(page, "inside", text)
    cells = page.locator("#read-inside .cell")
    assert cells.count() == len(text)
    colours = set(cells.evaluate_all("spans => spans.map(s => s.style.backgroundColor)"))
    assert len(colours) > 3  # shaded by value, not one colour
    assert "c[3]" in page.text_content("#read-summary")
    page.locator("#read").screenshot(path=str(ARTIFACTS / "read-inside.png"))


def test_bad_cell_number_shows_the_servers_message(page: Any) -> None:
    page.check('input[name="read-view"][value="inside"]')
    page.fill("#cell-unit", "999")
    page.fill("#read-text", "abc")
    page.click("#read-run")
    page.wait_for_selector("#read-error:not([hidden])")
    assert "units" in page.text_content("#read-error")


def test_copied_view_underlines_runs_with_their_source(page: Any) -> None:
    text = "A new start. It is the east, and Juliet is the sun.\nThen more."
    run_view(page, "copied", text)
    marks = page.locator("#read-copied .copied")
    assert marks.all_text_contents() == ["It is the east, and Juliet is the sun.\n"]
    marks.first.focus()
    assert page.is_visible("#copied-tip")
    assert "Line 3 of the training text" in page.text_content("#copied-tip")
    assert page.text_content("#copied-tip .source-line") == "It is the east, and Juliet is the sun."
    assert "in 1 run of 24+ chars" in page.text_content("#read-summary")
    page.locator("#read").screenshot(path=str(ARTIFACTS / "read-copied.png"))


def test_keyboard_only_and_phone_width(browser: Any, server: LiveServer) -> None:
    context, tab, problems = open_page(browser, server, width=390)
    try:
        tab.focus("#read-text")
        tab.keyboard.type("ROMEO: hi")
        tab.keyboard.press("Control+Enter")  # runs the view, does not generate
        tab.wait_for_function("() => document.getElementById('read').dataset.state === 'done'")
        assert tab.locator("#read-score .ch").count() == len("ROMEO: hi")
        assert tab.evaluate("document.body.dataset.runs") is None  # nothing was generated
        ARTIFACTS.mkdir(exist_ok=True)
        tab.locator("#read").screenshot(path=str(ARTIFACTS / "read-phone.png"))
        tab.focus('input[name="read-view"][value="score"]')
        tab.keyboard.press("ArrowRight")  # radio group: the arrow moves to Inside
        assert tab.is_visible("#inside-controls")
        wide = tab.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"the page scrolls sideways at phone width ({wide} px)"
    finally:
        context.close()
    assert problems == []
