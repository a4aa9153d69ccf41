// The Gates view of Read the model: a recurrent cell's gates and memory at work on any text.
// POST /api/gates gives, per char, the chosen cells' f, i, g, o, c and h (LSTM), z, r, n and h
// (GRU) or h alone (a plain RNN: no gates).  strip.js draws them under the text; one char is
// chosen (click, or ←/→) and step.js draws its step; remember.js shows what the model remembers
// there (POST /api/influence); figures.js the model-wide figures.  Cells are picked by number or
// from the finder's list (cellpick.js).
//
//   initGates();   // from read.js, beside the Score, Inside and Copied views
//
// The state `g`: the last answer (data) and its text, the chosen char (t) and cell (unit: an
// index into data.units), the request in flight (controller), the influence's state (memory),
// and the model whose cell list and figures are shown.

import { addListed, loadListed, parseUnits } from "./cellpick.js";
import { $, el } from "./dom.js";
import { fetchFigures, showFigures } from "./figures.js";
import { askInfluence, cancelInfluence, newMemory } from "./remember.js";
import { showStep } from "./step.js";
import { charsPerLine, markChosen, renderStrips, scalesOf, STRIPS } from "./strip.js";
import { chosenView, modelName, postJson, watchView } from "./views.js";

const NOTES = {
  lstm: "An LSTM: f, i and o are gates (0 shut, 1 open); c is its memory, h what it shows.",
  gru: "A GRU has two gates, z (update: near 1 keeps the old state) and r (reset), and no " +
    "separate memory: h is its state. So the strips are z, r and h.",
  rnn: "A plain RNN has no gates: nothing decides what to keep or show, and every char " +
    "rewrites h. So h is all there is to show.",
};

export function initGates() {
  const g = { data: null, text: "", t: 0, unit: 0, scales: {}, spans: [], controller: null,
    memory: newMemory(), shownFor: null };
  $("gates-run").addEventListener("click", () => run(g));
  $("gates-cancel").addEventListener("click", () => cancel(g));
  $("gates-add").addEventListener("click", () => addListed());
  $("memory-cancel").addEventListener("click", () => cancelInfluence(g.memory, "Cancelled."));
  $("gates-focus").addEventListener("change", () => {
    g.unit = Number($("gates-focus").value);
    showStep(g);
  });
  $("read-text").addEventListener("keydown", (e) => {
    if (chosenView() === "gates" && e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(g);
  });
  $("read-use-output").addEventListener("click", () => chosenView() === "gates" && run(g));
  const strips = $("gates-strips");
  strips.addEventListener("click", (e) => {
    const ch = e.target.closest?.(".gate-ch");
    if (ch) choose(g, Number(ch.dataset.t), true);
  });
  strips.addEventListener("keydown", (e) => stepKey(g, e));
  document.getElementById("model")?.addEventListener("change", () => {
    if (chosenView() === "gates") open(g);
  });
  window.addEventListener("resize", () => relayout(g));
  $("read").addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || chosenView() !== "gates") return;
    cancel(g);
    if (!$("memory-cancel").disabled) cancelInfluence(g.memory, "Cancelled.");
  });
  watchView("gates", $("gates-view"), () => open(g));
}

/** The view was chosen (or the model changed): the model's cell list and figures. */
function open(g) {
  const model = modelName();
  if (!model || g.shownFor === model) return;
  g.shownFor = model;
  cancel(g, "");
  cancelInfluence(g.memory);
  $("gates-results").hidden = true;
  loadListed(model);
  $("gates-figures").replaceChildren(el("p", "hint", "Loading the model's figures…"));
  fetchFigures(model)
    .then((figures) => {
      if (g.shownFor === model) showFigures(figures, (layer, units) => showCells(g, layer, units));
    })
    .catch((err) => $("gates-figures").replaceChildren(
      el("p", "hint", `Could not load the figures (${err.message}).`)));
}

function showCells(g, layer, units) {
  $("gates-layer").value = String(layer);
  $("gates-units").value = units.slice(0, Number($("gates-units").dataset.max)).join(", ");
  run(g);
}

function setError(message) {
  $("gates-error").textContent = message ?? "";
  $("gates-error").hidden = !message;
}

function setBusy(on) {
  $("gates-progress").hidden = !on;
  $("gates-cancel").disabled = !on;
}

function cancel(g, message = "Cancelled.") {
  if (!g.controller) return;
  g.controller.abort();
  g.controller = null;
  setBusy(false);
  $("gates-summary").textContent = message;
  $("gates-view").dataset.state = "cancelled";
}

async function run(g) {
  open(g); // the model's list and figures, if the view opened before the models were listed
  const text = $("read-text").value;
  const { units, error } = parseUnits();
  const layer = Number($("gates-layer").value);
  setError(!text ? "Type or paste a text above first." : error);
  if (!text || error) return;
  cancel(g, "");
  cancelInfluence(g.memory);
  const controller = (g.controller = new AbortController());
  setBusy(true);
  $("gates-view").dataset.state = "running";
  $("gates-summary").textContent = `Reading ${Array.from(text).length} chars through the model…`;
  try {
    const body = { text, model: modelName(), layer, units };
    show(g, await postJson("api/gates", body, controller.signal), text);
    $("gates-view").dataset.state = "done";
  } catch (err) {
    if (err.name === "AbortError") return;
    setError(err.message);
    $("gates-summary").textContent = "";
    $("gates-view").dataset.state = "error";
  } finally {
    if (g.controller === controller) {
      g.controller = null;
      setBusy(false);
    }
  }
}

function show(g, data, text) {
  Object.assign(g, { data, text, unit: 0, scales: scalesOf(data), chosenSpan: null });
  $("gates-note").textContent = NOTES[data.cell] ?? "";
  $("gates-focus").replaceChildren(...data.units.map((u, k) => new Option(`cell ${u}`, k)));
  $("gates-results").hidden = false;
  renderStrips(g);
  const unknown = data.values.h.filter((row) => row === null).length;
  const skipped = unknown ? ` ${unknown} chars outside the vocabulary are grey.` : "";
  $("gates-summary").textContent = `${data.chars.length} chars, layer ${data.layer}: ` +
    `${(STRIPS[data.cell] ?? ["h"]).join(", ")} of cells ${data.units.join(", ")}.${skipped}`;
  choose(g, data.chars.length - 1, false);
}

/** Make char t the chosen one: marked, its step drawn, its influence asked for. */
function choose(g, t, focus) {
  g.t = Math.max(0, Math.min(g.data.chars.length - 1, t));
  markChosen(g);
  if (focus) g.spans[g.t].focus();
  showStep(g);
  askInfluence(g.memory, { text: g.text, position: g.t, model: g.data.model });
}

const STEPS = { ArrowLeft: -1, ArrowRight: 1 };

function stepKey(g, e) {
  if (!e.target.classList?.contains("gate-ch") || !g.data) return;
  const last = g.data.chars.length - 1;
  const to = e.key in STEPS ? g.t + STEPS[e.key] : { Home: 0, End: last }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  choose(g, to, true);
}

/** A resize that changes how many chars fit on a line lays the strips out again. */
function relayout(g) {
  if (!g.data || $("gates-results").hidden || charsPerLine() === g.perLine) return;
  const focused = document.activeElement?.classList.contains("gate-ch");
  g.chosenSpan = null;
  renderStrips(g);
  markChosen(g);
  if (focused) g.spans[g.t].focus();
}
