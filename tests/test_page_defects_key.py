"""The page against a server with an API key (CHARLSTM_API_KEY, app/middleware.py), in Chromium at
1280×900 and 390×844, by keyboard: the first 401 asks for the key once (a password field), the
page keeps it for the tab (sessionStorage), sends `Authorization: Bearer <key>`, lists the models,
generates, reads the cell list (Inside never says "no list" for a refusal), asks again only for a
key the server refused, and Forget drops it.  Every request to /api carries the tab's stable
`X-Client-Id` (issue 24: a balancer keeps a text's Continue on one replica).  The only console
errors allowed are the browser's own lines for the 401s the page handles.

    .venv/bin/pytest -m browser tests/test_page_defects_key.py
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer, start_server
from tests.test_page_defects import WIDTHS, Tab, open_tab, output_text, press, runs, wait_run
from tests.test_page_read import CELLS, CORPUS
from tests.test_read_api import readable_tiny

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(600),
    NEEDS_CHROMIUM,
]
KEY = "s3cret-key-for-the-page"
SESSION = "char-lstm.api-key"


@pytest.fixture(params=sorted(WIDTHS, reverse=True), ids=lambda w: f"{w}px")
def width(request: Any) -> int:
    """Each test at 1280×900 and at 390×844."""
    return int(request.param)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("key-page")
    readable_tiny(tiny_model_dir, root, CELLS, CORPUS)  # with a cell list, for Inside
    live = start_server(root, api_key=KEY)
    yield live
    live.stop()


class Requests:
    """Every request the page sends to /api: its path and headers."""

    def __init__(self, page: Any):
        self.seen: list[tuple[str, dict[str, str]]] = []
        page.on("request", self.on_request)

    def on_request(self, request: Any) -> None:
        if "/api/" in request.url:
            self.seen.append((request.url.split("/api/", 1)[1], request.headers))


@pytest.fixture
def tab(browser: Any, server: LiveServer, width: int) -> Iterator[Tab]:
    t = open_tab(browser, server, width, ready=False)  # not ready until the key is given
    yield t
    assert t.close() == []


def give_key(page: Any, key: str) -> None:
    page.wait_for_selector("#key-dialog[open]")
    assert page.evaluate("document.activeElement.id") == "api-key"
    assert page.get_attribute("#api-key", "type") == "password"
    page.keyboard.type(key)
    page.keyboard.press("Enter")


def test_the_page_asks_for_the_key_once_and_then_works(tab: Tab) -> None:
    page = tab.page
    requests = Requests(page)
    give_key(page, KEY)
    page.wait_for_selector("body.ready", state="attached")
    assert page.locator("#model option").all_text_contents() == ["tiny (default)"]
    assert page.get_attribute("#key-dialog", "data-asked") == "1"
    assert page.evaluate(f"sessionStorage.getItem('{SESSION}')") == KEY
    assert page.evaluate(f"localStorage.getItem('{SESSION}')") is None  # the tab's only
    page.fill("#prompt", "ROMEO:")
    page.fill("#max_chars", "30")
    before = runs(page)
    press(page, "#prompt", "Control+Enter")
    wait_run(page, before)
    assert (
        len(output_text(page)) == len("ROMEO:") + 30
        and page.locator("[data-error-for]:visible").count() == 0
    )
    # Inside lists the model's cells: the list loads with the key.
    page.check('input[name="read-view"][value="inside"]')
    page.wait_for_function("() => document.querySelectorAll('#cell-pick option').length > 1")
    assert page.text_content("#cell-pick-hint").startswith("Cells the finder matched")
    # Seen since the key was typed: the model list again, the stream, the cell list; all with it.
    assert {"models", "generate/stream", "models/tiny/cells"} <= {path for path, _ in requests.seen}
    assert all(h.get("authorization") == f"Bearer {KEY}" for _, h in requests.seen)
    # A reload: the key is still the tab's, no question asked.
    page.reload()
    page.wait_for_selector("body.ready", state="attached")
    assert page.get_attribute("#key-dialog", "data-asked") is None
    # Forget drops the key: the next request asks again.
    press(page, "#forget")
    assert page.evaluate(f"sessionStorage.getItem('{SESSION}')") is None
    page.reload()
    give_key(page, KEY)
    page.wait_for_selector("body.ready", state="attached")


def test_a_wrong_key_is_asked_for_again_and_a_cancel_says_why(tab: Tab) -> None:
    page = tab.page
    give_key(page, "not-the-key")
    page.wait_for_function("() => document.getElementById('key-dialog').dataset.asked === '2'")
    assert page.is_visible("#key-refused")
    page.keyboard.press("Escape")  # cancel: the page says what is missing, Inside does not lie
    page.wait_for_selector("#key-dialog:not([open])", state="attached")
    # The refused request's error lands a task after the dialog closes: wait for it, not race it.
    page.wait_for_selector("#model-error", state="visible")
    assert "needs an API key" in page.text_content("#model-error")
    assert page.locator("[data-error-for]:visible").count() == 1  # that one message, no other
    page.check('input[name="read-view"][value="inside"]')
    assert "No list" not in page.text_content("#cell-pick-hint")
    press(page, "#model-error button")  # the way to give the key after all
    give_key(page, KEY)
    page.wait_for_selector("body.ready", state="attached")  # the model list, then the cell list
    page.wait_for_function("() => document.querySelectorAll('#cell-pick option').length > 1")
    assert page.is_hidden("#model-error") and page.get_attribute("#key-dialog", "data-asked") == "3"


def test_a_refused_cell_list_is_no_missing_cell_list(tab: Tab) -> None:
    page = tab.page
    give_key(page, KEY)
    page.wait_for_selector("body.ready", state="attached")
    page.evaluate(f"sessionStorage.removeItem('{SESSION}')")  # as if the key had not been given
    page.check('input[name="read-view"][value="inside"]')
    page.wait_for_selector("#key-dialog[open]")
    press(page, "#key-form button[value='cancel']")
    page.wait_for_function(
        "() => !document.getElementById('cell-pick-hint').textContent.startsWith('Loading')"
    )
    hint = page.text_content("#cell-pick-hint")
    assert (
        "No list" not in hint and "Could not load the list of cells" in hint and "API key" in hint
    )


def test_every_request_carries_the_tabs_client_id(
    tab: Tab, browser: Any, server: LiveServer, width: int
) -> None:
    page = tab.page
    requests = Requests(page)
    give_key(page, KEY)
    page.wait_for_selector("body.ready", state="attached")
    for _ in range(2):
        page.fill("#max_chars", "10")
        before = runs(page)
        press(page, "#generate")
        wait_run(page, before)
    before = runs(page)
    press(page, "#continue")
    wait_run(page, before)
    page.reload()
    page.wait_for_selector("body.ready", state="attached")
    ids = {h.get("x-client-id") for _, h in requests.seen}
    assert len(requests.seen) >= 5 and len(ids) == 1
    (client,) = ids
    assert client and re.fullmatch(r"[0-9a-f]{32}", client)
    assert page.evaluate("sessionStorage.getItem('char-lstm.client-id')") == client
    other = open_tab(browser, server, width, ready=False)  # another tab: another id
    theirs = Requests(other.page)
    give_key(other.page, KEY)
    other.page.wait_for_selector("body.ready", state="attached")
    assert {h.get("x-client-id") for _, h in theirs.seen} - {None, client}
    assert other.close() == []
