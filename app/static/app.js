// The page's entry: builds its state and wires the buttons, keys and labels to the parts.
// Loaded by templates/index.html as an ES module; no dependencies, no build step.
// The server's limits come from data-* attributes on <body> (limits.js; the CSP forbids inline
// script).  The parts: generate.js (one streamed run), models.js (picker and card), write.js
// (versions, branching, keeping), sidebyside.js (columns), read.js (Read the model), vocab.js
// (the model's chars, unknown ones marked in the prompt), api.js (client id, the API key).
//
// The state `page` holds the form, the output view, the limits, the model list (and whether it
// is loading), the last run's seed and, while a run streams, its AbortController.

import { initApi } from "./api.js";
import { createView, resetView, setConfidence, viewText } from "./confidence.js";
import { $, el } from "./dom.js";
import { tail } from "./form.js";
import { runOnce, setState } from "./generate.js";
import { keepView, loadView } from "./keep.js";
import { readLimits } from "./limits.js";
import { loadModels, showCard } from "./models.js";
import { initRead } from "./read.js";
import { initSideBySide } from "./sidebyside.js";
import { checkPrompt, removeUnknown } from "./vocab.js";
import { initWrite } from "./write.js";

start();

function start() {
  const limits = readLimits();
  initApi();
  initRead({ alternatives: limits.alternatives, maxChars: limits.maxScoreChars });
  const form = $("gen-form");
  const view = createView($("output"), $("tip"));
  const page = { form, view, limits, controller: null, models: [], listing: false, seed: null };
  wire(page);
  showTemperature(form);
  countPrompt(page);
  $("confidence").checked = Boolean(loadView().confidence); // the box as it was left
  setConfidence(view, $("confidence").checked);
  $("confidence-hint").hidden = !$("confidence").checked;
  resetView(view, "");
  const busy = () => page.controller !== null;
  const run = (prompt, append) => runOnce(page, tail(prompt, limits.maxPromptChars), append);
  initWrite({ form, view, busy, run, limits });
  initSideBySide({ form, busy, limits });
  document.addEventListener("write:rendered", () => setState(page, "done"));
  document.addEventListener("write:forgot", () => forgotten(page));
  document.addEventListener("api:key", () => {
    if (!page.models.length && !page.listing) reloadModels(page); // its list was refused before
  });
  setState(page, "idle");
  loadModels(page);
}

function wire(page) {
  const { form } = page;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    generate(page);
  });
  $("stop-button").addEventListener("click", () => stop(page));
  $("continue").addEventListener("click", () => continueRun(page));
  $("copy").addEventListener("click", () => copy(page));
  $("reuse-seed").addEventListener("click", () => {
    form.elements.seed.value = page.seed ?? "";
  });
  $("confidence").addEventListener("change", (e) => {
    setConfidence(page.view, e.target.checked);
    $("confidence-hint").hidden = !e.target.checked;
    keepView({ confidence: e.target.checked });
  });
  form.elements.temperature.addEventListener("input", () => showTemperature(form));
  form.elements.prompt.addEventListener("input", () => {
    countPrompt(page);
    checkPrompt(page);
  });
  form.elements.model.addEventListener("change", () => showCard(page));
  $("remove-unknown").addEventListener("click", () => removeUnknown(page));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      generate(page);
    } else if (e.key === "Escape" && page.controller) {
      stop(page);
    }
  });
}

function generate(page) {
  if (!page.controller) runOnce(page, page.form.elements.prompt.value, false);
}

function continueRun(page) {
  if (page.controller || !page.view.generated) return;
  runOnce(page, tail(viewText(page.view), page.limits.maxPromptChars), true);
}

function stop(page) {
  page.controller?.abort();
}

async function copy(page) {
  const text = viewText(page.view);
  if (!text) return;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http on another host): copy through a selected, off-screen textarea.
    const area = Object.assign(el("textarea", "offscreen"), { value: text });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("status").textContent = `Copied ${Array.from(text).length} chars.`;
}

// ---- form labels ----------------------------------------------------------------------------

function showTemperature(form) {
  const t = Number(form.elements.temperature.value);
  const text = t === 0 ? "0 · greedy" : t.toFixed(2);
  $("temperature-value").textContent = text;
  form.elements.temperature.setAttribute("aria-valuetext", t === 0 ? "0, greedy" : text);
}

function countPrompt(page) {
  const n = Array.from(page.form.elements.prompt.value).length;
  const max = page.limits.maxPromptChars;
  const counter = $("prompt-count");
  counter.textContent = `${n.toLocaleString()} / ${max.toLocaleString()}`;
  counter.classList.toggle("over", n > max);
}

/** After Forget: no text, so nothing to copy or continue; the last run's numbers go too. */
function forgotten(page) {
  page.seed = null;
  for (const id of ["stat-rate", "stat-finish", "stat-seed"]) $(id).textContent = "–";
  $("stat-chars").textContent = "0";
  $("reuse-seed").hidden = true;
  setState(page, "idle");
}

/** The key was given after the model list was refused: list the models now. */
function reloadModels(page) {
  for (const id of ["model-error", "form-error"]) $(id).replaceChildren();
  for (const id of ["model-error", "form-error"]) $(id).hidden = true;
  loadModels(page);
}
