// The model-wide figures (GET /api/models/{name}/figures, computed once per model by
// `python -m model.reading.figures`): gate saturation as a scatter per layer (Karpathy et al.
// 2015, fig. 3), the memory span curve, and a note naming the integrator cells.  Also read by the
// Compare view (speed, memory span, loss by position).
//
//   const figures = await fetchFigures(name, signal);   // null when the model has none (404)
//   showFigures(figures, (layer, units) => ...);         // into #gates-figures; the callback
//                                                         // shows the named cells' gates

import { lineChart, scatter } from "./chart.js";
import { $, el } from "./dom.js";
import { request } from "./views.js";

const GATE_NAMES = { i: "input", f: "forget", g: "candidate", o: "output", z: "update",
  r: "reset", n: "candidate" };

/** The figures, or null where the model has none; throws on other failures. */
export async function fetchFigures(name, signal) {
  const response = await request(`api/models/${encodeURIComponent(name ?? "")}/figures`,
    { headers: { Accept: "application/json" }, signal });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`The server answered ${response.status}.`);
  return response.json();
}

/** The memory curve (k = 1 first) as a chart on log scales, the span marked. */
export function memoryChart(memory, label) {
  const k1 = memory.curve[0] || 1;
  const marks = [{ y: 0.01, text: "1%" }];
  if (memory.span <= memory.curve.length) marks.push({ x: memory.span, text: `${memory.span}` });
  return lineChart({
    points: memory.curve.map((v, k) => [k + 1, v / k1]), xLog: true, yLog: true, marks,
    xLabel: "k: chars back", yLabel: "influence ÷ nearest", label,
  });
}

/** "37 chars", or "past 256 chars" when the curve never falls below 1%. */
export function spanText(memory) {
  return memory.span <= memory.curve.length
    ? `${memory.span} chars`
    : `past ${memory.curve.length} chars`;
}

export function showFigures(figures, showCells) {
  const box = $("gates-figures");
  if (!figures) {
    box.replaceChildren(el("p", "hint none",
      "No figures for this model: run python -m model.reading.figures --model DIR --corpus FILE."));
    return;
  }
  const parts = [];
  const sat = figures.saturation ?? {};
  if (!sat.gates?.length) {
    parts.push(el("p", "hint", `Gate saturation: ${sat.note ?? "this model has no gates"}.`));
  }
  for (const layer of sat.layers ?? []) {
    const figure = el("figure", "figure");
    figure.append(scatter({
      series: sat.gates.map((g) => ({
        name: g,
        points: layer.gates[g].left.map((left, u) => [left, layer.gates[g].right[u]]),
      })),
      xLabel: "fraction left-saturated (< 0.1)", yLabel: "right-saturated (> 0.9)",
      label: `Gate saturation in layer ${layer.layer}: one dot per cell and gate`,
    }));
    const names = sat.gates.map((g) => `${g} (${GATE_NAMES[g] ?? g})`).join(", ");
    figure.append(el("figcaption", "", `Layer ${layer.layer}: ${names}, one dot per cell.`));
    parts.push(figure);
    if (layer.integrators?.length) parts.push(integrators(layer, sat.keep_gate, showCells));
  }
  const memory = figures.memory;
  if (memory?.curve?.length) {
    const figure = el("figure", "figure");
    figure.append(memoryChart(memory, "Memory span: influence by distance, averaged"));
    figure.append(el("figcaption", "", `Memory span: ${spanText(memory)}, averaged over ` +
      `${memory.positions} positions of held-out text (${memory.context} chars of context).`));
    parts.push(figure);
  }
  box.replaceChildren(...parts);
}

/** "Layer 1: cells 3, 17 are integrators …" with a button that shows their gates. */
function integrators(layer, keep, showCells) {
  const units = layer.integrators;
  const note = el("p", "integrators");
  const which = units.length === 1 ? `cell ${units[0]} is an integrator` :
    `cells ${units.join(", ")} are integrators`;
  note.append(`Layer ${layer.layer}: ${which}: ${keep ?? "the keep gate"} is above 0.9 ` +
    "at least half the time, so they carry memory across long stretches. ");
  const button = el("button", "link", "Show their gates");
  button.type = "button";
  button.addEventListener("click", () => showCells(layer.layer, units));
  note.append(button);
  return note;
}
