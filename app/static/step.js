// One step of the chosen cell, drawn: the Gates view's diagram (SVG from DOM calls), the
// equations beside it with the chosen char's real numbers, and what the step did to the memory
// in words (kept, erased, written, read out).  Pictures per cell kind live in stepspec.js.
//
//   showStep(g);   // g.data (POST /api/gates), g.t (the char), g.unit (index into g.data.units)
//
// Each node carries data-value (the number it shows, unrounded) so tests can check the
// arithmetic: c = f·c₋₁ + i·g, h = o·tanh(c) for an LSTM.

import { svg } from "./chart.js";
import { $, el } from "./dom.js";
import { shade } from "./strip.js";
import { equations, PICTURES, words } from "./stepspec.js";
import { shown } from "./views.js";

const SIZE = { state: [74, 40], input: [74, 40], gate: [66, 44], cand: [66, 44], fn: [54, 24] };

/** The values of cell k at char t, with the state before it (0 at the start of the text). */
export function valuesAt(data, t, k) {
  let p = t - 1;
  while (p >= 0 && data.values.h[p] === null) p -= 1; // a char outside the vocab is skipped
  const at = (name, i) => (i >= 0 ? data.values[name]?.[i]?.[k] : 0);
  const v = { x: data.chars[t], hPrev: at("h", p) };
  if (data.values.c) v.cPrev = at("c", p);
  for (const name of Object.keys(data.values)) v[name] = data.values[name][t]?.[k];
  return v;
}

export const number = (v) => (v < 0 ? `−${(-v).toFixed(3)}` : v.toFixed(3));

export function showStep(g) {
  const { data, t, unit: k } = g;
  const char = `‘${shown(data.chars[t])}’ (char ${t})`;
  const where = `${char}, cell ${data.units[k]} of layer ${data.layer}`;
  $("step-title").textContent = `One step: ${where}`;
  const box = $("step-diagram");
  box.dataset.t = String(t);
  box.dataset.unit = String(data.units[k]);
  if (data.values.h[t] === null) {
    box.replaceChildren();
    $("step-equations").replaceChildren();
    $("step-words").replaceChildren();
    $("step-state").textContent =
      `${where}: not in the model's vocabulary, so nothing is fed; the state carries on past it.`;
    return;
  }
  const v = valuesAt(data, t, k);
  const scale = { c: g.scales.c?.[k] ?? 1, cPrev: g.scales.c?.[k] ?? 1 };
  box.replaceChildren(diagram(PICTURES[data.cell] ?? PICTURES.rnn, v, scale));
  $("step-equations").replaceChildren(...equations(data.cell, v).flatMap(([formula, numbers]) => [
    el("dt", "", formula),
    el("dd", "", numbers),
  ]));
  const said = words(data.cell, v);
  $("step-words").replaceChildren(...said.map(({ state, on, text }) => {
    const item = el("li", on ? "on" : "", text);
    item.dataset.state = state;
    return item;
  }));
  const active = said.filter((w) => w.on).map((w) => w.word);
  $("step-state").textContent = active.length
    ? `${where}: memory ${active.join(", ")}.`
    : `${where}: no gate is decisive here (none near 0 or 1).`;
}

/** The picture: nodes shaded by their values, edges as thick as what flows along them. */
function diagram(picture, v, scale) {
  const root = svg("svg", { viewBox: "0 0 540 270", class: "step", role: "img" });
  root.setAttribute("aria-label", picture.label);
  const marker = svg("marker", { id: "step-arrow", viewBox: "0 0 8 8", refX: 7, refY: 4,
    markerWidth: 7, markerHeight: 7, markerUnits: "userSpaceOnUse", orient: "auto" });
  marker.append(svg("path", { d: "M0,0L8,4L0,8z", class: "arrow-head" }));
  const defs = svg("defs");
  defs.append(marker);
  root.append(defs);
  for (const edge of picture.edges) {
    const d = edge.points.map(([x, y], n) => `${n ? "L" : "M"}${x},${y}`).join("");
    const width = edge.width ? 1.2 + 4.5 * Math.min(1, Math.abs(edge.width(v))) : 1.2;
    const attrs = { d, class: `flow${edge.kind ? ` ${edge.kind}` : ""}`, "stroke-width": width };
    if (edge.arrow !== false) attrs["marker-end"] = "url(#step-arrow)";
    root.append(svg("path", attrs));
  }
  for (const [id, x, y, kind, label, value] of picture.nodes) {
    root.append(node(id, x, y, kind, label, value ? value(v) : v[id], scale[id] ?? 1));
  }
  return root;
}

function node(id, x, y, kind, label, value, scale) {
  const group = svg("g", { class: `node ${kind}`, "data-node": id });
  if (kind === "op") {
    group.append(svg("circle", { cx: x, cy: y, r: 13, class: "box" }));
    group.append(svg("text", { x, y: y + 5, "text-anchor": "middle", class: "op-label" }, label));
    return group;
  }
  const [w, h] = SIZE[kind];
  const plain = kind === "input" || kind === "fn";
  const fill = plain ? "none" : shade(id.replace("Prev", ""), value, scale);
  const box = { x: x - w / 2, y: y - h / 2, width: w, height: h, rx: 7 };
  group.append(svg("rect", { ...box, class: "box" }));
  if (fill !== "none") group.append(svg("rect", { ...box, fill, class: "node-fill" }));
  const twoLines = typeof value === "number" || kind === "input";
  group.append(svg("text", { x, y: twoLines ? y - 3 : y + 4, "text-anchor": "middle",
    class: "node-label" }, label));
  if (kind === "input") {
    group.append(svg("text", { x, y: y + 13, "text-anchor": "middle", class: "node-value" },
      `‘${shown(value)}’`));
  } else if (typeof value === "number") {
    group.dataset.value = String(value);
    group.append(svg("text", { x, y: y + 13, "text-anchor": "middle", class: "node-value" },
      number(value)));
  }
  return group;
}
