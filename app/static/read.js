// "Read the model": three views of any text (pasted, or the output above) through the model
// picked in the settings.  Score: each char shaded by how surprised the model was (POST
// /api/score), hover or focus a char for what it expected instead.  Inside: the text coloured by
// one cell's activation (inside.js).  Copied: runs of the text found verbatim in the training
// text, underlined, the source line on hover or focus (copied.js).
//
//   initRead({ alternatives });   // from app.js; alternatives: how many top chars a tip lists
//
// The state `r` holds the Score view, the request in flight and the model whose cells are listed.
// Everything from the model goes in as text.

import { appendText, createView, resetView, setConfidence } from "./confidence.js";
import { showCopied, showSource } from "./copied.js";
import { $ } from "./dom.js";
import { loadCells, pickListed, showInside } from "./inside.js";

const RUN_LABEL = { score: "Score", inside: "Show the cell", copied: "Find copied text" };

const chosenView = () =>
  document.querySelector('input[name="read-view"]:checked')?.value ?? "score";
const modelName = () => document.getElementById("model")?.value || undefined;

export function initRead({ alternatives }) {
  const scoreView = createView($("read-score"), $("read-tip"));
  setConfidence(scoreView, true);
  const r = { scoreView, alternatives, controller: null, cellsFor: null };
  for (const radio of document.querySelectorAll('input[name="read-view"]')) {
    radio.addEventListener("change", () => switchView(r));
  }
  $("read-run").addEventListener("click", () => runView(r));
  $("read-use-output").addEventListener("click", () => {
    $("read-text").value = $("output").textContent;
    runView(r);
  });
  $("read-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      e.stopPropagation(); // the page's own Ctrl+Enter generates
      runView(r);
    }
  });
  $("cell-pick").addEventListener("change", pickListed);
  document.getElementById("model")?.addEventListener("change", () => {
    if (chosenView() === "inside") loadCells(r, modelName());
  });
  const copied = $("read-copied");
  copied.addEventListener("mouseover", showSource);
  copied.addEventListener("focusin", showSource);
  copied.addEventListener("mouseleave", () => ($("copied-tip").hidden = true));
  copied.addEventListener("focusout", () => ($("copied-tip").hidden = true));
  switchView(r);
}

function setError(message) {
  $("read-error").textContent = message ?? "";
  $("read-error").hidden = !message;
}

/** POST JSON and return the answer's JSON; a newer request aborts the one in flight. */
async function post(r, path, body) {
  r.controller?.abort();
  r.controller = new AbortController();
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    signal: r.controller.signal,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error?.message ?? `The server answered ${response.status}.`);
  }
  return data;
}

function switchView(r) {
  const v = chosenView();
  for (const name of ["score", "inside", "copied"]) $(`read-${name}`).hidden = name !== v;
  $("inside-controls").hidden = v !== "inside";
  $("read-run").textContent = RUN_LABEL[v];
  $("read-summary").textContent = "";
  $("read-tip").hidden = $("copied-tip").hidden = true;
  setError(null);
  if (v === "inside") loadCells(r, modelName());
}

async function runView(r) {
  const text = $("read-text").value;
  const model = modelName();
  const v = chosenView();
  setError(null);
  $("read").dataset.state = "running";
  try {
    if (v === "score") {
      showScore(r.scoreView, await post(r, "api/score", { text, model, top: r.alternatives }));
    } else if (v === "copied") {
      showCopied(text, await post(r, "api/copied", { text, model }));
    } else {
      const [layer, unit] = [Number($("cell-layer").value), Number($("cell-unit").value)];
      const what = $("cell-what").value;
      showInside(await post(r, "api/inspect", { text, model, layer, units: [unit], what }));
    }
    $("read").dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError") return;
    setError(err.message);
    $("read").dataset.state = "error";
  }
}

/** Scored chars shaded in the view (unscored ones as plain text), and the bits/char summary. */
function showScore(view, data) {
  resetView(view, "");
  let run = []; // consecutive scored chars go in as one shaded chunk; unscored ones as plain text
  const flush = () => {
    if (run.length) appendText(view, run.map((c) => c.char).join(""), run);
    run = [];
  };
  for (const c of data.chars) {
    if (c.logprob === null) {
      flush();
      appendText(view, c.char, null);
    } else run.push(c);
  }
  flush();
  const s = data.summary;
  const held = s.held_out_bits_per_char;
  const own = held == null ? "" : ` — the model's own held-out text: ${Number(held).toFixed(1)}`;
  const skipped = s.unscored_chars;
  const unscored = skipped ? ` (${skipped} chars outside its vocabulary skipped)` : "";
  const bits = s.bits_per_char;
  $("read-summary").textContent =
    bits == null
      ? `Nothing to score${unscored}.`
      : `${bits.toFixed(1)} bits/char${own}. Perplexity ${s.perplexity.toFixed(1)}${unscored}.`;
}
