"""What issue 23 found missing from the page, in Chromium against a real uvicorn serving the tiny
model, at 1280×900 and 390×844, by keyboard: a collapsible "What am I looking at?" with a link to
/docs, the model's vocabulary with the prompt's unknown chars marked as they are typed and removed
in one click, a share link that carries the text and its versions (opened elsewhere, it shows them
without Generate, and the confidence view scores them), and side-by-side columns that are
first-class (shaded by confidence, downloaded, kept as a version, branched from).

    .venv/bin/pytest -m browser tests/test_page_gaps.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer, start_server
from tests.test_page_defects import (
    WIDTHS,
    Tab,
    generate,
    open_tab,
    output_text,
    press,
    runs,
    shaded,
    wait_run,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(600),
    NEEDS_CHROMIUM,
]


@pytest.fixture(params=sorted(WIDTHS, reverse=True), ids=lambda w: f"{w}px")
def width(request: Any) -> int:
    """Each test at 1280×900 and at 390×844."""
    return int(request.param)


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[LiveServer]:
    live = start_server(models_dir)
    yield live
    live.stop()


@pytest.fixture
def tab(browser: Any, server: LiveServer, width: int) -> Iterator[Tab]:
    t = open_tab(browser, server, width)
    yield t
    assert t.close() == []


def versions(page: Any) -> list[str]:
    return list(page.locator("#versions button").all_text_contents())


def test_what_am_i_looking_at(tab: Tab, server: LiveServer) -> None:
    page = tab.page
    assert page.is_hidden("#intro p")  # collapsed: the page opens on the tool
    press(page, "#intro summary")
    text = page.text_content("#intro")
    for words in ("character-level LSTM", "Bits per char", "Perplexity", "cell state"):
        assert words in text, words
    html = page.inner_html("#intro")
    assert "<strong>h</strong>" in html and "<strong>c</strong>" in html
    link = page.locator("#intro a[href='docs']")
    assert link.is_visible() and not link.locator("xpath=ancestor::noscript").count()
    assert (
        httpx.get(server.url + "/" + str(link.get_attribute("href")), timeout=10).status_code == 200
    )
    press(page, "#intro summary")
    assert page.is_hidden("#intro p")


def test_the_vocabulary_and_unknown_chars_marked_while_typing(tab: Tab, server: LiveServer) -> None:
    page = tab.page
    (model,) = httpx.get(server.url + "/api/models", timeout=10).json()["models"]
    assert page.text_content("#vocab-count") == str(len(model["chars"]))
    press(page, "#vocab summary")
    assert page.locator("#vocab-chars .glyph").count() == len(model["chars"])
    assert "␣" in page.locator("#vocab-chars .glyph").all_text_contents()  # the space, visible
    page.focus("#prompt")
    page.keyboard.type("ROMEO: 5 o'clock €")
    note = page.locator("#prompt-unknown")
    assert note.is_visible()
    assert "2 chars the model does not know" in note.text_content()
    assert note.locator("mark").all_text_contents() == ["5", "€"]
    before = runs(page)
    press(page, "#remove-unknown")
    assert page.input_value("#prompt") == "ROMEO:  o'clock "
    assert note.is_hidden() and page.evaluate("document.activeElement.id") == "prompt"
    assert runs(page) == before  # nothing was sent
    page.keyboard.type("3")
    assert note.is_visible() and note.locator("mark").all_text_contents() == ["3"]


def test_a_shared_link_shows_the_text_and_its_versions(
    tab: Tab, browser: Any, server: LiveServer, width: int
) -> None:
    page = tab.page
    generate(page, "KING:\nA <b>crown</b> & more", max_chars=40, seed="12")
    before = runs(page)
    press(page, "#continue")
    wait_run(page, before)
    text = output_text(page)
    shown = versions(page)
    assert len(shown) == 2
    press(page, "#share")
    page.wait_for_function("() => location.hash.startsWith('#v=')")
    url = page.url
    assert "seed=12" in url
    other = open_tab(browser, server, width, path=url.removeprefix(server.url))
    theirs = other.page
    theirs.wait_for_function(
        "n => document.getElementById('output').textContent.length === n", arg=len(text)
    )
    assert output_text(theirs) == text and runs(theirs) == 0  # no Generate pressed
    assert [v.split(" · ", 1)[1] for v in versions(theirs)] == [v.split(" · ", 1)[1] for v in shown]
    # a reload will not repeat it
    assert "#" not in theirs.url and theirs.input_value("#seed") == "12"
    press(theirs, "#confidence", "Space")  # no probabilities travelled: the page scores the text
    theirs.wait_for_function("() => document.querySelectorAll('#output .ch').length === 80")
    assert shaded(theirs, "#output .ch") > 0
    press(theirs, "#back")
    assert output_text(theirs) == text[: len(text) - 40]
    assert other.close() == []


def run_columns(page: Any) -> Any:
    page.fill("#prompt", "ROMEO:")
    page.fill("#max_chars", "50")
    page.fill("#seed", "21")
    page.locator("#advanced summary").click()
    page.fill("#compare", "0.3, 1.4")
    press(page, "#compare-run")
    page.wait_for_function("() => document.body.dataset.compare === 'done'")
    return page.locator("#columns-grid .column")


def test_side_by_side_columns_are_first_class(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    columns = run_columns(page)
    texts = [str(columns.nth(k).locator(".column-text").text_content()) for k in range(2)]
    # Shaded by confidence when the box is ticked, with a tooltip per char.
    assert shaded(page, "#columns-grid .ch") == 0
    press(page, "#confidence", "Space")
    assert shaded(page, "#columns-grid .column:nth-child(1) .ch") > 0
    columns.nth(0).locator(".ch").nth(3).focus()
    assert columns.nth(0).locator(".tip").is_visible()
    # Downloaded.
    with page.expect_download() as info:
        press(page, "#columns-grid .column:nth-child(2) .column-tools button:text('Download .txt')")
    saved = tmp_path / "column.txt"
    info.value.save_as(saved)
    assert saved.read_text("utf-8") == texts[1] and "1.4" in info.value.suggested_filename
    # Kept as a version: in the output, with its settings, ready to continue.
    press(page, "#columns-grid .column:nth-child(2) .column-tools button:text('Keep as a version')")
    assert output_text(page) == texts[1]
    assert page.input_value("#temperature") == "1.4" and page.input_value("#seed") == "21"
    assert "kept from temperature 1.4" in versions(page)[-1]
    before = runs(page)
    press(page, "#continue")
    wait_run(page, before)
    assert output_text(page).startswith(texts[1]) and len(output_text(page)) == len(texts[1]) + 50


def test_branch_from_a_column(tab: Tab) -> None:
    page = tab.page
    press(page, "#confidence", "Space")
    columns = run_columns(page)
    first = str(columns.nth(0).locator(".column-text").text_content())
    columns.nth(0).locator(".ch[tabindex='0']").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")  # keep the column, open the char's alternatives above
    menu = page.locator("#branch-menu")
    assert menu.is_visible() and page.evaluate(
        "document.activeElement.classList.contains('menu-item')"
    )
    assert output_text(page) == first
    chosen = page.evaluate("document.activeElement.dataset.char")
    before = runs(page)
    page.keyboard.press("Enter")
    wait_run(page, before)
    text = output_text(page)
    assert text.startswith("ROMEO:" + first[6:10] + chosen) and len(text) == 6 + 5 + 50
    assert "branch at 5" in versions(page)[-1] and "kept from temperature 0.3" in versions(page)[-2]
