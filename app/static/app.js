// The page's behaviour: read the form, stream POST /api/generate/stream into the output pane,
// show speed, finish reason and seed, point API errors at the field they name.
// Loaded by templates/index.html as an ES module; no dependencies, no build step.
// Server limits come from data-* attributes on <body> (the CSP forbids inline script).

import { OutputView } from "./confidence.js";
import { buildRequest, clearErrors, fieldOf, showApiError, showError as showFieldError, tail } from "./form.js";
import { applyWantedModel } from "./settings.js";
import { initSideBySide } from "./sidebyside.js";
import { readEvents } from "./sse.js";
import "./read.js"; // the Read-the-model section: Score, Inside, Copied
import { initWrite } from "./write.js";

const $ = (id) => document.getElementById(id);
const limits = document.body.dataset;
const MAX_PROMPT_CHARS = Number(limits.maxPromptChars) || 10000;
const FINISH = { length: "length (max chars)", stop: "stop string", stopped: "stopped by you", error: "error" };

const form = $("gen-form");
const view = new OutputView($("output"), $("tip"));
const ui = { controller: null, models: [], seed: null };
const showError = (field, message, prompt) => showFieldError(form, field, message, prompt);

// ---- running --------------------------------------------------------------------------------

function setState(state) {
  document.body.dataset.state = state;
  const running = state === "running";
  $("generate").disabled = running;
  $("stop-button").disabled = !running;
  $("continue").disabled = running || !view.generated;
  $("copy").disabled = !view.text();
  document.dispatchEvent(new CustomEvent("write:state")); // write.js: versions and download follow
}

function showStats(chars, rate, finish) {
  $("stat-chars").textContent = chars.toLocaleString();
  $("stat-rate").textContent = rate === null ? "–" : Math.round(rate).toLocaleString();
  $("stat-finish").textContent = finish;
}

/** The seed of a start or done event's data, as digits: it may exceed 2^53, past a JS number's exact range. */
const seedOf = (data) => /"seed"\s*:\s*(\d+)/.exec(data)?.[1] ?? null;

/** Stream one request; `append` keeps the text on screen and adds to it (Continue). */
async function run(prompt, append) {
  clearErrors(form);
  const { json, errors } = buildRequest(form, prompt, $("confidence").checked ? 5 : 0);
  if (Object.keys(errors).length) {
    for (const [field, message] of Object.entries(errors)) showError(field, message);
    return countRun();
  }
  ui.controller = new AbortController();
  ui.seed = null;
  setState("running");
  $("status").textContent = "Generating…";
  const started = performance.now();
  let count = 0;
  let first = null;
  let finish = "error";
  let rate = null;
  try {
    const response = await fetch("api/generate/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: json,
      signal: ui.controller.signal,
    });
    if (!response.ok) return await showApiError(form, response, prompt);
    if (!append) view.reset(prompt); // only now: a refused request leaves the last text in place
    for await (const { event, data } of readEvents(response)) {
      if (event === "start") {
        ui.seed = seedOf(data); // first, before any text: a run stopped early still shows its seed
        $("stat-seed").textContent = ui.seed ?? "–";
      } else if (event === "message") {
        const chunk = JSON.parse(data);
        view.append(chunk.text, chunk.logprobs);
        count += Array.from(chunk.text ?? "").length;
        first ??= { at: performance.now(), count };
        const secs = (performance.now() - first.at) / 1000;
        rate = secs > 0.05 ? (count - first.count) / secs : rate;
        showStats(count, rate, "…");
        followOutput();
      } else if (event === "done") {
        finish = JSON.parse(data).finish_reason ?? "length";
        ui.seed = seedOf(data) ?? ui.seed;
      } else if (event === "error") {
        const error = JSON.parse(data).error ?? {};
        showError(fieldOf(error.param), error.message || "Generation failed.");
        break;
      }
    }
    if (finish === "error" && !document.querySelector("[data-error-for]:not([hidden])")) {
      showError("", "The stream ended before the server said it was done.");
    }
  } catch (err) {
    if (err.name === "AbortError") finish = "stopped";
    else showError("", `Could not reach the server (${err.message}).`);
  } finally {
    ui.controller = null;
    showStats(count, rate, FINISH[finish] ?? finish);
    $("stat-seed").textContent = ui.seed ?? "–";
    $("reuse-seed").hidden = ui.seed === null;
    const ttfc = first ? ` First char after ${Math.round(first.at - started)} ms.` : "";
    $("status").textContent =
      finish === "error" ? "Failed: see the message above." : `Finished: ${FINISH[finish] ?? finish}, ${count} chars.${ttfc}`;
    setState(finish === "error" ? "error" : "done");
    if (finish !== "error") document.dispatchEvent(new CustomEvent("write:finished", { detail: { seed: ui.seed, append } }));
    countRun();
  }
}

/** Count finished runs on <body data-runs>, so a watcher (a test, say) can tell one run from the next. */
function countRun() {
  document.body.dataset.runs = String(Number(document.body.dataset.runs ?? 0) + 1);
}

