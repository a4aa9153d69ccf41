// One prompt and seed, every loaded model at once (the Compare view): one
// POST /api/generate/stream per model, all in flight together, each streaming into its own
// column with its chars/s and finish.  The prompt, seed and temperature are the same for all,
// so what differs is the model.  Cancel aborts them all.
//
//   runAll(s);   cancelAll(s);   // from compare.js: s.models, s.controllers

import { $, el } from "./dom.js";
import { rangeOf, readLimits } from "./limits.js";
import { randomSeed } from "./sidebyside.js";
import { measure, newMeter, readEvents, startStream } from "./sse.js";
import { CELL_NAMES } from "./views.js";

export function cancelAll(s) {
  s.controllers.forEach((c) => c.abort());
}

/** The checked settings, or {error}. The seed stays digits: it may pass a JS number's range. */
function settings() {
  const { maxSeed } = readLimits();
  const seedText = $("cmp-seed").value.trim();
  if (seedText && (!/^\d+$/.test(seedText) || BigInt(seedText) >= maxSeed)) {
    return { error: `Seed: a whole number from 0 to ${(maxSeed - 1n).toLocaleString()}.` };
  }
  const input = $("cmp-max");
  const { min, max } = rangeOf(input);
  const maxChars = Number(input.value);
  if (!Number.isInteger(maxChars) || maxChars < min || maxChars > max) {
    return { error: `Max chars: a whole number from ${min} to ${max.toLocaleString()}.` };
  }
  const temperature = Number(document.getElementById("temperature")?.value);
  const body = { prompt: $("cmp-prompt").value, max_chars: maxChars };
  if (Number.isFinite(temperature)) body.temperature = temperature;
  return { body, seed: seedText || randomSeed(maxSeed) };
}

export async function runAll(s) {
  if (s.controllers.length || !s.models?.length) return;
  const { body, seed, error } = settings();
  $("cmp-error").textContent = error ?? "";
  $("cmp-error").hidden = !error;
  if (error) return;
  const view = $("compare-view");
  const json = JSON.stringify(body);
  const grid = $("cmp-columns");
  grid.replaceChildren();
  view.dataset.run = "running";
  $("cmp-progress").hidden = false;
  $("cmp-cancel").disabled = false;
  $("cmp-status").textContent = `${s.models.length} models writing from one prompt, seed ${seed}…`;
  const runs = s.models.map((m) => {
    const column = newColumn(m, body.prompt);
    grid.append(column);
    const one = `${json.slice(0, -1)},"model":${JSON.stringify(m.name)},"seed":${seed}}`;
    return stream(s, column, one);
  });
  const finishes = await Promise.all(runs);
  s.controllers = [];
  $("cmp-progress").hidden = true;
  $("cmp-cancel").disabled = true;
  const stopped = finishes.includes("stopped");
  $("cmp-status").textContent = stopped ? `Cancelled (seed ${seed}).` : `Done: seed ${seed}.`;
  view.dataset.run = stopped ? "cancelled" : "done";
}

function newColumn(m, prompt) {
  const column = el("article", "column");
  column.dataset.model = m.name;
  column.append(el("h4", "", `${m.name} · ${CELL_NAMES[m.cell] ?? m.cell ?? ""}`));
  const text = el("div", "column-text output");
  text.append(el("span", "prompt-text", prompt));
  column.append(text, el("p", "column-stats stats", "waiting…"));
  return column;
}

/** Stream one model into its column; resolves to its finish ("length", "stop", "stopped", …). */
async function stream(s, column, body) {
  const out = column.querySelector(".column-text");
  const stats = column.querySelector(".column-stats");
  const controller = new AbortController();
  s.controllers.push(controller);
  const meter = newMeter();
  const line = (finish) => {
    const rate = meter.rate === null ? "–" : Math.round(meter.rate).toLocaleString();
    stats.textContent = `${meter.count} chars · ${rate} chars/s · ${finish}`;
  };
  let finish = "error";
  try {
    const response = await startStream(body, controller.signal);
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      const message = data.error?.message ?? `The server answered ${response.status}.`;
      out.append(el("p", "error", message));
      return finish;
    }
    for await (const { event, data } of readEvents(response)) {
      if (event === "message") {
        const text = JSON.parse(data).text ?? "";
        out.append(text);
        measure(meter, text);
        line("…");
      } else if (event === "done") {
        finish = JSON.parse(data).finish_reason ?? "length";
      } else if (event === "error") {
        out.append(el("p", "error", JSON.parse(data).error?.message ?? "The stream failed."));
        break;
      }
    }
  } catch (err) {
    finish = err.name === "AbortError" ? "stopped" : "error";
  } finally {
    line(finish);
    column.dataset.finish = finish;
  }
  return finish;
}
