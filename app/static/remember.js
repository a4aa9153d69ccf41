// "What the model remembers" in the Gates view: for the chosen char, how much each earlier char
// moves its prediction (POST /api/influence: ‖∂ log p(xₜ) / ∂ e(xₜ₋ₖ)‖), shown over the text
// before it as a heat map and as a curve over k on log scales.  Asked for a moment after the
// choice settles (stepping with ←/→ fires no request per key); a newer choice or Cancel aborts it.
//
//   askInfluence(m, { text, position, model });   cancelInfluence(m);
//
// The state `m` holds the pending timer and the AbortController of the request in flight.

import { lineChart } from "./chart.js";
import { $, el } from "./dom.js";
import { postJson, shown } from "./views.js";

const SETTLE_MS = 350; // wait this long after the last step before asking
const DECADES = 3; // the heat map's shading spans this many decades of influence

export const newMemory = () => ({ timer: null, controller: null });

function busy(m, on) {
  $("memory-progress").hidden = !on;
  $("memory-cancel").disabled = !on;
  $("gates-memory").dataset.state = on ? "running" : "done";
}

export function cancelInfluence(m, message) {
  clearTimeout(m.timer);
  m.controller?.abort();
  m.controller = null;
  busy(m, false);
  if (message) $("memory-summary").textContent = message;
}

/** Ask for the influence on `position` of `text` once the choice has settled. */
export function askInfluence(m, { text, position, model }) {
  cancelInfluence(m);
  $("memory-error").hidden = true;
  if (position < 1) {
    $("memory-text").replaceChildren();
    $("memory-curve").replaceChildren();
    $("memory-summary").textContent = "The first char has nothing before it to remember.";
    $("gates-memory").dataset.state = "done";
    return;
  }
  $("memory-summary").textContent = `Measuring what the prediction of char ${position} uses…`;
  busy(m, true);
  m.timer = setTimeout(() => fetchInfluence(m, text, position, model), SETTLE_MS);
}

async function fetchInfluence(m, text, position, model) {
  m.controller = new AbortController();
  try {
    const data = await postJson("api/influence", { text, position, model }, m.controller.signal);
    showInfluence(Array.from(text), data);
    busy(m, false);
  } catch (err) {
    if (err.name === "AbortError") return;
    busy(m, false);
    $("memory-summary").textContent = "";
    $("memory-error").textContent = err.message;
    $("memory-error").hidden = false;
  }
}

/** The context shaded by influence (log scale), the predicted char outlined, and the curve. */
function showInfluence(chars, data) {
  const curve = data.influence; // k = 1 first
  const top = Math.max(...curve, 1e-30);
  const out = $("memory-text");
  out.replaceChildren();
  for (let at = data.start; at < data.position; at += 1) {
    const v = curve[data.position - at - 1];
    const span = el("span", chars[at] === "\n" ? "cell nl" : "cell", chars[at]);
    const alpha = v > 0 ? Math.max(0, 1 + Math.log10(v / top) / DECADES) : 0;
    span.style.backgroundColor = `rgb(124 58 237 / ${alpha.toFixed(3)})`; // CSSOM: CSP-safe
    span.title = `${data.position - at} back: ${v.toPrecision(3)}`;
    out.append(span);
  }
  out.append(el("span", "cell predicted", chars[data.position]));
  const k1 = curve[0] || 1;
  const points = curve.map((v, k) => [k + 1, v / k1]);
  const reaches = data.span <= curve.length;
  const marks = [{ y: 0.01, text: "1%" }];
  if (reaches) marks.push({ x: data.span, text: `${data.span}` });
  $("memory-curve").replaceChildren(lineChart({
    points, xLog: true, yLog: true, marks,
    xLabel: "k: chars back", yLabel: "influence ÷ nearest",
    label: `Influence on char ${data.position} by distance k, relative to the nearest char`,
  }));
  const p = Math.exp(data.logprob);
  const span = reaches
    ? `falls below 1% of the nearest char's after ${data.span} chars`
    : `stays above 1% of the nearest char's over all ${curve.length} chars before it`;
  $("memory-summary").textContent =
    `Predicting ‘${shown(data.char)}’ (char ${data.position}, p = ${p.toFixed(3)}): ` +
    `the influence ${span}.`;
}
