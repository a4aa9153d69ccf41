// A read of the text (Score, Inside, Copied) shows that it runs and can be stopped: the run
// button says what it is doing and waits, a Cancel button (or Esc) aborts the request, the
// previous result is marked stale, and a bar fills over the time the read should take.  The
// server answers a read in one piece, not as a stream, so the bar is an estimate: the text's
// length over the speed this tab measured on its last long read of that kind (a first guess
// before any), held short of full until the answer comes; the line beside it says so.
//
//   const data = await startRead(r, { path, body, chars, kind, doing, out });  // AbortError if
//   cancelRead(r);                                                             // cancelled
//
// `r` is read.js's state: this module keeps the request's AbortController there (`controller`),
// the measured speeds (`rates`, chars/s by kind) and the bar's timer; `r.label` (read.js's) is
// what the run button says when idle.

import { apiFetch } from "./api.js";
import { $ } from "./dom.js";

const FIRST_GUESS = 1500; // chars/s before any read was timed: a 3M-parameter model, busy machine
const TIMED_FROM = 2000; // shorter reads are mostly latency: they do not set the speed

/** POST the read; its JSON, or an Error with the server's message and `param` (AbortError when
 *  cancelled). */
export async function startRead(r, { path, body, chars, kind, doing, out }) {
  r.controller?.abort();
  const controller = new AbortController();
  r.controller = controller;
  const started = performance.now();
  const expected = Math.max(0.3, chars / (r.rates[kind] ?? FIRST_GUESS)); // seconds
  begin(r, doing, chars, out);
  clearInterval(r.timer);
  r.timer = setInterval(() => tick(started, expected), 120);
  tick(started, expected);
  try {
    const response = await apiFetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.error?.message ?? `The server answered ${response.status}.`);
      throw Object.assign(error, { param: data.error?.param ?? null });
    }
    const secs = (performance.now() - started) / 1000;
    if (chars >= TIMED_FROM) r.rates[kind] = chars / secs;
    return data;
  } finally {
    if (r.controller === controller) end(r, out);
  }
}

/** Stop the read in flight (its caller sees an AbortError; `said`: it tells "Cancelled."). */
export function cancelRead(r, said = true) {
  r.cancelled = said && Boolean(r.controller);
  r.controller?.abort();
}

function begin(r, doing, chars, out) {
  r.cancelled = false;
  const run = $("read-run");
  const refocus = document.activeElement === run;
  run.disabled = true;
  run.textContent = `${doing}…`;
  $("read-cancel").hidden = false;
  if (refocus) $("read-cancel").focus(); // the keyboard's place: a disabled button drops focus
  $("read").dataset.state = "running";
  out.classList.add("stale"); // the last result stays in sight, dimmed, until the new one comes
  out.setAttribute("aria-busy", "true");
  $("read-summary").textContent = `${doing} ${chars.toLocaleString()} chars`; // CSS adds " …"
  $("read-progress").hidden = $("read-eta").hidden = false;
}

/** The bar: elapsed over expected, never full before the answer; the line: time left, roughly. */
function tick(started, expected) {
  const secs = (performance.now() - started) / 1000;
  const bar = $("read-progress");
  bar.value = Math.min(0.95, secs / expected);
  const left = expected - secs;
  $("read-eta").textContent =
    left > 0.5 ? `about ${Math.ceil(left)} s left (estimated)` : "taking longer than estimated…";
}

function end(r, out) {
  clearInterval(r.timer);
  r.controller = null;
  const run = $("read-run");
  const cancel = $("read-cancel");
  const refocus = document.activeElement === cancel;
  run.disabled = false;
  run.textContent = r.label;
  cancel.hidden = true;
  $("read-progress").hidden = $("read-eta").hidden = true;
  $("read-progress").value = 0;
  out.classList.remove("stale");
  out.removeAttribute("aria-busy");
  if (refocus) run.focus(); // the Cancel button is gone: keep the keyboard's place
}
