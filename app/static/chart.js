// Small SVG charts, built with DOM calls: no markup strings and no style attributes (the CSP
// forbids them); geometry goes in SVG attributes, looks in style.css classes.
//
//   lineChart({ points: [[k, v], ...], xLog: true, yLog: true, xLabel, yLabel, label,
//               marks: [{ x: 37, text: "span" }, { y: 0.01, text: "1%" }] })
//   scatter({ series: [{ name: "f", points: [[left, right], ...] }], xLabel, yLabel, label })
//   svg("circle", { cx: 3, cy: 4, r: 2, class: "dot" })
//
// Log axes run over whole decades; linear ones over 1-2-5 steps.  Each chart is role="img" with
// an aria-label saying what it shows.

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 190;
const PAD = { left: 46, right: 12, top: 12, bottom: 38 };

/** A new SVG element with these attributes (and text). */
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const decade = (k) => Number(`1e${k}`);

/** "1", "0.01", "1e-5", "1,000": short tick labels. */
function tickLabel(v) {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1) return Number(v.toPrecision(6)).toLocaleString();
  return Math.abs(v) >= 1e-3 ? String(Number(v.toPrecision(4))) : v.toExponential(0);
}

/** 1, 2 or 5 times a power of ten, the first at least `raw`. */
function niceStep(raw) {
  const pow = decade(Math.floor(Math.log10(raw)));
  return [1, 2, 5, 1e1].map((m) => m * pow).find((s) => s >= raw) ?? raw;
}

/** The axis over `values` from pixel `from` to `to`: at(v) → pixel, and its ticks. */
function axis(values, log, from, to) {
  const t = log ? values.map(Math.log10) : values;
  let lo = Math.min(...t);
  let hi = Math.max(...t);
  let ticks;
  if (log) {
    [lo, hi] = [Math.floor(lo), Math.max(Math.ceil(hi), Math.floor(lo) + 1)];
    const every = Math.ceil((hi - lo + 1) / 6);
    ticks = [];
    for (let k = lo; k <= hi; k += every) ticks.push(decade(k));
  } else {
    if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
    const step = niceStep((hi - lo) / 4);
    [lo, hi] = [Math.floor(lo / step) * step, Math.ceil(hi / step) * step];
    ticks = [];
    for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  }
  const at = (v) => from + (((log ? Math.log10(v) : v) - lo) / (hi - lo)) * (to - from);
  return { at, ticks };
}

function frame(label) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  root.setAttribute("aria-label", label);
  root.append(svg("title", {}, label));
  return root;
}

/** Both axes with ticks, grid lines and titles. */
function drawAxes(root, x, y, xLabel, yLabel) {
  const [x0, x1, y0, y1] = [PAD.left, W - PAD.right, H - PAD.bottom, PAD.top];
  for (const v of x.ticks) {
    root.append(svg("line", { x1: x.at(v), x2: x.at(v), y1: y0, y2: y1, class: "grid" }));
    root.append(svg("text", { x: x.at(v), y: y0 + 13, class: "tick", "text-anchor": "middle" },
      tickLabel(v)));
  }
  for (const v of y.ticks) {
    root.append(svg("line", { x1: x0, x2: x1, y1: y.at(v), y2: y.at(v), class: "grid" }));
    root.append(svg("text", { x: x0 - 4, y: y.at(v) + 3, class: "tick", "text-anchor": "end" },
      tickLabel(v)));
  }
  root.append(svg("path", { d: `M${x0},${y1}V${y0}H${x1}`, class: "axis" }));
  root.append(svg("text", { x: (x0 + x1) / 2, y: H - 4, class: "axis-title",
    "text-anchor": "middle" }, xLabel));
  root.append(svg("text", { x: 11, y: (y0 + y1) / 2, class: "axis-title", "text-anchor": "middle",
    transform: `rotate(-90 11 ${(y0 + y1) / 2})` }, yLabel));
}

/** A line through `points` ([x, y] pairs; points a log axis cannot show are left out). */
export function lineChart({ points, xLog = false, yLog = false, xLabel, yLabel, label,
  marks = [] }) {
  const ok = points.filter(([a, b]) => Number.isFinite(a) && Number.isFinite(b) &&
    (!xLog || a > 0) && (!yLog || b > 0));
  const root = frame(label);
  if (!ok.length) {
    root.append(svg("text", { x: W / 2, y: H / 2, class: "tick", "text-anchor": "middle" },
      "nothing to draw"));
    return root;
  }
  const markX = marks.filter((m) => m.x !== undefined).map((m) => m.x);
  const markY = marks.filter((m) => m.y !== undefined && (!yLog || m.y > 0)).map((m) => m.y);
  const x = axis([...ok.map((p) => p[0]), ...markX], xLog, PAD.left, W - PAD.right);
  const y = axis([...ok.map((p) => p[1]), ...markY], yLog, H - PAD.bottom, PAD.top);
  drawAxes(root, x, y, xLabel, yLabel);
  for (const m of marks) {
    if (m.x !== undefined) {
      const at = x.at(m.x);
      root.append(svg("line", { x1: at, x2: at, y1: H - PAD.bottom, y2: PAD.top, class: "mark" }));
      root.append(svg("text", { x: at + 3, y: PAD.top + 9, class: "mark-label" }, m.text));
    } else if (m.y !== undefined && (!yLog || m.y > 0)) {
      const at = y.at(m.y);
      root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: at, y2: at, class: "mark" }));
      root.append(svg("text", { x: W - PAD.right - 2, y: at - 3, class: "mark-label",
        "text-anchor": "end" }, m.text));
    }
  }
  const d = ok.map(([a, b], k) => `${k ? "L" : "M"}${x.at(a).toFixed(1)},${y.at(b).toFixed(1)}`);
  root.append(svg("path", { d: d.join(""), class: "line" }));
  return root;
}

/** Dots in the unit square, one class per series (`dot g-<name>`), with a legend. */
export function scatter({ series, xLabel, yLabel, label }) {
  const root = frame(label);
  const x = axis([0, 1], false, PAD.left, W - PAD.right);
  const y = axis([0, 1], false, H - PAD.bottom, PAD.top);
  x.ticks = y.ticks = [0, 0.5, 1];
  drawAxes(root, x, y, xLabel, yLabel);
  // x + y ≤ 1: a gate cannot be saturated both ways more than all of the time
  root.append(svg("line", { x1: x.at(0), y1: y.at(1), x2: x.at(1), y2: y.at(0), class: "guide" }));
  series.forEach(({ name, points }, k) => {
    const group = svg("g", { "data-series": name });
    for (const [a, b] of points) {
      group.append(svg("circle", { cx: x.at(a).toFixed(1), cy: y.at(b).toFixed(1), r: 2.6,
        class: `dot g-${name}` }));
    }
    root.append(group);
    const ly = PAD.top + 8 + k * 13;
    root.append(svg("circle", { cx: W - PAD.right - 30, cy: ly - 3, r: 3.5,
      class: `dot g-${name}` }));
    root.append(svg("text", { x: W - PAD.right - 22, y: ly, class: "tick" }, name));
  });
  return root;
}
