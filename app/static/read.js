// "Read the model": three views of any text (pasted, or the output above) through the model
// picked in the settings.  Score: each char shaded by how surprised the model was (POST
// /api/score, score.js), hover or focus a char for what it expected instead.  Inside: the text
// coloured by one cell's activation (inside.js).  Copied: runs of the text found verbatim in the
// training text, underlined, the source line on hover or focus (copied.js).  A read shows its
// progress and can be cancelled (readrun.js); the text's length is counted against the server's
// limit (MAX_SCORE_CHARS, from <body>'s data-* via limits.js) before anything is sent.
//
//   initRead({ alternatives, maxChars });   // from app.js: top chars a tip lists, longest text
//
// The state `r` holds the Score view, the read in flight, the speeds measured, the run button's
// idle label and the model whose cells are listed.  Everything from the model goes in as text.

import { initCompare } from "./compare.js";
import { createView, resetView, setConfidence } from "./confidence.js";
import { showCopied, showSource } from "./copied.js";
import { $ } from "./dom.js";
import { initGates } from "./gates.js";
import { loadCells, pickListed, showInside } from "./inside.js";
import { cancelRead, startRead } from "./readrun.js";
import { showScore } from "./score.js";

const RUN_LABEL = { score: "Score", inside: "Show the cell", copied: "Find copied text" };
const DOING = { score: "Scoring", inside: "Reading the cell over", copied: "Searching" };
const FIELD = { text: "read-text", layer: "cell-layer", units: "cell-unit" }; // the API's params

const chosenView = () =>
  document.querySelector('input[name="read-view"]:checked')?.value ?? "score";
const modelName = () => document.getElementById("model")?.value || undefined;
const countOf = (text) => Array.from(text).length; // code points, as the server counts

export function initRead({ alternatives, maxChars }) {
  const scoreView = createView($("read-score"), $("read-tip"));
  setConfidence(scoreView, true);
  const r = { scoreView, alternatives, maxChars, controller: null, rates: {}, cellsFor: null };
  for (const radio of document.querySelectorAll('input[name="read-view"]')) {
    radio.addEventListener("change", () => switchView(r));
  }
  $("read-run").addEventListener("click", () => runView(r));
  $("read-cancel").addEventListener("click", () => cancelRead(r));
  $("read").addEventListener("keydown", (e) => {
    if (e.key === "Escape" && r.controller) cancelRead(r);
  });
  $("read-use-output").addEventListener("click", () => {
    $("read-text").value = $("output").textContent;
    countText(r);
    runView(r);
  });
  $("read-text").addEventListener("input", () => countText(r));
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
  countText(r);
  switchView(r);
  initGates(); // Gates and Compare bring their own controls and run themselves
  initCompare();
}

function setError(message, field = null) {
  $("read-error").textContent = message ?? "";
  $("read-error").hidden = !message;
  for (const id of ["read-text", "cell-layer", "cell-unit"]) {
    if (id === field) $(id).setAttribute("aria-invalid", "true");
    else $(id).removeAttribute("aria-invalid");
  }
  if (field) $(field).focus();
}

/** "1,234 / 20,000 chars" under the text box, marked once over the server's limit. */
function countText(r) {
  const n = countOf($("read-text").value);
  const counter = $("read-count");
  counter.textContent = `${n.toLocaleString()} / ${r.maxChars.toLocaleString()} chars`;
  counter.classList.toggle("over", n > r.maxChars);
}

function switchView(r) {
  const v = chosenView();
  cancelRead(r, false); // the view left behind: its read is not wanted, and no news
  for (const name of ["score", "inside", "copied"]) $(`read-${name}`).hidden = name !== v;
  $("inside-controls").hidden = v !== "inside";
  r.label = RUN_LABEL[v] ?? "";
  $("read-run").textContent = r.label;
  $("read-summary").textContent = "";
  $("read-tip").hidden = $("copied-tip").hidden = true;
  setError(null);
  if (v === "inside") loadCells(r, modelName());
}

/** A layer or cell number as typed: a whole number ≥ 0, else null (blank is not cell 0). */
function wholeNumber(id) {
  const typed = $(id).value.trim();
  return /^\d+$/.test(typed) ? Number(typed) : null;
}

/** The request for view `v`, or {error, field} when the form cannot make one. */
function request(r, v, text) {
  const model = modelName();
  const n = countOf(text);
  if (n > r.maxChars) {
    const over = (n - r.maxChars).toLocaleString();
    const error = `At most ${r.maxChars.toLocaleString()} chars: take out ${over}.`;
    return { error, field: "read-text" };
  }
  if (v === "score") return { path: "api/score", body: { text, model, top: r.alternatives } };
  if (v === "copied") return { path: "api/copied", body: { text, model } };
  const [layer, unit] = [wholeNumber("cell-layer"), wholeNumber("cell-unit")];
  if (layer === null) return { error: "Enter a layer number: 0 or more.", field: "cell-layer" };
  if (unit === null) return { error: "Enter a cell number: 0 or more.", field: "cell-unit" };
  const body = { text, model, layer, units: [unit], what: $("cell-what").value };
  return { path: "api/inspect", body };
}

/** Empty the view's result (a failed or cancelled read leaves none standing). */
function clearView(r, v) {
  if (v === "score") resetView(r.scoreView, "");
  else $(`read-${v}`).replaceChildren();
  $("read-summary").textContent = "";
}

async function runView(r) {
  const text = $("read-text").value;
  const v = chosenView();
  if (!(v in RUN_LABEL)) return; // a view that runs itself
  const { path, body, error, field } = request(r, v, text);
  setError(error, field);
  if (error) return;
  const read = { path, body, chars: countOf(text), kind: v, doing: DOING[v], out: $(`read-${v}`) };
  try {
    const data = await startRead(r, read);
    if (v === "score") showScore(r.scoreView, data);
    else if (v === "copied") showCopied(text, data);
    else showInside(data);
    $("read").dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError" && r.controller) return; // a newer read took over
    clearView(r, v);
    if (err.name === "AbortError") {
      $("read-summary").textContent = r.cancelled ? "Cancelled." : "";
      $("read").dataset.state = "cancelled";
    } else {
      const param = String(err.param ?? "").split(/[.[\]/]/).find((part) => part in FIELD);
      setError(err.message, FIELD[param] ?? null);
      $("read").dataset.state = "error";
    }
  }
}