/** Keep the newest text in sight, unless the reader has scrolled up to look at older text. */
function followOutput() {
  const out = $("output");
  if (out.scrollHeight - out.scrollTop - out.clientHeight < 80) out.scrollTop = out.scrollHeight;
}

function generate() {
  if (!ui.controller) run(form.elements.prompt.value, false);
}

function continueRun() {
  if (!ui.controller && view.generated) run(tail(view.text(), MAX_PROMPT_CHARS), true);
}

function stop() {
  ui.controller?.abort();
}

async function copy() {
  const text = view.text();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http on another host): copy through a selected, off-screen textarea.
    const area = Object.assign(document.createElement("textarea"), { value: text, className: "offscreen" });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  $("status").textContent = `Copied ${Array.from(text).length} chars.`;
}

// ---- models ---------------------------------------------------------------------------------

const count = (n) => Number(n).toLocaleString();

/** The model card as label/value rows; fields a card lacks are left out. */
function cardRows(m) {
  const cfg = m.config ?? {};
  const bits = m.held_out_bits_per_char;
  const heldOut = m.corpus?.held_out_chars ? ` on ${count(m.corpus.held_out_chars)} unseen chars` : "";
  const stored = m.size_bytes ?? m.bytes;
  const weights = stored ?? (m.params != null ? m.params * 4 : null);
  const mib = weights === null ? "" : `${(weights / 2 ** 20).toFixed(weights < 2 ** 20 ? 2 : 1)} MiB`;
  const size = weights === null ? "" : ` (${mib}${stored == null ? " as float32" : ""})`;
  return [
    ["Parameters", m.params != null ? `${count(m.params)}${size}` : null],
    ["Network", cfg.layers && cfg.units ? `${cfg.layers} LSTM layers × ${cfg.units} units` : null],
    ["Vocabulary", m.vocab_size != null ? `${m.vocab_size} chars` : null],
    ["Held-out", bits != null ? `${Number(bits).toFixed(3)} bits/char${heldOut}` : "not measured"],
    ["Corpus", m.corpus?.name ? `${m.corpus.name}${m.corpus.chars ? `, ${count(m.corpus.chars)} chars` : ""}` : null],
  ].filter(([, value]) => value !== null);
}

function showCard() {
  const model = ui.models.find((m) => m.name === form.elements.model.value);
  const rows = model ? cardRows(model) : [];
  $("model-card").replaceChildren(
    ...rows.flatMap(([k, v]) => [Object.assign(document.createElement("dt"), { textContent: k }),
      Object.assign(document.createElement("dd"), { textContent: v })]),
  );
}

async function loadModels() {
  try {
    const response = await fetch("api/models", { headers: { Accept: "application/json" } });
    if (!response.ok) return await showApiError(form, response, "");
    ui.models = (await response.json()).models ?? [];
  } catch (err) {
    return showError("model", `Could not load the model list (${err.message}).`);
  }
  const select = form.elements.model;
  const preferred = limits.defaultModel || ui.models.find((m) => m.default)?.name;
  for (const m of ui.models) {
    select.append(new Option(m.default ? `${m.name} (default)` : m.name, m.name, false, m.name === preferred));
  }
  applyWantedModel(form);
  showCard();
  document.body.classList.add("ready");
}

// ---- wiring ---------------------------------------------------------------------------------

function showTemperature() {
  const t = Number(form.elements.temperature.value);
  const text = t === 0 ? "0 · greedy" : t.toFixed(2);
  $("temperature-value").textContent = text;
  form.elements.temperature.setAttribute("aria-valuetext", t === 0 ? "0, greedy" : text);
}

function countPrompt() {
  const n = Array.from(form.elements.prompt.value).length;
  const counter = $("prompt-count");
  counter.textContent = `${n.toLocaleString()} / ${MAX_PROMPT_CHARS.toLocaleString()}`;
  counter.classList.toggle("over", n > MAX_PROMPT_CHARS);
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  generate();
});
$("stop-button").addEventListener("click", stop);
$("continue").addEventListener("click", continueRun);
$("copy").addEventListener("click", copy);
$("reuse-seed").addEventListener("click", () => {
  form.elements.seed.value = ui.seed ?? "";
});
$("confidence").addEventListener("change", (e) => {
  view.setEnabled(e.target.checked);
  $("confidence-hint").hidden = !e.target.checked;
});
form.elements.temperature.addEventListener("input", showTemperature);
form.elements.prompt.addEventListener("input", countPrompt);
form.elements.model.addEventListener("change", showCard);
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    generate();
  } else if (e.key === "Escape" && ui.controller) {
    stop();
  }
});

showTemperature();
countPrompt();
view.setEnabled($("confidence").checked);
$("confidence-hint").hidden = !$("confidence").checked;
view.reset("");
const busy = () => ui.controller !== null;
initWrite({ form, view, busy, run: (prompt, append) => run(tail(prompt, MAX_PROMPT_CHARS), append) });
initSideBySide({ form, busy });
document.addEventListener("write:rendered", () => setState("done"));
setState("idle");
loadModels();
