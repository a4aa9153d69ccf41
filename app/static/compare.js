// The Compare view of Read the model: every loaded model in one table, so the classic RNN / GRU /
// LSTM comparison is measured rather than asserted: gates, parameters, held-out bits/char, the
// engine's chars/s at 1 and 32 streams (from each model's figures, the CPU named), training
// time, memory span and held-out loss by position (a small chart).  Below it, comparerun.js
// streams one prompt and seed through all the models at once.
//
//   initCompare();   // from read.js, beside the Score, Inside, Copied and Gates views
//
// The state `s`: the models (GET /api/models, each with its figures or null) and, while a run
// streams, its AbortControllers.

import { lineChart } from "./chart.js";
import { cancelAll, runAll } from "./comparerun.js";
import { $, el } from "./dom.js";
import { fetchFigures, spanText } from "./figures.js";
import { CELL_NAMES, chosenView, request, watchView } from "./views.js";

const GATES = { lstm: "3: input, forget, output", gru: "2: update, reset", rnn: "0: none" };
const count = (n) => (n == null ? "–" : Number(n).toLocaleString());

const ROWS = [
  ["cell", (m) => `${CELL_NAMES[m.cell] ?? m.cell}, ${m.config?.layers} × ${m.config?.units}`],
  ["gates", (m) => GATES[m.cell] ?? "–"],
  ["parameters", (m) => count(m.params)],
  ["held-out bits/char", (m) => (m.held_out_bits_per_char == null
    ? "not measured" : Number(m.held_out_bits_per_char).toFixed(3))],
  ["chars/s, 1 stream", (m) => count(m.figures?.speed?.chars_per_s_1)],
  ["chars/s, 32 streams", (m) => count(m.figures?.speed?.chars_per_s_32)],
  ["training time", (m) => duration(m.train_seconds)],
  ["memory span", (m) => (m.figures?.memory?.curve?.length ? spanText(m.figures.memory) : "–")],
  ["loss vs position", lossChart],
];

export function initCompare() {
  const s = { models: null, controllers: [] };
  $("cmp-run").addEventListener("click", () => runAll(s));
  $("cmp-cancel").addEventListener("click", () => cancelAll(s));
  $("read").addEventListener("keydown", (e) => {
    if (e.key === "Escape" && chosenView() === "compare") cancelAll(s);
  });
  watchView("compare", $("compare-view"), () => open(s));
}

/** The first time the view is chosen: the models and their figures, then the table. */
async function open(s) {
  if (s.models) return; // the loaded models stay the same while the server runs
  s.models = [];
  $("compare-view").dataset.state = "loading";
  $("cmp-note").textContent = "Loading the models and their figures…";
  try {
    const response = await request("api/models", { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    const models = (await response.json()).models ?? [];
    const figures = await Promise.all(models.map((m) => fetchFigures(m.name).catch(() => null)));
    s.models = models.map((m, k) => ({ ...m, figures: figures[k] }));
    showTable(s.models);
    $("compare-view").dataset.state = "ready";
  } catch (err) {
    s.models = null;
    $("cmp-note").textContent = `Could not load the models (${err.message}).`;
    $("compare-view").dataset.state = "error";
  }
}

function showTable(models) {
  const head = el("tr");
  head.append(el("td"), ...models.map((m) => {
    const th = el("th", "", m.name);
    th.scope = "col";
    return th;
  }));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  for (const [title, value] of ROWS) {
    const row = el("tr");
    const th = el("th", "", title);
    th.scope = "row";
    row.append(th);
    for (const m of models) {
      const cell = el("td");
      cell.append(value(m));
      row.append(cell);
    }
    tbody.append(row);
  }
  $("cmp-table").replaceChildren($("cmp-table").caption ?? el("caption"), thead, tbody);
  $("cmp-note").textContent = note(models);
}

/** Where the speeds were measured, and which models have no figures. */
function note(models) {
  const cpus = [...new Set(models.map((m) => machine(m.figures?.speed)).filter(Boolean))];
  const missing = models.filter((m) => !m.figures).map((m) => m.name);
  const where = cpus.length
    ? `chars/s: the engine alone, sampling included, measured on ${cpus.join("; ")}. `
    : "";
  const none = missing.length
    ? `No figures for ${missing.join(", ")} (python -m model.reading.figures).`
    : "";
  return `${where}${none}`;
}

/** "Intel Xeon (kernels: znver3, avx2)": the CPU and the target its kernels were compiled for. */
function machine(speed) {
  if (!speed?.cpu) return "";
  return speed.kernels ? `${speed.cpu} (kernels: ${speed.kernels})` : speed.cpu;
}

/** "45 s", "12 min", "1 h 05 min"; "–" when the card does not say. */
function duration(seconds) {
  if (seconds == null) return "–";
  const s = Number(seconds);
  if (s < 90) return `${Math.round(s)} s`;
  const minutes = Math.round(s / 60);
  if (minutes < 90) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Held-out bits/char by chars since the last newline, as a small chart. */
function lossChart(m) {
  const loss = m.figures?.loss_by_position;
  if (!loss?.distance?.length) return "–";
  const chart = lineChart({
    points: loss.distance.map((d, k) => [d, loss.bits_per_char[k]]),
    xLabel: "chars since a newline", yLabel: "bits/char",
    label: `${m.name}: held-out loss by position in the line`,
  });
  chart.classList.add("small");
  return chart;
}
