// Side by side: one prompt, one seed, a few temperatures (or top-p values), streamed at once.
//
//   initSideBySide({ form, busy, limits });   // from app.js; limits from limits.js
//
// One request per column, all in flight together (the server batches them); each column shows
// its own chars/s and finish, and is first-class (columns.js: kept as a version, branched from,
// shaded by confidence, downloaded).  A blank seed gets one random seed for all columns, so the
// only difference between them is the setting compared.  The same seed at the same setting gives
// the same text as a single run.  How many columns, and each setting's range, come from the
// server.  A column runs at exactly the value its heading names; a setting it cannot compare
// (from an old link, say) is an error, never a mislabelled run.  A request the server refuses
// (a prompt with chars the model does not know, say) is one message, beside the field it names.
// The state `s` is the options plus the columns and their AbortControllers while they run.

import { addChunk, endColumn, newColumn } from "./columns.js";
import { setConfidence } from "./confidence.js";
import { $ } from "./dom.js";
import { buildRequest, clearErrors, errorOf, fieldOf, showError } from "./form.js";
import { rangeOf } from "./limits.js";
import { readSettings } from "./settings.js";
import { readEvents, startStream } from "./sse.js";

/** What a column may vary: the request field, and its name in a heading. */
export const COMPARED = { temperature: "temperature", top_p: "top-p" };

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
  if (!(what in COMPARED)) throw new Error(`cannot compare ${what}`);
  const field = new RegExp(`"${what}":(null|[-+.\\deE]+)`);
  if (!field.test(json)) throw new Error(`the request has no ${what}`);
  const body = json.replace(field, `"${what}":${JSON.stringify(Number(value))}`);
  return /"seed":/.test(body) ? body : `${body.slice(0, -1)},"seed":${seed}}`;
}

export function initSideBySide({ form, busy, limits }) {
  const s = { form, busy, limits, section: $("columns"), columns: [], controllers: [] };
  $("compare-run").addEventListener("click", () => compare(s));
  $("compare-stop").addEventListener("click", () => stopAll(s));
  $("columns-close").addEventListener("click", () => {
    stopAll(s);
    s.section.hidden = true;
  });
  $("confidence").addEventListener("change", (e) => {
    for (const c of s.columns) setConfidence(c.view, e.target.checked);
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

/** The values to compare, or an error message for the box under the button. */
function check(s) {
  const what = s.form.elements.compare_what.value;
  if (!(what in COMPARED)) return { error: "Pick what to compare: temperatures or top-p values." };
  const parsed = parseValues(s.form.elements.compare.value, rangeFor(s, what), s.limits.columns);
  return { what, ...parsed };
}

/** Check the values, then one column per value, all streaming at once. */
async function compare(s) {
  if (s.busy() || s.controllers.length) return;
  const { form, limits } = s;
  clearErrors(form);
  const { what, values, error } = check(s);
  $("compare-error").hidden = !error;
  $("compare-error").textContent = error ?? "";
  if (error) return;
  const prompt = form.elements.prompt.value;
  const { json, errors } = buildRequest(form, prompt, limits.alternatives, limits.maxSeed);
  for (const [field, message] of Object.entries(errors)) showError(form, field, message);
  if (Object.keys(errors).length) return;
  const seed = form.elements.seed.value.trim() || randomSeed(limits.maxSeed);
  const settings = { ...readSettings(form), seed };
  s.section.hidden = false;
  s.section.dataset.seed = seed;
  $("columns-seed").textContent = seed;
  s.columns = values.map((value, k) => {
    const ran = { ...settings, [what]: String(value) }; // the column's settings, as a version's
    return newColumn({ what, label: COMPARED[what], value, prompt, seed, settings: ran }, k);
  });
  $("columns-grid").replaceChildren(...s.columns.map((c) => c.root));
  document.body.dataset.compare = "running";
  $("compare-stop").disabled = false;
  const refused = await Promise.all(
    s.columns.map((c) => stream(s, c, columnBody(json, what, c.spec.value, seed))),
  );
  s.controllers = [];
  $("compare-stop").disabled = true;
  report(s, refused, prompt);
  document.body.dataset.compare = "done";
}

/** Each refusal's message once, beside its field; columns that never ran go when all did. */
function report(s, refused, prompt) {
  const seen = new Set();
  for (const error of refused.filter(Boolean)) {
    if (seen.has(error.message)) continue;
    seen.add(error.message);
    showError(s.form, fieldOf(error.param), error.message, prompt);
  }
  if (refused.every(Boolean)) {
    s.section.hidden = true;
    s.columns = [];
  }
}

/** Stream one column's request into it; null, or the server's refusal ({message, param}). */
async function stream(s, c, body) {
  const controller = new AbortController();
  s.controllers.push(controller);
  let finish = "error";
  let said = null;
  try {
    const response = await startStream(body, controller.signal);
    if (!response.ok) {
      said = "not run: see the message above";
      return await errorOf(response);
    }
    for await (const { event, data } of readEvents(response)) {
      if (event === "message") {
        const chunk = JSON.parse(data);
        addChunk(c, chunk.text ?? "", chunk.logprobs);
      } else if (event === "done") {
        finish = JSON.parse(data).finish_reason ?? "length";
      } else if (event === "error") {
        said = `error: ${JSON.parse(data).error?.message ?? "generation failed"}`;
        break;
      }
    }
  } catch (err) {
    finish = err.name === "AbortError" ? "stopped" : "error";
    if (finish === "error") said = `error: could not reach the server (${err.message})`;
  } finally {
    endColumn(c, finish, said ?? finish);
  }
  return null;
}
