// The Gates view's text and strips: the text in lines as wide as the view, and under each line one
// canvas with a heat-map strip per chosen cell and value: f, i, o and c (LSTM); z, r and h (GRU);
// h (a plain RNN).  Gates run 0 → 1 as faint → strong teal; c and h blue (−) to red (+).
// One char is chosen (gates.js moves it): it gets tabindex 0 and a marker down its strips.
//
//   renderStrips(g);  markChosen(g);        // g: the Gates view's state (gates.js)
//   shade("f", 0.97);  shade("c", -2.1, 3)  // the colours the strips and the step diagram use

import { $, el } from "./dom.js";

/** The rows under the text, per cell kind. */
export const STRIPS = { lstm: ["f", "i", "o", "c"], gru: ["z", "r", "h"], rnn: ["h"] };
const GATES = new Set(["i", "f", "o", "z", "r"]); // 0…1; the candidates g and n are signed
const CW = 13; // px per char
const ROW = 11; // px per strip
const GAP = 5; // px between one cell's strips and the next cell's
const LABEL = 46; // px for the rows' labels, left of the strips

const clamp = (v) => Math.min(1, Math.max(0, v));

/** The colour of `v`: a gate teal by how open it is; a state red or blue by |v| / scale. */
export function shade(name, v, scale = 1) {
  if (v === null || v === undefined || !Number.isFinite(v)) return "rgb(127 127 127 / 0.15)";
  if (GATES.has(name)) return `rgb(13 148 136 / ${clamp(v).toFixed(3)})`;
  const alpha = clamp(Math.abs(v) / scale).toFixed(3);
  return v >= 0 ? `rgb(220 38 38 / ${alpha})` : `rgb(37 99 235 / ${alpha})`;
}

/** Per value name, per cell: the largest |value| in this text (c has no fixed range). */
export function scalesOf(data) {
  const scales = {};
  for (const [name, rows] of Object.entries(data.values)) {
    scales[name] = data.units.map((_, k) => {
      if (name !== "c") return 1; // gates 0…1; g, n and h ±1
      const seen = rows.filter(Boolean).map((row) => Math.abs(row[k]));
      return Math.max(1e-6, ...seen);
    });
  }
  return scales;
}

/** Indices of the chars, cut into lines of at most `per`, and after each line break. */
function lines(chars, per) {
  const out = [[]];
  chars.forEach((ch, t) => {
    if (out.at(-1).length >= per) out.push([]);
    out.at(-1).push(t);
    if (ch === "\n" && t < chars.length - 1) out.push([]);
  });
  return out;
}

/** How many chars fit on a line of the strips box now. */
export function charsPerLine() {
  return Math.max(8, Math.floor(($("gates-strips").clientWidth - LABEL - 4) / CW));
}

/** The whole text with its strips, from g.data; the char spans go in g.spans. */
export function renderStrips(g) {
  const box = $("gates-strips");
  box.style.setProperty("--cw", `${CW}px`);
  box.style.setProperty("--label", `${LABEL}px`);
  const names = STRIPS[g.data.cell] ?? ["h"];
  g.perLine = charsPerLine();
  g.spans = [];
  g.marker = el("div", "gate-mark");
  g.marker.setAttribute("aria-hidden", "true");
  const blocks = lines(g.data.chars, g.perLine).map((line) => lineBlock(g, line, names));
  box.replaceChildren(...blocks);
  box.dataset.rows = names.join(",");
}

function lineBlock(g, line, names) {
  const block = el("div", "gate-line");
  const text = el("div", "gate-text");
  for (const t of line) {
    const ch = g.data.chars[t];
    const span = el("span", ch === "\n" ? "gate-ch nl" : "gate-ch", ch === "\n" ? "" : ch);
    if (g.data.values.h[t] === null) span.classList.add("unknown");
    span.dataset.t = String(t);
    span.tabIndex = -1;
    g.spans[t] = span;
    text.append(span);
  }
  block.append(text, strips(g, line, names));
  return block;
}

/** One canvas: per cell, per name, a row of cells shaded by value, labelled on the left. */
function strips(g, line, names) {
  const { units, values } = g.data;
  const canvas = el("canvas", "gate-canvas");
  const group = names.length * ROW + GAP;
  const [width, height] = [LABEL + line.length * CW, units.length * group];
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.ceil(width * dpr);
  canvas.height = Math.ceil(height * dpr);
  canvas.style.width = `${width}px`; // CSSOM, not a style attribute: allowed by the CSP
  canvas.style.height = `${height}px`;
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label",
    `${names.join(", ")} of cells ${units.join(", ")} for chars ${line[0]} to ${line.at(-1)}`);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.font = "9px ui-monospace, monospace";
  ctx.textBaseline = "middle";
  const ink = getComputedStyle($("gates-strips")).color;
  units.forEach((unit, k) => {
    names.forEach((name, r) => {
      const y = k * group + r * ROW;
      ctx.fillStyle = ink;
      ctx.fillText(`${name} ${unit}`, 2, y + ROW / 2);
      line.forEach((t, col) => {
        ctx.fillStyle = shade(name, values[name][t]?.[k] ?? null, g.scales[name][k]);
        ctx.fillRect(LABEL + col * CW, y, CW - 1, ROW - 1);
      });
    });
  });
  return canvas;
}

/** Make g.t the chosen char: the only one in the tab order, marked down its strips. */
export function markChosen(g) {
  const span = g.spans[g.t];
  if (!span) return;
  if (g.chosenSpan && g.chosenSpan !== span) {
    g.chosenSpan.tabIndex = -1;
    g.chosenSpan.removeAttribute("aria-current");
  }
  span.tabIndex = 0;
  span.setAttribute("aria-current", "true");
  g.chosenSpan = span;
  const block = span.closest(".gate-line");
  const canvas = block.querySelector("canvas");
  block.append(g.marker);
  g.marker.style.left = `${span.offsetLeft}px`;
  g.marker.style.top = `${span.offsetTop + span.offsetHeight}px`;
  g.marker.style.height = `${canvas.offsetHeight}px`;
}
