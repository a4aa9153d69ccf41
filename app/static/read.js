// "Read the model": three views of any text (pasted, or the output above) through the model
// picked in the settings.  Score: each char shaded by how surprised the model was (POST
// /api/score), hover or focus a char for what it expected instead.  Inside: the text coloured
// blue→red by one cell's activation (POST /api/inspect), the cell picked from the model's
// list (GET /api/models/{name}/cells) or by number.  Copied: runs of the text found verbatim
// in the training text, underlined, the source line on hover or focus (POST /api/copied).
// Loaded by templates/index.html as its own ES module; everything from the model goes in as text.

import { OutputView, glyph } from "./confidence.js";

const $ = (id) => document.getElementById(id);
const RUN_LABEL = { score: "Score", inside: "Show the cell", copied: "Find copied text" };
const ui = { models: [], cells: null, cellsFor: null, controller: null };
const scoreView = new OutputView($("read-score"), $("read-tip"));
scoreView.setEnabled(true);

const view = () => document.querySelector('input[name="read-view"]:checked')?.value ?? "score";
const modelName = () => document.getElementById("model")?.value || undefined;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setError(message) {
  $("read-error").textContent = message ?? "";
  $("read-error").hidden = !message;
}

async function post(path, body) {
  ui.controller?.abort();
  ui.controller = new AbortController();
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    signal: ui.controller.signal,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.message ?? `The server answered ${response.status}.`);
  return data;
}

// ---- Score ----------------------------------------------------------------------------------

function showScore(data) {
  scoreView.reset("");
  let run = []; // consecutive scored chars go in as one shaded chunk; unscored ones as plain text
  const flush = () => {
    if (run.length) scoreView.append(run.map((c) => c.char).join(""), run);
    run = [];
  };
  for (const c of data.chars) {
    if (c.logprob === null) {
      flush();
      scoreView.append(c.char, null);
    } else run.push(c);
  }
  flush();
  const s = data.summary;
  const own = s.held_out_bits_per_char == null ? "" : ` — the model's own held-out text: ${Number(s.held_out_bits_per_char).toFixed(1)}`;
  const unscored = s.unscored_chars ? ` (${s.unscored_chars} chars outside its vocabulary skipped)` : "";
  $("read-summary").textContent =
    s.bits_per_char == null ? `Nothing to score${unscored}.` : `${s.bits_per_char.toFixed(1)} bits/char${own}. Perplexity ${s.perplexity.toFixed(1)}${unscored}.`;
}

// ---- Inside ---------------------------------------------------------------------------------

async function loadCells() {
  const name = modelName();
  if (ui.cellsFor === name) return;
  ui.cellsFor = name;
  const pick = $("cell-pick");
  pick.replaceChildren(new Option("any cell: set layer and cell below", ""));
  try {
    const response = await fetch(`api/models/${encodeURIComponent(name ?? "")}/cells`);
    const data = response.ok ? await response.json() : null;
    for (const [feature, entry] of Object.entries(data?.features ?? {})) {
      for (const c of entry.cells.slice(0, 3)) {
        const label = `${feature.replace(/_/g, " ")}: layer ${c.layer} ${c.what}[${c.unit}] (r ${c.r >= 0 ? "+" : ""}${c.r.toFixed(2)})`;
        pick.append(new Option(label, JSON.stringify(c)));
      }
    }
    $("cell-pick-hint").textContent = data ? "Cells the finder matched to simple features of held-out text." : "No list for this model (python -m model.cells); pick any cell by number.";
  } catch {
    $("cell-pick-hint").textContent = "Could not load the list of cells.";
  }
}

function pickListed() {
  const value = $("cell-pick").value;
  if (!value) return;
  const c = JSON.parse(value);
  $("cell-layer").value = c.layer;
  $("cell-unit").value = c.unit;
  $("cell-what").value = c.what;
}

function showInside(data) {
  const values = data.activations.map((row) => row[0]);
  const scale = data.what === "h" ? 1 : Math.max(1e-6, ...values.map(Math.abs)); // h is within ±1; c is not
  const out = $("read-inside");
  out.replaceChildren();
  data.chars.forEach((ch, k) => {
    const v = values[k] / scale;
    const span = el("span", ch === "\n" ? "cell nl" : "cell", ch);
    // CSSOM, not a style attribute: allowed under the page's CSP.
    span.style.backgroundColor = v >= 0 ? `rgb(220 38 38 / ${Math.abs(v).toFixed(3)})` : `rgb(37 99 235 / ${Math.abs(v).toFixed(3)})`;
    span.title = `${glyph(ch)}: ${values[k].toFixed(3)}`;
    out.append(span);
  });
  $("read-summary").textContent = `Layer ${data.layer}, ${data.what}[${data.units[0]}]: blue negative, red positive (${data.what === "h" ? "±1" : `±${scale.toFixed(2)}`}).`;
}

