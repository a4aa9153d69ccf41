// One generation run: POST /api/generate/stream for the form's settings, the text streamed into
// the output pane, speed, finish reason and seed shown, API errors beside the field they name.
//
//   await runOnce(page, prompt, append);   setState(page, "idle");   // from app.js
//
// `page` is app.js's state (form, view, limits, controller, seed); a run's own progress (its
// chars/s meter and finish reason) is a second object, `progress`.  A finished run announces
// itself as a `write:finished` event (write.js makes it a version).

import { appendText, resetView, viewText } from "./confidence.js";
import { $ } from "./dom.js";
import { buildRequest, clearErrors, fieldOf, showApiError, showError } from "./form.js";
import { measure, newMeter, readEvents, startStream } from "./sse.js";

const FINISH = {
  length: "length (max chars)",
  stop: "stop string",
  stopped: "stopped by you",
  error: "error",
};

/** The seed in a start or done event's data, as digits: past 2^53, a JS number would round it. */
const seedOf = (data) => /"seed"\s*:\s*(\d+)/.exec(data)?.[1] ?? null;

/** The page's run state on <body data-state> (idle, running, done, error); the buttons follow. */
export function setState(page, state) {
  document.body.dataset.state = state;
  const running = state === "running";
  $("generate").disabled = running;
  $("stop-button").disabled = !running;
  $("continue").disabled = running || !page.view.generated;
  $("copy").disabled = !viewText(page.view);
  document.dispatchEvent(new CustomEvent("write:state")); // write.js: versions and download follow
}

function showStats(meter, finish) {
  $("stat-chars").textContent = meter.count.toLocaleString();
  $("stat-rate").textContent = meter.rate === null ? "–" : Math.round(meter.rate).toLocaleString();
  $("stat-finish").textContent = finish;
}

/** Stream one request; `append` keeps the text on screen and adds to it (Continue). */
export async function runOnce(page, prompt, append) {
  const { form } = page;
  clearErrors(form);
  // Always: ticking the box later shades the text at once, and any char can be branched from.
  // It costs the server about 8% more CPU and the stream ~55× the bytes (126 vs 2.3 per char).
  const logprobs = page.limits.alternatives;
  const { json, errors } = buildRequest(form, prompt, logprobs, page.limits.maxSeed);
  if (Object.keys(errors).length) {
    for (const [field, message] of Object.entries(errors)) showError(form, field, message);
    return countRun();
  }
  const progress = { started: performance.now(), meter: newMeter(), finish: "error" };
  page.controller = new AbortController();
  page.seed = null;
  setState(page, "running");
  $("status").textContent = "Generating…";
  try {
    const response = await startStream(json, page.controller.signal);
    if (!response.ok) return await showApiError(form, response, prompt);
    if (!append) resetView(page.view, prompt); // only now: a refused request leaves the last text
    for await (const { event, data } of readEvents(response)) {
      if (!onEvent(page, progress, event, data)) break;
    }
    if (progress.finish === "error" && !document.querySelector("[data-error-for]:not([hidden])")) {
      showError(form, "", "The stream ended before the server said it was done.");
    }
  } catch (err) {
    if (err.name === "AbortError") progress.finish = "stopped";
    else showError(form, "", `Could not reach the server (${err.message}).`);
  } finally {
    endRun(page, progress, append);
  }
}

/** One event of the stream; false once it is an error (the stream is abandoned). */
function onEvent(page, progress, event, data) {
  if (event === "start") {
    page.seed = seedOf(data); // first, before any text: a run stopped early still shows its seed
    $("stat-seed").textContent = page.seed ?? "–";
  } else if (event === "message") {
    const chunk = JSON.parse(data);
    appendText(page.view, chunk.text, chunk.logprobs);
    measure(progress.meter, chunk.text ?? "");
    showStats(progress.meter, "…");
    followOutput();
  } else if (event === "done") {
    progress.finish = JSON.parse(data).finish_reason ?? "length";
    page.seed = seedOf(data) ?? page.seed;
  } else if (event === "error") {
    const error = JSON.parse(data).error ?? {};
    showError(page.form, fieldOf(error.param), error.message || "Generation failed.");
    return false;
  }
  return true;
}

/** The run is over (finished, stopped, refused or failed): stats, status line, a new version. */
function endRun(page, { started, meter, finish }, append) {
  page.controller = null;
  const said = FINISH[finish] ?? finish;
  showStats(meter, said);
  $("stat-seed").textContent = page.seed ?? "–";
  $("reuse-seed").hidden = page.seed === null;
  const ttfc = meter.first ? ` First char after ${Math.round(meter.first.at - started)} ms.` : "";
  $("status").textContent =
    finish === "error"
      ? "Failed: see the message above."
      : `Finished: ${said}, ${meter.count} chars.${ttfc}`;
  setState(page, finish === "error" ? "error" : "done");
  if (finish !== "error") {
    const detail = { seed: page.seed, append };
    document.dispatchEvent(new CustomEvent("write:finished", { detail }));
  }
  countRun();
}

/** Count finished runs on <body data-runs>: a watcher (a test, say) tells one run from the next. */
function countRun() {
  document.body.dataset.runs = String(Number(document.body.dataset.runs ?? 0) + 1);
}

/** Keep the newest text in sight, unless the reader has scrolled up to look at older text. */
function followOutput() {
  const out = $("output");
  if (out.scrollHeight - out.scrollTop - out.clientHeight < 80) out.scrollTop = out.scrollHeight;
}
