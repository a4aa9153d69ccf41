"""The browser page in a real browser: Playwright drives Debian's chromium against a real uvicorn
serving the tiny random model (tests/conftest.py).  Skipped, with the reason, where
/usr/bin/chromium is missing (`make chromium` installs it).

    .venv/bin/pytest -m browser tests/test_page.py

Leaves screenshots in test-artifacts/ (page.png after a run with the confidence view,
page-phone.png at 390 px wide).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NEEDS_CHROMIUM, ROOT, LiveServer, console_problem, start_server

PROMPT_LIMIT = 400
ARTIFACTS = ROOT / "test-artifacts"


def watch_console(tab: Any, problems: list[str]) -> None:
    """Add each console problem of `tab` to `problems`."""

    def on_console(message: Any) -> None:
        if problem := console_problem(message):
            problems.append(problem)

    tab.on("console", on_console)


pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]


@pytest.fixture(scope="module")
def server(models_dir: Path) -> Iterator[LiveServer]:
    """A server whose MAX_CHARS allows a stream long enough to watch grow and to stop by hand, and
    whose MAX_PROMPT_CHARS is small enough for Continue to have to drop the start of the text."""
    live = start_server(models_dir, max_chars="1000000", max_prompt_chars=str(PROMPT_LIMIT))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def context(browser: Any) -> Iterator[Any]:
    """One desktop-sized browser context for the module: a fresh tab per test is enough
    isolation."""
    desktop = browser.new_context(viewport={"width": 1280, "height": 900})
    # the page keeps the last visit (write.js): start clean
    desktop.add_init_script("localStorage.clear()")
    yield desktop
    desktop.close()


@pytest.fixture
def page(server: LiveServer, context: Any) -> Iterator[Any]:
    """The page, loaded and ready (models listed); fails the test on any script error or CSP
    report."""
    tab = context.new_page()
    problems: list[str] = []

    def on_console(message: Any) -> None:
        if problem := console_problem(message):  # a CSP report is a console error too
            problems.append(problem)

    def on_dialog(dialog: Any) -> None:  # an alert() would mean injected script ran
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    tab.on("console", on_console)
    tab.on("dialog", on_dialog)
    response = tab.goto(server.url + "/")
    assert "script-src 'self';" in response.headers["content-security-policy"]
    tab.wait_for_selector("body.ready", state="attached")
    yield tab
    tab.close()
    assert problems == []


def generate(
    page: Any, prompt: str, *, max_chars: int, seed: str = "", keyboard: bool = False
) -> str:
    """Fill the form, click Generate (or press Ctrl+Enter), wait for the run to end; the
    generated text."""
    runs = int(page.evaluate("document.body.dataset.runs ?? 0"))
    page.fill("#prompt", prompt)
    page.fill("#max_chars", str(max_chars))
    page.fill("#seed", seed)
    if keyboard:
        page.press("#prompt", "Control+Enter")
    else:
        page.click("#generate")
    page.wait_for_function("n => Number(document.body.dataset.runs ?? 0) > n", arg=runs)
    return output_text(page)[len(prompt) :]


def output_text(page: Any) -> str:
    return str(page.eval_on_selector("#output", "el => el.textContent"))


def active_sequences(server: LiveServer) -> float:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    match = re.search(r"^charlstm_active_sequences (\S+)$", text, re.M)
    assert match, "the server's /metrics has no active-sequences gauge"
    return float(match.group(1))


def test_model_picker_shows_the_card(page: Any, server: LiveServer) -> None:
    (model,) = httpx.get(server.url + "/api/models", timeout=5).json()["models"]
    assert page.locator("#model option").all_text_contents() == ["tiny (default)"]
    labels, values = (
        page.locator("#model-card dt").all_text_contents(),
        page.locator("#model-card dd").all_text_contents(),
    )
    card = dict(zip(labels, values, strict=True))
    assert card["Parameters"].startswith(f"{model['params']:,}")
    assert card["Vocabulary"] == f"{model['vocab_size']} chars"
    assert card["Held-out"] == "not measured"  # the tiny model's card has no held-out figure


def test_text_streams_in_steps(page: Any) -> None:
    # Record the output's length at every DOM change while the stream runs.
    page.evaluate("""() => {
        window.lengths = [];
        new MutationObserver(() =>
        window.lengths.push(document.getElementById('output').textContent.length))
            .observe(document.getElementById('output'), {childList: true, characterData: true,
            subtree: true});
    }""")
    text = generate(page, "ROMEO:", max_chars=3000, seed="1")
    lengths = page.evaluate("window.lengths")
    growing = sorted(set(lengths))
    assert len(text) == 3000
    assert len(growing) >= 3, f"text arrived in {len(growing)} step(s), not streamed"
    assert growing[1] < growing[-1]
    assert page.text_content("#stat-finish") == "length (max chars)"
    assert page.text_content("#stat-chars") == "3,000"
    assert int(page.text_content("#stat-rate").replace(",", "")) > 0


def test_stop_halts_the_stream_and_frees_the_slot(page: Any, server: LiveServer) -> None:
    page.fill("#max_chars", "1000000")
    page.click("#generate")
    page.wait_for_function("() => document.getElementById('output').textContent.length > 200")
    assert page.is_enabled("#stop-button") and page.is_disabled("#generate")
    page.click("#stop-button")
    page.wait_for_function("() => document.body.dataset.state === 'done'")
    assert page.text_content("#stat-finish") == "stopped by you"
    stopped_at = len(output_text(page))
    assert stopped_at < 1_000_000
    deadline = time.monotonic() + 60  # stops a hang only: the order is what is checked
    while active_sequences(server) != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert active_sequences(server) == 0
    assert len(output_text(page)) == stopped_at  # nothing more arrives after Stop
    assert page.is_enabled("#generate") and page.is_enabled("#continue")


def test_seeded_runs_repeat_and_the_random_seed_is_shown(page: Any) -> None:
    first = generate(page, "JULIET:", max_chars=300, seed="12345")
    second = generate(page, "JULIET:", max_chars=300, seed="12345", keyboard=True)
    assert first == second and len(first) == 300
    assert page.text_content("#stat-seed") == "12345"
    # Blank seed: the server draws one (up to 2^63, past a JS number's exact range); reusing it
    # repeats the run.
    fresh = generate(page, "JULIET:", max_chars=300)
    shown = page.text_content("#stat-seed")
    assert shown.isdigit()
    page.click("#reuse-seed")
    assert page.input_value("#seed") == shown
    assert generate(page, "JULIET:", max_chars=300, seed=shown) == fresh


def test_stop_keeps_the_seed_and_the_same_seed_repeats_the_run(page: Any) -> None:
    # The seed comes first in the stream (`event: start`), so a run stopped by hand still shows it.
    page.fill("#prompt", "KING:")
    page.fill("#max_chars", "1000000")
    page.fill("#seed", "")
    page.click("#generate")
    page.wait_for_function("() => document.getElementById('output').textContent.length > 200")
    page.click("#stop-button")
    page.wait_for_function("() => document.body.dataset.state === 'done'")
    assert page.text_content("#stat-finish") == "stopped by you"
    shown = page.text_content("#stat-seed")
    assert shown.isdigit() and page.is_visible("#reuse-seed")
    stopped = output_text(page)[len("KING:") :]
    page.click("#reuse-seed")
    assert page.input_value("#seed") == shown
    # Same prompt, settings and seed: the same chars, up to where Stop cut the first run.
    assert generate(page, "KING:", max_chars=len(stopped), seed=shown) == stopped


def test_stop_strings_end_the_text(page: Any, server: LiveServer) -> None:
    page.fill("#stop-strings", "\\n\ne")  # two lines: a written-out line break, and "e"
    shown = generate(page, "ROMEO:", max_chars=300, seed="11")
    body = {"prompt": "ROMEO:", "max_chars": 300, "seed": 11, "stop": ["\n", "e"]}
    expected = httpx.post(server.url + "/api/generate", json=body, timeout=30).json()
    assert expected["finish_reason"] == "stop"
    assert shown == expected["text"] and "\n" not in shown and "e" not in shown
    assert page.text_content("#stat-finish") == "stop string"


def test_temperature_zero_is_greedy(page: Any) -> None:
    assert page.text_content("#temperature-value") == "0.80"
    page.fill("#temperature", "0")
    assert page.text_content("#temperature-value") == "0 · greedy"
    assert generate(page, "ROMEO:", max_chars=100, seed="1") == generate(
        page, "ROMEO:", max_chars=100, seed="2"
    )


def test_continue_appends_and_copy_copies(page: Any, server: LiveServer) -> None:
    first = generate(page, "ROMEO:", max_chars=120, seed="7")
    runs = page.evaluate("document.body.dataset.runs")
    page.click("#continue")
    page.wait_for_function("n => document.body.dataset.runs !== n", arg=runs)
    text = output_text(page)
    assert text.startswith("ROMEO:" + first) and len(text) == len("ROMEO:") + 240
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page.click("#copy")
    assert page.evaluate("navigator.clipboard.readText()") == text


def test_continue_keeps_the_tail_within_the_prompt_limit(page: Any) -> None:
    generate(page, "ROMEO:", max_chars=PROMPT_LIMIT + 50, seed="8")
    before = output_text(page)
    runs = page.evaluate("document.body.dataset.runs")
    page.click("#continue")  # the whole text is over MAX_PROMPT_CHARS: only its last chars are sent
    page.wait_for_function("n => document.body.dataset.runs !== n", arg=runs)
    assert page.locator("[data-error-for]:visible").count() == 0
    assert page.text_content("#stat-finish") == "length (max chars)"
    assert (
        output_text(page).startswith(before)
        and len(output_text(page)) == len(before) + PROMPT_LIMIT + 50
    )


def test_event_stream_parser_handles_split_reads(page: Any) -> None:
    """Events survive reads split anywhere: inside a UTF-8 char, inside a CR LF pair, mid-field."""
    events = page.evaluate("""async () => {
        const { readEvents } = await import('./static/sse.js');
        const raw = 'data: {"text": "é—"}\\r\\n\\r\\nevent: done\\ndata: {"seed": 1}\\n\\n'
            + ': ping\\n\\n'
            + 'data: x\\rdata: y\\r\\rdata: cut off';
        const bytes = new TextEncoder().encode(raw);
        const body = new ReadableStream({
            start(c) { for (const b of bytes) c.enqueue(Uint8Array.of(b)); c.close(); } });
        const out = [];
        for await (const e of readEvents(new Response(body))) out.push([e.event, e.data]);
        return out;
    }""")
    assert events == [["message", '{"text": "é—"}'], ["done", '{"seed": 1}'], ["message", "x\ny"]]


def test_markup_in_prompt_and_output_stays_text(page: Any, server: LiveServer) -> None:
    prompt = "<script>alert</script><b>bold</b>&amp;"
    shown = generate(page, prompt, max_chars=400, seed="99")
    api = httpx.post(
        server.url + "/api/generate",
        json={"prompt": prompt, "max_chars": 400, "seed": 99},
        timeout=30,
    )
    expected = api.json()["text"]
    assert set(expected) & set("<>&"), (
        "the tiny model's text should hold markup chars for this test"
    )
    assert shown == expected  # every <, > and & shown literally
    assert output_text(page).startswith(prompt)
    assert (
        page.eval_on_selector_all(
            "#output *", "els => els.filter(e => e.tagName !== 'SPAN').length"
        )
        == 0
    )
    assert page.evaluate("document.scripts.length") == 1  # only the page's own module


def test_unknown_char_error_shown_beside_the_prompt(page: Any) -> None:
    generate(page, "ROMEO: 5 €", max_chars=10)
    error = page.locator("#prompt-error")
    assert error.is_visible()
    assert "U+20AC" in error.text_content() and "U+0035" in error.text_content()
    assert page.locator("#prompt-error mark").all_text_contents() == ["5", "€"]
    assert page.get_attribute("#prompt", "aria-invalid") == "true"
    assert page.locator("#form-error").is_hidden()
    # Another field's error lands beside that field, and a good run clears it.
    page.fill("#top_k", "0")
    generate(page, "ROMEO:", max_chars=10)
    assert page.locator("#top_k-error").is_visible() and page.locator("#prompt-error").is_hidden()
    page.fill("#top_k", "")
    generate(page, "ROMEO:", max_chars=10)
    assert page.locator("[data-error-for]:visible").count() == 0


def test_confidence_view_shows_alternatives(page: Any) -> None:
    page.check("#confidence")
    assert page.locator("#confidence-hint").is_visible()
    text = generate(page, "ROMEO:", max_chars=300, seed="3")
    chars = page.locator("#output .ch")
    assert chars.count() == len(text)
    target = page.locator("#output .ch:not(.nl)").nth(5)
    target.hover()
    tip = page.locator("#tip")
    assert tip.is_visible()
    rows = tip.locator("li").all_text_contents()
    assert len(rows) == 5 and all(re.search(r"\d%$", row) for row in rows)
    assert re.search(r"\d% likely", tip.text_content())
    shaded = page.evaluate("""() => [...document.querySelectorAll('#output .ch')]
        .filter(e => getComputedStyle(e).backgroundColor !== 'rgba(0, 0, 0, 0)').length""")
    assert shaded > 0, "no char is shaded: --p did not reach the stylesheet"
    # Keyboard: the chars are one tab stop; arrows move along them and the tooltip follows.
    page.locator("#output .ch[tabindex='0']").focus()
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    focused = page.evaluate("document.activeElement.dataset.i")
    assert focused == str(len(text) - 2) and tip.is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#output .ch:not(.nl)").nth(40).hover()
    page.screenshot(path=str(ARTIFACTS / "page.png"), full_page=True)


def test_readable_at_phone_width(browser: Any, server: LiveServer) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    watch_console(tab, problems)
    tab.goto(server.url + "/")
    tab.wait_for_selector("body.ready", state="attached")
    generate(tab, "ROMEO:", max_chars=300, seed="5")
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
    for control in ("#prompt", "#generate", "#stop-button", "#output", "#temperature", "#model"):
        box = tab.locator(control).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, control
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / "page-phone.png"), full_page=True)
    context.close()
    assert problems == []
