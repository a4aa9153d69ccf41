"""Writing with the model in a real browser (Chromium, as tests/test_page.py): branching with the
mouse and the keyboard, undo/redo through versions, side by side against single runs, download,
reload, a shared link.  Leaves test-artifacts/page-write.png.

    .venv/bin/pytest -m browser tests/test_page_write.py
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer
from tests.test_page import ARTIFACTS, generate, output_text, watch_console

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(
        900
    ),  # the module's first test includes the server start (kernel compile on a busy machine)
    NEEDS_CHROMIUM,
]


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[LiveServer]:
    live = LiveServer({"CHARLSTM_MODELS_DIR": str(models_dir)})
    try:
        # compiling the step's kernels took 195 s on a 2-core machine at load 23
        live.wait_ready(timeout=600)
    except Exception:
        live.stop()
        raise
    yield live
    live.stop()


@pytest.fixture
def page(server: LiveServer, browser: Any) -> Iterator[Any]:
    """A fresh context per test (its own local storage); fails the test on any script error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    watch_console(tab, problems)
    tab.goto(server.url + "/")
    tab.wait_for_selector("body.ready", state="attached")
    yield tab
    context.close()
    assert problems == []


def wait_run(page: Any, runs: str | None) -> None:
    page.wait_for_function("n => document.body.dataset.runs !== n", arg=runs)


def versions(page: Any) -> list[str]:
    return list(page.locator("#versions button").all_text_contents())


def test_branch_with_the_mouse_cuts_puts_the_char_in_and_goes_on(page: Any) -> None:
    page.check("#confidence")
    first = generate(page, "ab", max_chars=40, seed="3")
    target = page.locator("#output .ch").nth(10)
    target.click()
    menu = page.locator("#branch-menu")
    assert menu.is_visible()
    item = menu.locator(".menu-item").first
    chosen = item.get_attribute("data-char")
    assert chosen and chosen != first[10]
    runs = page.evaluate("document.body.dataset.runs")
    item.click()
    wait_run(page, runs)
    text = output_text(page)
    assert text.startswith("ab" + first[:10] + chosen) and len(text) == 2 + 11 + 40
    assert len(versions(page)) == 2 and "branch at 11" in versions(page)[1]


def test_branch_and_undo_with_the_keyboard_alone(page: Any) -> None:
    page.check("#confidence")
    first = "ab" + generate(page, "ab", max_chars=30, seed="4")
    page.locator("#output .ch[tabindex='0']").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.locator("#branch-menu").is_visible()
    assert page.evaluate("document.activeElement.classList.contains('menu-item')")
    page.keyboard.press("ArrowDown")
    chosen = page.evaluate("document.activeElement.dataset.char")
    runs = page.evaluate("document.body.dataset.runs")
    page.keyboard.press("Enter")
    wait_run(page, runs)
    branched = output_text(page)
    assert branched.startswith(first[:7] + chosen) and branched != first
    page.locator("#output").focus()  # not a text field: Ctrl+Z is the page's undo
    page.keyboard.press("Control+z")
    assert output_text(page) == first
    page.keyboard.press("Control+Shift+z")
    assert output_text(page) == branched
    page.click("#back")
    assert output_text(page) == first and page.input_value("#seed") == "4"


def test_side_by_side_columns_match_single_runs_with_the_same_seed(page: Any) -> None:
    page.fill("#prompt", "ROMEO:")
    page.fill("#max_chars", "80")
    page.fill("#seed", "21")
    page.locator("#advanced summary").click()
    page.fill("#compare", "0.3, 1.4")
    page.click("#compare-run")
    page.wait_for_function("() => document.body.dataset.compare === 'done'")
    columns = page.locator("#columns-grid .column")
    assert columns.count() == 2
    texts = [str(columns.nth(k).locator(".column-text").text_content()) for k in range(2)]
    assert texts[0] != texts[1]
    for k in range(2):
        stats = columns.nth(k).locator(".column-stats").text_content() or ""
        assert "80 chars" in stats and "chars/s" in stats and stats.endswith("length")
    page.fill("#temperature", "1.4")
    assert "ROMEO:" + generate(page, "ROMEO:", max_chars=80, seed="21") == texts[1]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "page-write.png"), full_page=True)


def test_download_reload_and_forget(page: Any, tmp_path: Path) -> None:
    page.check("#confidence")
    page.fill("#top_k", "7")
    generate(page, "JULIET:", max_chars=50, seed="9")
    text = output_text(page)
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "out.txt"
    info.value.save_as(saved)
    assert info.value.suggested_filename.endswith(".txt") and saved.read_text("utf-8") == text
    page.reload()
    page.wait_for_selector("body.ready", state="attached")
    assert (
        output_text(page) == text
        and page.input_value("#top_k") == "7"
        and page.input_value("#seed") == "9"
    )
    assert len(versions(page)) == 1 and page.is_enabled("#continue")
    page.click("#forget")
    page.reload()
    page.wait_for_selector("body.ready", state="attached")
    assert output_text(page) == "" and versions(page) == []


def test_a_shared_link_restores_prompt_seed_and_settings(
    page: Any, server: LiveServer, browser: Any
) -> None:
    page.fill("#prompt", "KING:\nA <b>crown</b> & more")
    page.fill("#seed", "123")
    page.fill("#top_p", "0.9")
    page.click("#share")
    url = page.url
    assert "seed=123" in url and "top_p=0.9" in url
    other = browser.new_context()
    tab = other.new_page()
    tab.goto(url)
    tab.wait_for_selector("body.ready", state="attached")
    assert tab.input_value("#prompt") == "KING:\nA <b>crown</b> & more"
    assert tab.input_value("#seed") == "123" and tab.input_value("#top_p") == "0.9"
    other.close()
