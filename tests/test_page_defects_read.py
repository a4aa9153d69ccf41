"""Issue 23's defects in "Read the model", in Chromium against a real uvicorn serving the tiny model
with a cell list and a memorisation index, at 1280×900 and 390×844, by keyboard: a long read
(Score, Inside, Copied) shows a filling bar, changes its button, marks the last result stale and
can be cancelled; a failed read leaves no stale result; a blank cell number is asked for, never
read as cell 0; the text is counted against the server's own limit (MAX_SCORE_CHARS).

    .venv/bin/pytest -m browser tests/test_page_defects_read.py
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer, start_server
from tests.test_page_defects import WIDTHS, Tab, open_tab, press
from tests.test_page_read import CELLS, CORPUS
from tests.test_read_api import readable_tiny

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(600),
    NEEDS_CHROMIUM,
]
LIMIT = 3000  # the server's MAX_SCORE_CHARS here: the page must count against this, not its own
PATHS = {"score": "**/api/score", "inside": "**/api/inspect", "copied": "**/api/copied"}
LONG = ("It is the east, and Juliet is the sun.\n" * 80)[:LIMIT]


@pytest.fixture(params=sorted(WIDTHS, reverse=True), ids=lambda w: f"{w}px")
def width(request: Any) -> int:
    """Each test at 1280×900 and at 390×844."""
    return int(request.param)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("read-defects")
    readable_tiny(tiny_model_dir, root, CELLS, CORPUS)
    live = start_server(root, max_score_chars=str(LIMIT))
    yield live
    live.stop()


@pytest.fixture
def tab(browser: Any, server: LiveServer, width: int) -> Iterator[Tab]:
    t = open_tab(browser, server, width)
    yield t
    assert t.close() == []


def choose(page: Any, view: str) -> None:
    page.check(f'input[name="read-view"][value="{view}"]')
    if view == "inside":
        page.wait_for_function(
            "() => document.getElementById('cell-pick-hint').textContent.startsWith('Cells')"
        )
        page.fill("#cell-layer", "1")
        page.fill("#cell-unit", "3")


def run(page: Any, text: str) -> None:
    page.fill("#read-text", text)
    page.evaluate("document.getElementById('read').dataset.state = ''")
    press(page, "#read-text", "Control+Enter")
    page.wait_for_function(
        "() => ['done', 'error'].includes(document.getElementById('read').dataset.state)"
    )


def result_nodes(page: Any, view: str) -> int:
    return int(page.evaluate(f"document.getElementById('read-{view}').childNodes.length"))


# ---- 4. long reads show progress and can be cancelled ---------------------------------------


@pytest.mark.parametrize("view", ["score", "inside", "copied"])
def test_a_long_read_shows_progress_and_can_be_cancelled(tab: Tab, view: str) -> None:
    page = tab.page
    choose(page, view)
    run(page, "ROMEO: But soft, what light?")  # a first result, to be marked stale
    first_summary = page.text_content("#read-summary")
    assert first_summary and result_nodes(page, view) > 0
    held: list[Any] = []
    page.route(PATHS[view], lambda route: held.append(route))  # the server "takes long": it waits
    page.fill("#read-text", LONG)
    press(page, "#read-run")
    page.wait_for_function("() => !document.getElementById('read-progress').hidden")
    assert page.is_disabled("#read-run") and page.text_content("#read-run").endswith("…")
    assert (
        page.is_visible("#read-cancel")
        and page.evaluate("document.activeElement.id") == "read-cancel"
    )
    assert page.get_attribute(f"#read-{view}", "class").split().count("stale") == 1
    assert page.text_content("#read-summary") != first_summary
    assert f"{LIMIT:,} chars" in page.text_content("#read-summary")
    page.wait_for_function("() => document.getElementById('read-progress').value > 0.05")
    assert page.get_attribute("#read-progress", "value") is not None  # determinate, not a spinner
    assert "left" in page.text_content("#read-eta") or "longer" in page.text_content("#read-eta")
    assert held, "the read was sent"
    page.keyboard.press("Escape")  # Esc cancels
    page.wait_for_function("() => document.getElementById('read').dataset.state === 'cancelled'")
    assert page.text_content("#read-summary") == "Cancelled."
    assert result_nodes(page, view) == 0  # no stale result left standing
    assert page.is_hidden("#read-progress") and page.is_hidden("#read-cancel")
    assert page.is_enabled("#read-run") and not page.text_content("#read-run").endswith("…")
    assert page.evaluate("document.activeElement.id") == "read-run"
    page.unroute(PATHS[view])
    for route in held:
        with contextlib.suppress(Exception):  # the page gave up on it first
            route.abort()


def test_the_cancel_button_by_keyboard_and_a_read_that_finishes(tab: Tab) -> None:
    page = tab.page
    held: list[Any] = []
    page.route(PATHS["score"], lambda route: held.append(route))
    page.fill("#read-text", LONG)
    press(page, "#read-run")
    page.wait_for_function("() => !document.getElementById('read-cancel').hidden")
    press(page, "#read-cancel")
    page.wait_for_function("() => document.getElementById('read').dataset.state === 'cancelled'")
    page.unroute(PATHS["score"])
    run(page, LONG)  # the same read, let through: it ends with the result and no bar
    assert page.evaluate("document.getElementById('read').dataset.state") == "done"
    assert "bits/char" in page.text_content("#read-summary")
    assert page.locator("#read-score .ch").count() == LIMIT
    assert page.is_hidden("#read-progress") and page.text_content("#read-run") == "Score"


# ---- 8. Inside: no stale result after an error, no silent cell 0 ------------------------------


def test_inside_after_an_error_and_with_a_blank_cell_number(tab: Tab) -> None:
    page = tab.page
    choose(page, "inside")
    run(page, 'He said "so it goes".')
    assert page.locator("#read-inside .cell").count() == len('He said "so it goes".')
    page.fill("#cell-layer", "5")  # the tiny model has two layers
    run(page, 'He said "so it goes".')
    assert page.is_visible("#read-error") and "layer" in page.text_content("#read-error")
    assert (
        page.locator("#read-inside .cell").count() == 0 and page.text_content("#read-summary") == ""
    )
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/inspect" in r.url else None)
    page.fill("#cell-layer", "1")
    page.fill("#cell-unit", "")
    press(page, "#read-run")
    assert page.is_visible("#read-error") and "cell number" in page.text_content("#read-error")
    assert page.get_attribute("#cell-unit", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "cell-unit"
    page.wait_for_timeout(300)
    assert sent == [] and page.locator("#read-inside .cell").count() == 0


# ---- the 20,000-char limit, counted -----------------------------------------------------------


def test_the_text_is_counted_against_the_servers_limit(tab: Tab) -> None:
    page = tab.page
    assert page.text_content("#read-count") == f"0 / {LIMIT:,} chars"
    page.fill("#read-text", "é—" * 3)
    assert page.text_content("#read-count") == f"6 / {LIMIT:,} chars"  # chars, not UTF-16 units
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/score" in r.url else None)
    page.fill("#read-text", "a" * (LIMIT + 7))
    assert "over" in (page.get_attribute("#read-count", "class") or "").split()
    press(page, "#read-run")
    assert page.text_content("#read-error") == f"At most {LIMIT:,} chars: take out 7."
    page.wait_for_timeout(300)
    assert sent == []
    page.fill("#read-text", "a" * LIMIT)
    assert "over" not in (page.get_attribute("#read-count", "class") or "").split()
