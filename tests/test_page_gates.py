"""The page's Gates view in Chromium (Playwright), against a real uvicorn serving tiny models built
here: an LSTM whose first-layer cells 0-3 are pushed to the textbook extremes (cell 0 keeps its
memory, 1 erases it, 2 writes, 3 reads out), with a cell list and model-wide figures; a GRU
without figures; a plain RNN with figures.  Skipped where /usr/bin/chromium is missing.

    .venv/bin/pytest -m browser tests/test_page_gates.py

Leaves screenshots in test-artifacts/: gates.png (1280 px) and gates-phone.png (390 px).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import NEEDS_CHROMIUM, LiveServer, build_tiny_model_dir, open_page, start_server
from tests.test_page import ARTIFACTS

pytestmark = [
    pytest.mark.browser,
    NEEDS_CHROMIUM,
]
HELD_OUT = (
    "ROMEO:\nBut soft, what light through yonder window breaks?\n"
    "It is the east, and Juliet is the sun.\n"
    "JULIET:\nO Romeo, Romeo, wherefore art thou Romeo?\nDeny thy father and refuse thy name.\n"
) * 3
TEXT = "ROMEO:\nWhat light?"
SPEED = {
    "cpu": "Test CPU 9000 @ 1.00GHz",
    "kernels": "znver3, avx2",
    "threads": 1,
    "chars_per_s_1": 1234,
    "chars_per_s_32": 23456,
}
CELLS = {
    "model": "tiny",
    "features": {
        "in_quotes": {
            "description": "inside quotes",
            "cells": [{"layer": 1, "unit": 5, "what": "c", "r": 0.7}],
        },
        "line_position": {
            "description": "since a newline",
            "cells": [{"layer": 0, "unit": 9, "what": "h", "r": -0.6}],
        },
    },
}
BIG = 12.0  # a bias this large pins a sigmoid to 0 or 1 whatever the input


def push_to_extremes(path: Path) -> None:
    """First layer of the LSTM at `path`: f ≈ 1 in cell 0, f ≈ 0 in cell 1, i ≈ g ≈ 1 in cell 2,
    o ≈ 1 in cell 3 (Keras's bias blocks: i, f, g, o)."""
    from model.artifact import load_artifact, save_artifact

    art = load_artifact(path)
    layer = art.model.get_layer("lstm_0")
    kernel, recurrent, bias = layer.get_weights()
    u = layer.units
    bias[u + 0], bias[u + 1] = BIG, -BIG
    bias[0 * u + 2], bias[2 * u + 2] = BIG, BIG
    bias[3 * u + 3] = BIG
    layer.set_weights([kernel, recurrent, bias])
    save_artifact(path, art.model, art.vocab, art.card)


def write_figures(path: Path, speed: dict[str, Any] = SPEED) -> dict[str, Any]:
    """figures.json from model/reading/figures.py's own parts on HELD_OUT (the engine speed
    given)."""
    from model.artifact import load_artifact
    from model.cells import Stack
    from model.reading import figures

    art = load_artifact(path)
    stack = Stack.from_keras(art.model)
    ids = art.vocab.encode(HELD_OUT)
    found = {
        "cell": stack.cell,
        "held_out_chars": len(ids),
        "saturation": figures.saturation(stack, ids),
        "memory": figures.memory(art.model, ids, positions=16, context=48),
        "loss_by_position": figures.loss_by_position(stack, art.vocab, ids),
        "speed": speed,
    }
    figures.write(path, found)
    return found


def build_model(root: Path, name: str, cell: str, *, figures: bool, **card: Any) -> Path:
    """A tiny model of this cell in root/name, its card extended by `card`, with figures if
    asked."""
    path = build_tiny_model_dir(root / name, name=name, cell=cell, seed=len(name))
    card_file = path / "card.json"
    card_file.write_text(json.dumps({**json.loads(card_file.read_text("utf-8")), **card}), "utf-8")
    if figures:
        write_figures(path)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("gates-page")
    build_tiny_model_dir(root / "tiny")
    push_to_extremes(root / "tiny")
    (root / "tiny" / "cells.json").write_text(json.dumps(CELLS), "utf-8")
    write_figures(root / "tiny")
    build_model(root, "gru", "gru", figures=False)
    build_model(root, "rnn", "rnn", figures=True)
    live = start_server(root, default_model="tiny")
    warm_up(live, ["tiny", "gru", "rnn"])
    yield live
    live.stop()


def show_gates(page: Any, text: str, units: str = "0, 1, 2, 3", layer: int = 0) -> None:
    page.check('input[name="read-view"][value="gates"]')
    page.fill("#read-text", text)
    page.fill("#gates-layer", str(layer))
    page.fill("#gates-units", units)
    page.click("#gates-run")
    page.wait_for_function("() => document.getElementById('gates-view').dataset.state === 'done'")


def node_value(page: Any, node: str) -> float:
    return float(page.get_attribute(f'#step-diagram [data-node="{node}"]', "data-value"))


def on_words(page: Any) -> list[str]:
    return page.locator("#step-words li.on").evaluate_all(
        "items => items.map(i => i.dataset.state)"
    )


def gates_api(
    server: LiveServer, text: str, units: list[int], model: str = "tiny"
) -> dict[str, Any]:
    body = {"text": text, "model": model, "layer": 0, "units": units}
    return httpx.post(server.url + "/api/gates", json=body, timeout=60).json()


def warm_up(server: LiveServer, models: list[str]) -> None:
    """The first gates, influence and generation requests compile kernels and trace TensorFlow:
    make them here, so the browser's waits measure the page."""
    for model in models:
        httpx.post(
            server.url + "/api/gates",
            json={"text": "ab", "model": model, "units": [0]},
            timeout=600,
        )
        httpx.post(
            server.url + "/api/influence",
            json={"text": "abc", "position": 2, "model": model},
            timeout=600,
        )
        httpx.post(
            server.url + "/api/generate",
            json={"prompt": "a", "max_chars": 2, "model": model},
            timeout=600,
        )


def test_strips_and_the_step_show_the_real_numbers(page: Any, server: LiveServer) -> None:
    show_gates(page, TEXT)
    assert page.locator("#gates-strips .gate-ch").count() == len(TEXT)
    assert page.get_attribute("#gates-strips", "data-rows") == "f,i,o,c"
    painted = page.evaluate(
        """() => [...document.querySelectorAll('#gates-strips canvas')].every(c => {
             const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
             return px.some((v, k) => k % 4 === 3 && v > 0); })"""
    )
    assert painted
    # The last char is chosen; the diagram carries its numbers, as the API gives them.
    t = len(TEXT) - 1
    assert page.get_attribute("#gates-strips [aria-current=true]", "data-t") == str(t)
    api = gates_api(server, TEXT, [0, 1, 2, 3])["values"]
    for name in ("f", "i", "g", "o", "c", "h"):
        assert node_value(page, name) == api[name][t][0], name
    f, i, g, o = (node_value(page, n) for n in "figo")
    c_prev, c = node_value(page, "cPrev"), node_value(page, "c")
    assert c_prev == api["c"][t - 1][0]
    assert math.isclose(c, f * c_prev + i * g, abs_tol=1e-4)
    assert math.isclose(node_value(page, "h"), o * math.tanh(c), abs_tol=1e-4)
    assert "cₜ = f·cₜ₋₁ + i·g" in page.text_content("#step-equations")
    # The extremes the biases set, in words, cell by cell.
    expected = {0: "kept", 1: "erased", 2: "written", 3: "read"}
    for k, word in expected.items():
        page.select_option("#gates-focus", index=k)
        assert word in on_words(page), (k, on_words(page))
    page.select_option("#gates-focus", index=1)
    assert "kept" not in on_words(page) and "memory erased" in page.text_content("#step-state")
    # ← and → step through the text; a click chooses a char.
    page.focus("#gates-strips [aria-current=true]")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.t") == str(t - 1)
    assert page.get_attribute("#step-diagram", "data-t") == str(t - 1)
    assert node_value(page, "f") == api["f"][t - 1][1]
    page.keyboard.press("Home")
    assert page.get_attribute("#step-diagram", "data-t") == "0"
    assert node_value(page, "cPrev") == 0  # the start state
    page.locator("#gates-strips .gate-ch").nth(3).click()
    assert page.get_attribute("#step-diagram", "data-t") == "3"
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#read").screenshot(path=str(ARTIFACTS / "gates.png"))


def test_what_the_model_remembers(page: Any, server: LiveServer) -> None:
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/api/influence") else None)
    show_gates(page, TEXT)
    done = "() => document.getElementById('gates-memory').dataset.state === 'done'"
    page.wait_for_function(done)
    t = len(TEXT) - 1
    body = {"text": TEXT, "position": t, "model": "tiny"}
    api = httpx.post(server.url + "/api/influence", json=body, timeout=60).json()
    assert api["start"] == 0 and len(api["influence"]) == t
    spans = page.locator("#memory-text .cell")
    assert spans.count() == t + 1  # the chars before it, and the char predicted
    assert page.text_content("#memory-text .predicted") == TEXT[t]
    shades = spans.evaluate_all("s => s.slice(0, -1).map(x => x.style.backgroundColor)")
    assert len(set(shades)) > 3  # shaded by influence, not one colour
    assert page.locator("#memory-curve svg path.line").count() == 1
    summary = page.text_content("#memory-summary")
    assert f"char {t}" in summary and "1%" in summary
    # Stepping quickly asks once, for where the choice settles.
    before = len(asked)
    page.focus("#gates-strips [aria-current=true]")
    page.evaluate(  # three quick steps, in one go whatever the machine's load
        """() => { for (let k = 0; k < 3; k++) document.activeElement.dispatchEvent(
             new KeyboardEvent('keydown', { key: 'ArrowLeft', bubbles: true })); }"""
    )
    page.wait_for_function(done)
    assert len(asked) == before + 1
    assert f"char {t - 3}" in page.text_content("#memory-summary")
    page.keyboard.press("Home")
    assert "nothing before it" in page.text_content("#memory-summary")


def test_model_wide_figures(page: Any, server: LiveServer) -> None:
    page.check('input[name="read-view"][value="gates"]')
    page.wait_for_selector("#gates-figures figure")
    charts = page.locator("#gates-figures figure svg")
    assert charts.count() == 3  # a scatter per layer, then the memory span
    dots = page.locator("#gates-figures figure").first.locator("[data-series] circle")
    assert dots.count() == 16 * 4  # a dot per cell and gate
    assert "cell 0 is an integrator" in page.text_content("#gates-figures .integrators")
    memory = httpx.get(server.url + "/api/models/tiny/figures", timeout=60).json()["memory"]
    reach = len(memory["curve"])
    span = f"{memory['span']} chars" if memory["span"] <= reach else f"past {reach} chars"
    assert f"Memory span: {span}" in page.text_content("#gates-figures")
    assert page.locator("#gates-listed option").count() == 3  # the finder's two cells
    page.select_option("#gates-listed", index=1)
    page.click("#gates-add")
    assert (page.input_value("#gates-layer"), page.input_value("#gates-units")) == ("1", "5")
    page.fill("#read-text", TEXT)
    page.click("#gates-figures .integrators button")  # "Show their gates": layer 0, cell 0
    page.wait_for_function("() => document.getElementById('gates-view').dataset.state === 'done'")
    assert page.input_value("#gates-units") == "0"
    assert page.locator("#gates-focus option").all_text_contents() == ["cell 0"]


def test_gru_and_rnn_say_what_they_have(page: Any) -> None:
    page.select_option("#model", "gru")
    show_gates(page, TEXT, units="1, 2")
    assert page.get_attribute("#gates-strips", "data-rows") == "z,r,h"
    assert "two gates" in page.text_content("#gates-note")
    z, n, h_prev = (node_value(page, name) for name in ("z", "n", "hPrev"))
    assert math.isclose(node_value(page, "h"), (1 - z) * n + z * h_prev, abs_tol=1e-4)
    page.wait_for_selector("#gates-figures .none")
    assert "No figures for this model" in page.text_content("#gates-figures")
    page.select_option("#model", "rnn")
    show_gates(page, TEXT, units="0")
    assert page.get_attribute("#gates-strips", "data-rows") == "h"
    assert "no gates" in page.text_content("#gates-note")
    assert on_words(page) == ["written"]  # rewritten, every char
    page.wait_for_function(
        "() => /no gates/.test(document.getElementById('gates-figures').textContent)"
    )


def test_a_long_request_shows_progress_and_can_be_cancelled(page: Any) -> None:
    page.route("**/api/gates", lambda route: None)  # never answered: a request that takes forever
    page.check('input[name="read-view"][value="gates"]')
    page.fill("#read-text", TEXT)
    page.click("#gates-run")
    assert page.is_visible("#gates-progress") and page.is_enabled("#gates-cancel")
    assert "Reading" in page.text_content("#gates-summary")
    page.click("#gates-cancel")
    assert page.get_attribute("#gates-view", "data-state") == "cancelled"
    assert not page.is_visible("#gates-progress") and not page.is_enabled("#gates-cancel")
    assert page.text_content("#gates-summary") == "Cancelled."
    page.click("#gates-run")  # again, and Esc cancels it too
    assert page.get_attribute("#gates-view", "data-state") == "running"
    page.keyboard.press("Escape")
    assert page.get_attribute("#gates-view", "data-state") == "cancelled"


def test_bad_cells_say_why(page: Any) -> None:
    page.check('input[name="read-view"][value="gates"]')
    page.fill("#read-text", TEXT)
    page.fill("#gates-units", "0, x")
    page.click("#gates-run")
    assert "whole numbers" in page.text_content("#gates-error")
    page.fill("#gates-units", "99")
    page.click("#gates-run")
    page.wait_for_function("() => document.getElementById('gates-view').dataset.state === 'error'")
    assert "cell" in page.text_content("#gates-error").lower()  # the server's message, shown


def test_keyboard_only_at_phone_width(browser: Any, server: LiveServer) -> None:
    context, tab, problems = open_page(browser, server, width=390, height=844)
    try:
        tab.focus('input[name="read-view"][value="score"]')
        for _ in range(3):
            tab.keyboard.press("ArrowRight")  # the radio group: Inside, Copied, Gates
        assert tab.is_visible("#gates-view") and not tab.is_visible("#read-run")
        tab.keyboard.press("Tab")  # "Use the output above"
        tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.id") == "read-text"
        tab.keyboard.type(TEXT)
        tab.keyboard.press("Control+Enter")  # runs the Gates view; generates nothing
        tab.wait_for_function(
            "() => document.getElementById('gates-view').dataset.state === 'done'"
        )
        assert tab.evaluate("document.body.dataset.runs") is None
        for _ in range(12):
            if tab.evaluate("document.activeElement.classList.contains('gate-ch')"):
                break
            tab.keyboard.press("Tab")
        assert tab.evaluate("document.activeElement.dataset.t") == str(len(TEXT) - 1)
        outline = tab.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # focus is visible
        tab.keyboard.press("ArrowLeft")
        assert tab.get_attribute("#step-diagram", "data-t") == str(len(TEXT) - 2)
        wide = tab.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, f"the page scrolls sideways at phone width ({wide} px)"
        ARTIFACTS.mkdir(exist_ok=True)
        tab.locator("#read").screenshot(path=str(ARTIFACTS / "gates-phone.png"))
    finally:
        context.close()
    assert problems == []