// ---- Copied ---------------------------------------------------------------------------------

function showCopied(text, data) {
  const out = $("read-copied");
  out.replaceChildren();
  if (!data.indexed) {
    out.append(document.createTextNode(text));
    $("read-summary").textContent = data.message;
    return;
  }
  const chars = Array.from(text);
  let at = 0;
  for (const span of mergedSpans(data.spans)) {
    if (span.start > at) out.append(document.createTextNode(chars.slice(at, span.start).join("")));
    const mark = el("span", "copied", chars.slice(span.start, span.end).join(""));
    mark.tabIndex = 0;
    mark.dataset.line = `Line ${span.source.line} of the training text:`;
    mark.dataset.source = span.source.line_text;
    out.append(mark);
    at = span.end;
  }
  if (at < chars.length) out.append(document.createTextNode(chars.slice(at).join("")));
  const runs = data.spans.length;
  $("read-summary").textContent = runs
    ? `${data.copied_chars} of ${chars.length} chars are in ${runs} run${runs > 1 ? "s" : ""} of ${data.min_chars}+ chars found verbatim in the training text.`
    : `No run of ${data.min_chars}+ chars appears verbatim in the training text.`;
}

/** Overlapping runs become one underline; its source is the first run's. */
function mergedSpans(spans) {
  const merged = [];
  for (const s of spans) {
    const last = merged.at(-1);
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else merged.push({ ...s });
  }
  return merged;
}

function showSource(e) {
  const mark = e.target.closest?.(".copied");
  const tip = $("copied-tip");
  if (!mark) return;
  tip.replaceChildren(el("div", "tip-label", mark.dataset.line), el("div", "source-line", mark.dataset.source));
  tip.hidden = false;
  mark.setAttribute("aria-describedby", "copied-tip");
  const box = tip.offsetParent?.getBoundingClientRect() ?? { left: 0, top: 0, width: 300 };
  const r = mark.getBoundingClientRect();
  tip.style.left = `${Math.max(0, Math.min(r.left - box.left, box.width - tip.offsetWidth))}px`;
  tip.style.top = `${r.bottom - box.top + 6}px`;
}

// ---- wiring ---------------------------------------------------------------------------------

function switchView() {
  const v = view();
  for (const name of ["score", "inside", "copied"]) $(`read-${name}`).hidden = name !== v;
  $("inside-controls").hidden = v !== "inside";
  $("read-run").textContent = RUN_LABEL[v];
  $("read-summary").textContent = "";
  $("read-tip").hidden = $("copied-tip").hidden = true;
  setError(null);
  if (v === "inside") loadCells();
}

async function runView() {
  const text = $("read-text").value;
  const v = view();
  setError(null);
  $("read").dataset.state = "running";
  try {
    if (v === "score") showScore(await post("api/score", { text, model: modelName(), top: 5 }));
    else if (v === "copied") showCopied(text, await post("api/copied", { text, model: modelName() }));
    else {
      const [layer, unit] = [Number($("cell-layer").value), Number($("cell-unit").value)];
      showInside(await post("api/inspect", { text, model: modelName(), layer, units: [unit], what: $("cell-what").value }));
    }
    $("read").dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError") return;
    setError(err.message);
    $("read").dataset.state = "error";
  }
}

for (const radio of document.querySelectorAll('input[name="read-view"]')) radio.addEventListener("change", switchView);
$("read-run").addEventListener("click", runView);
$("read-use-output").addEventListener("click", () => {
  $("read-text").value = $("output").textContent;
  runView();
});
$("read-text").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    e.stopPropagation(); // the page's own Ctrl+Enter generates
    runView();
  }
});
$("cell-pick").addEventListener("change", pickListed);
document.getElementById("model")?.addEventListener("change", () => view() === "inside" && loadCells());
$("read-copied").addEventListener("mouseover", showSource);
$("read-copied").addEventListener("focusin", showSource);
$("read-copied").addEventListener("mouseleave", () => ($("copied-tip").hidden = true));
$("read-copied").addEventListener("focusout", () => ($("copied-tip").hidden = true));
switchView();
