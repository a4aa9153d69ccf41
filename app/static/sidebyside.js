// Side by side: one prompt, one seed, two to four temperatures (or top-p values), streamed at once.
//
//   initSideBySide({ form, busy });   // from app.js
//
// One request per column, all in flight together (the server batches them); each column shows
// its own chars/s and finish.  A blank seed gets one random seed for all columns, so the only
// difference between them is the setting compared.  The same seed at the same setting gives the
// same text as a single run.

import { buildRequest, clearErrors, showApiError } from "./form.js";
import { readEvents } from "./sse.js";

const $ = (id) => document.getElementById(id);

/** "0.5, 0.8 1.2" → [0.5, 0.8, 1.2], or an error message. */
export function parseValues(text, what) {
  const values = String(text).split(/[\s,;]+/).filter(Boolean).map(Number);
  const [lo, hi] = what === "top_p" ? [0.01, 1] : [0, 5];
  if (values.length < 2 || values.length > 4) return { error: "Give 2 to 4 values, separated by commas." };
  if (values.some((v) => !Number.isFinite(v) || v < lo || v > hi)) return { error: `Each value must be from ${lo} to ${hi}.` };
  return { values };
}

/** A random seed below 2^63, as digits (past a JS number's exact range). */
export function randomSeed() {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt(hi & 0x7fffffff) << 32n) | BigInt(lo)).toString();
}

/** The request body for one column: `what` set to `value`, the seed spliced in as digits. */
export function columnBody(json, what, value, seed) {
  const body = json.replace(new RegExp(`"${what}":[^,}]+`), `"${what}":${value}`);
  return /"seed":/.test(body) ? body : `${body.slice(0, -1)},"seed":${seed}}`;
}

export function initSideBySide({ form, busy }) {
  const section = $("columns");
  const state = { controllers: [] };

  async function stream(column, body) {
    const out = column.querySelector(".column-text");
    const stats = column.querySelector(".column-stats");
    const controller = new AbortController();
    state.controllers.push(controller);
    let count = 0;
    let first = null;
    let rate = null;
    let finish = "error";
    try {
      const response = await fetch("api/generate/stream", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body,
        signal: controller.signal,
      });
      if (!response.ok) return await showApiError(form, response, "");
      for await (const { event, data } of readEvents(response)) {
        if (event === "message") {
          const text = JSON.parse(data).text ?? "";
          out.append(text);
          count += Array.from(text).length;
          first ??= { at: performance.now(), count };
          const secs = (performance.now() - first.at) / 1000;
          rate = secs > 0.05 ? (count - first.count) / secs : rate;
          stats.textContent = `${count} chars · ${rate === null ? "–" : Math.round(rate)} chars/s · …`;
        } else if (event === "done") {
          finish = JSON.parse(data).finish_reason ?? "length";
        } else if (event === "error") {
          break;
        }
      }
    } catch (err) {
      finish = err.name === "AbortError" ? "stopped" : "error";
    } finally {
      stats.textContent = `${count} chars · ${rate === null ? "–" : Math.round(rate)} chars/s · ${finish}`;
      column.dataset.finish = finish;
    }
  }

  async function compare() {
    if (busy() || state.controllers.length) return;
    clearErrors(form);
    const what = form.elements.compare_what.value;
    const parsed = parseValues(form.elements.compare.value, what);
    const errorBox = $("compare-error");
    errorBox.hidden = !parsed.error;
    errorBox.textContent = parsed.error ?? "";
    if (parsed.error) return;
    const { json, errors } = buildRequest(form, form.elements.prompt.value, 0);
    if (Object.keys(errors).length) return;
    const seed = form.elements.seed.value.trim() || randomSeed();
    section.hidden = false;
    section.dataset.seed = seed;
    $("columns-seed").textContent = seed;
    const grid = $("columns-grid");
    grid.replaceChildren();
    const columns = parsed.values.map((value) => {
      const column = document.createElement("article");
      column.className = "column";
      column.dataset.value = String(value);
      const head = Object.assign(document.createElement("h3"), { textContent: `${what === "top_p" ? "top-p" : "temperature"} ${value}` });
      const text = Object.assign(document.createElement("div"), { className: "column-text output" });
      text.append(Object.assign(document.createElement("span"), { className: "prompt-text", textContent: form.elements.prompt.value }));
      const stats = Object.assign(document.createElement("p"), { className: "column-stats stats", textContent: "waiting…" });
      column.append(head, text, stats);
      grid.append(column);
      return stream(column, columnBody(json, what, value, seed));
    });
    document.body.dataset.compare = "running";
    $("compare-stop").disabled = false;
    await Promise.all(columns);
    state.controllers = [];
    $("compare-stop").disabled = true;
    document.body.dataset.compare = "done";
  }

  $("compare-run").addEventListener("click", compare);
  $("compare-stop").addEventListener("click", () => state.controllers.forEach((c) => c.abort()));
  $("columns-close").addEventListener("click", () => {
    state.controllers.forEach((c) => c.abort());
    section.hidden = true;
  });
}
