// Side by side: one prompt, one seed, a few temperatures (or top-p values), streamed at once.
//
//   initSideBySide({ form, busy, limits });   // from app.js; limits from limits.js
//
// One request per column, all in flight together (the server batches them); each column shows
// its own chars/s and finish.  A blank seed gets one random seed for all columns, so the only
// difference between them is the setting compared.  The same seed at the same setting gives the
// same text as a single run.  How many columns, and each setting's range, come from the server.
// The state `s` is the options plus the columns' AbortControllers while they run.

import { $, el } from "./dom.js";
import { buildRequest, clearErrors, showApiError } from "./form.js";
import { rangeOf } from "./limits.js";
import { measure, newMeter, readEvents, startStream } from "./sse.js";

/** "0.5, 0.8 1.2" → {values: [0.5, 0.8, 1.2]}, or {error}: `columns` and `range` are {min, max}. */
export function parseValues(text, range, columns) {
  const values = String(text).split(/[\s,;]+/).filter(Boolean).map(Number);
  const { min: lo, max: hi } = range;
  if (values.length < columns.min || values.length > columns.max) {
    return { error: `Give ${columns.min} to ${columns.max} values, separated by commas.` };
  }
  if (values.some((v) => !Number.isFinite(v) || v < lo || v > hi)) {
    return { error: `Each value must be from ${lo} to ${hi}.` };
  }
  return { values };
}

/** A random seed below `maxSeed` (a BigInt), as digits (past a JS number's exact range). */
export function randomSeed(maxSeed) {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return (((BigInt(hi) << 32n) | BigInt(lo)) % maxSeed).toString();
}

/** The request body for one column: `what` set to `value`, the seed spliced in as digits. */
export function columnBody(json, what, value, seed) {
  const body = json.replace(new RegExp(`"${what}":[^,}]+`), `"${what}":${value}`);
  return /"seed":/.test(body) ? body : `${body.slice(0, -1)},"seed":${seed}}`;
}

export function initSideBySide({ form, busy, limits }) {
  const s = { form, busy, limits, section: $("columns"), controllers: [] };
  $("compare-run").addEventListener("click", () => compare(s));
  $("compare-stop").addEventListener("click", () => stopAll(s));
  $("columns-close").addEventListener("click", () => {
    stopAll(s);
    s.section.hidden = true;
  });
}

function stopAll(s) {
  s.controllers.forEach((c) => c.abort());
}

/** The range a compared setting may take: the API's for temperature, the control's for top-p. */
function rangeFor(s, what) {
  const control = rangeOf(s.form.elements[what]);
  return what === "temperature" ? { ...control, max: s.limits.maxTemperature } : control;
}

/** Check the values, then one column per value, all streaming at once. */
async function compare(s) {
  if (s.busy() || s.controllers.length) return;
  const { form } = s;
  clearErrors(form);
  const what = form.elements.compare_what.value;
  const parsed = parseValues(form.elements.compare.value, rangeFor(s, what), s.limits.columns);
  const errorBox = $("compare-error");
  errorBox.hidden = !parsed.error;
  errorBox.textContent = parsed.error ?? "";
  if (parsed.error) return;
  const { json, errors } = buildRequest(form, form.elements.prompt.value, 0, s.limits.maxSeed);
  if (Object.keys(errors).length) return;
  const seed = form.elements.seed.value.trim() || randomSeed(s.limits.maxSeed);
  s.section.hidden = false;
  s.section.dataset.seed = seed;
  $("columns-seed").textContent = seed;
  const grid = $("columns-grid");
  grid.replaceChildren();
  const runs = parsed.values.map((value) => {
    const column = newColumn(what, value, form.elements.prompt.value);
    grid.append(column);
    return stream(s, column, columnBody(json, what, value, seed));
  });
  document.body.dataset.compare = "running";
  $("compare-stop").disabled = false;
  await Promise.all(runs);
  s.controllers = [];
  $("compare-stop").disabled = true;
  document.body.dataset.compare = "done";
}

function newColumn(what, value, prompt) {
  const column = el("article", "column");
  column.dataset.value = String(value);
  const head = el("h3", "", `${what === "top_p" ? "top-p" : "temperature"} ${value}`);
  const text = el("div", "column-text output");
  text.append(el("span", "prompt-text", prompt));
  column.append(head, text, el("p", "column-stats stats", "waiting…"));
  return column;
}

/** Stream one column's request into it; its stats line ends with the finish reason. */
async function stream(s, column, body) {
  const out = column.querySelector(".column-text");
  const stats = column.querySelector(".column-stats");
  const controller = new AbortController();
  s.controllers.push(controller);
  const meter = newMeter();
  const line = (finish) => {
    const rate = meter.rate === null ? "–" : Math.round(meter.rate);
    stats.textContent = `${meter.count} chars · ${rate} chars/s · ${finish}`;
  };
  let finish = "error";
  try {
    const response = await startStream(body, controller.signal);
    if (!response.ok) return await showApiError(s.form, response, "");
    for await (const { event, data } of readEvents(response)) {
      if (event === "message") {
        const text = JSON.parse(data).text ?? "";
        out.append(text);
        measure(meter, text);
        line("…");
      } else if (event === "done") {
        finish = JSON.parse(data).finish_reason ?? "length";
      } else if (event === "error") {
        break;
      }
    }
  } catch (err) {
    finish = err.name === "AbortError" ? "stopped" : "error";
  } finally {
    line(finish);
    column.dataset.finish = finish;
  }
}
