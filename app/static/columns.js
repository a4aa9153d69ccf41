// One side-by-side column, first-class like the output above: its heading names the setting and
// value it ran at, its text is a confidence view of its own (shaded while the box is on, a
// tooltip per char, ←/→ along the chars), and it can be kept as a version (then continued),
// branched from (click a char, or Enter on it: it is kept and the char's alternatives open in
// the output), or downloaded.
//
//   const c = newColumn(spec, k);  grid.append(c.root);   // spec: {what, label, value, prompt,
//   addChunk(c, text, logprobs);  endColumn(c, finish);   //        seed, settings}
//
// The state `c` is the spec, the column's elements, its view and its chars/s meter.

import {
  appendText, confidenceOn, createView, resetView, setConfidence, viewText,
} from "./confidence.js";
import { $, el } from "./dom.js";
import { download } from "./keep.js";
import { measure, newMeter } from "./sse.js";
import { snapshot } from "./snapshot.js";

const button = (text, title) =>
  Object.assign(el("button", "", text), { type: "button", title, disabled: true });

/** The column for `spec`, the k-th of its run (its tooltip needs an id of its own). */
export function newColumn(spec, k) {
  const root = el("article", "column");
  root.dataset.what = spec.what;
  root.dataset.value = String(spec.value);
  const text = el("div", "column-text output");
  text.setAttribute("aria-label", `Text at ${spec.label} ${spec.value}`);
  const tip = Object.assign(el("div", "tip"), { id: `column-tip-${k}`, hidden: true });
  tip.setAttribute("role", "tooltip");
  const wrap = el("div", "output-wrap");
  wrap.append(text, tip);
  const stats = el("p", "column-stats stats", "waiting…");
  const keep = button("Keep as a version", "Show it above as a version: continue or branch it");
  const save = button("Download .txt", "Save this column's text as a .txt file");
  const tools = el("div", "column-tools");
  tools.append(keep, save);
  root.append(el("h3", "", `${spec.label} ${spec.value}`), wrap, stats, tools);
  const view = createView(text, tip);
  resetView(view, spec.prompt);
  setConfidence(view, $("confidence").checked);
  const c = { spec, root, view, stats, tools, meter: newMeter() };
  keep.addEventListener("click", () => keepColumn(c, null));
  save.addEventListener("click", () => download(viewText(view), fileName(spec)));
  text.addEventListener("click", (e) => branchFrom(c, e));
  text.addEventListener("keydown", (e) => e.key === "Enter" && branchFrom(c, e));
  return c;
}

const fileName = ({ what, value }) => `char-lstm-${what}-${value}.txt`;

/** One chunk of the stream (its logprob entries shade it); the stats line follows. */
export function addChunk(c, text, logprobs) {
  appendText(c.view, text, logprobs);
  measure(c.meter, text);
  statsLine(c, "…");
}

function statsLine(c, finish) {
  const rate = c.meter.rate === null ? "–" : Math.round(c.meter.rate);
  c.stats.textContent = `${c.meter.count} chars · ${rate} chars/s · ${finish}`;
}

/** The column's run ended (`finish`: length, stop, stopped, error…); its tools wake up. */
export function endColumn(c, finish, said = finish) {
  statsLine(c, said);
  c.root.dataset.finish = finish;
  for (const b of c.tools.querySelectorAll("button")) b.disabled = !c.view.generated;
}

/** Keep the column as a version (write.js); `at`: a char to branch at, by its entry index. */
function keepColumn(c, at) {
  const { prompt, chars } = snapshot(c.view);
  const { seed, settings, label, value } = c.spec;
  const column = `${label} ${value}`;
  const detail = { prompt, chars, seed, settings, column, at };
  document.dispatchEvent(new CustomEvent("write:keep", { detail }));
}

/** Click or Enter on a shaded char of a finished column: keep it and branch there. */
function branchFrom(c, e) {
  const span = e.target.closest?.(".ch");
  if (!span || !confidenceOn(c.view) || !c.root.dataset.finish) return;
  e.preventDefault();
  e.stopPropagation(); // the branch menu it opens above would take this click as one outside it
  keepColumn(c, Number(span.dataset.i));
}
