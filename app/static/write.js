// Writing with the model: versions you can go back to, branching at any char, and keeping the text.
//
//   initWrite({ form, view, run, busy, limits });   // from app.js; run(prompt, append) streams
//
// - Branch: with the confidence view on, click a char or press Enter on it: its alternatives open
//   as a menu; choosing one cuts the text there, puts that char in and generates on at once (the
//   server's prefix cache makes that start without re-reading the text).  See branch.js.
// - Versions: every finished run is a version (its text, per-char probabilities, seed and
//   settings) in a small tree; Back/Forward, Ctrl+Z / Ctrl+Shift+Z (outside text fields) and the
//   list move between them, and restore each version's settings.  A side-by-side column can be
//   kept as one (a `write:keep` event).  See versions.js.
// - Keep: Download .txt; the last visit's text, settings and versions come back after a reload
//   (localStorage, keep.js); "Share link" puts the settings and the versions' texts in the address
//   (share.js); "Forget" clears what is kept, the address, the form and the API key.
// - Text without probabilities (from a link, or kept without them) is scored when the confidence
//   view is on (rescore.js).
//
// The state `w` holds the options, the versions, the current one's index, the branch that the
// next finished run records (`pending`) and the timer of a save that waits for typing to pause.

import { forgetKey } from "./api.js";
import { initBranch } from "./branch.js";
import { resetView, viewText } from "./confidence.js";
import { $ } from "./dom.js";
import { clear, download, load, save } from "./keep.js";
import { lacksEntries, scoreChars } from "./rescore.js";
import { readSettings, writeSettings } from "./settings.js";
import { readShared, shareLink } from "./share.js";
import { render as show, snapshot } from "./snapshot.js";
import { adopt, MAX_VERSIONS, showVersions } from "./versions.js";

export function initWrite({ form, view, run, busy, limits }) {
  const w = { form, view, run, busy, limits, versions: [], current: -1, nextId: 1, pending: null };
  w.saving = null;
  document.addEventListener("write:finished", (e) => addVersion(w, e.detail));
  document.addEventListener("write:state", () => list(w));
  document.addEventListener("write:keep", (e) => keepColumn(w, e.detail));
  $("confidence").addEventListener("change", () => shade(w));
  initBranch({
    view,
    busy,
    snapshot: () => snapshot(view),
    render: (snap) => render(view, snap),
    onBranch: (branch) => {
      w.pending = branch;
      run(viewText(view), true);
    },
  });
  $("back").addEventListener("click", () => go(w, w.current - 1));
  $("forward").addEventListener("click", () => go(w, w.current + 1));
  $("download").addEventListener("click", () => download(viewText(view)));
  $("forget").addEventListener("click", () => forget(w));
  $("share").addEventListener("click", async () => {
    $("status").textContent = await shareLink(w);
  });
  document.addEventListener("keydown", (e) => undoKey(w, e));
  form.addEventListener("input", () => saveSoon(w)); // typing: one save when it pauses

  restore(w);
  const query = new URLSearchParams(location.search); // a shared link wins over the last visit
  if ([...query.keys()].length) writeSettings(form, Object.fromEntries(query));
  list(w);
  readShared().then((shared) => shared && showShared(w, shared));
}

const list = (w) => showVersions(w, (k) => go(w, k));

/** Show a snapshot in the output; the page's buttons follow (app.js). */
function render(view, snap) {
  show(view, snap);
  document.dispatchEvent(new CustomEvent("write:rendered"));
}

/** A run ended: what is on screen becomes a new version (child of the one it grew from). */
function addVersion(w, { seed, append, column = null }) {
  const snap = snapshot(w.view);
  if (!snap.prompt && !snap.chars.length) return;
  const parent = append ? (w.versions[w.current]?.id ?? null) : null;
  const settings = readSettings(w.form);
  const branch = w.pending;
  w.versions.push({ id: w.nextId++, parent, ...snap, seed, settings, branch, column });
  w.pending = null;
  if (w.versions.length > MAX_VERSIONS) w.versions.shift();
  w.current = w.versions.length - 1;
  list(w);
  save(w);
}

/** A side-by-side column becomes a version, ready to continue; `at`: branch at that char now. */
function keepColumn(w, { prompt, chars, seed, settings, column, at = null }) {
  if (w.busy()) return;
  writeSettings(w.form, settings);
  render(w.view, { prompt, chars });
  w.pending = null;
  addVersion(w, { seed, append: false, column });
  $("status").textContent = `Kept the ${column} column as version ${w.nextId - 1}.`;
  const span = at === null ? null : w.view.root.querySelector(`.ch[data-i="${at}"]`);
  span?.focus();
  span?.click(); // the char's alternatives open, as if it were clicked here
}

/** Show version `k` and restore its settings. */
function go(w, k) {
  if (w.busy() || k < 0 || k >= w.versions.length) return;
  w.current = k;
  const v = w.versions[k];
  render(w.view, v);
  writeSettings(w.form, v.settings);
  $("status").textContent = `Version ${v.id} of ${w.versions.length}.`;
  list(w);
  save(w);
  shade(w);
}

/** Ctrl+Z / Ctrl+Shift+Z (or Ctrl+Y) outside text fields: back and forward through versions. */
function undoKey(w, e) {
  const typing = e.target.closest?.("textarea, input, select");
  if (typing || !(e.ctrlKey || e.metaKey)) return;
  const key = e.key.toLowerCase();
  if (key === "z" || key === "y") {
    e.preventDefault();
    go(w, w.current + (key === "y" || e.shiftKey ? 1 : -1));
  }
}

function saveSoon(w) {
  clearTimeout(w.saving);
  w.saving = setTimeout(() => save(w), 300);
}

/** The last visit's versions, settings and text, if this browser kept them. */
function restore(w) {
  const data = load();
  if (!data) return;
  w.versions = Array.isArray(data.versions) ? data.versions : [];
  w.current = Math.min(Number(data.current ?? -1), w.versions.length - 1);
  w.nextId = Number(data.nextId) || w.versions.length + 1;
  if (data.settings) writeSettings(w.form, data.settings);
  if (w.current >= 0) render(w.view, w.versions[w.current]);
  shade(w);
}

/** A shared link's versions: shown at once, no Generate needed. */
function showShared(w, shared) {
  adopt(w, shared);
  go(w, w.current);
  $("status").textContent = "Showing the text the link shared, with its versions.";
}

/** With the confidence view on, score the current version's chars that lack probabilities. */
async function shade(w) {
  const v = w.versions[w.current];
  if (!$("confidence").checked || w.busy() || !lacksEntries(v)) return;
  $("status").textContent = "Scoring the text for the confidence view…";
  const model = v.settings?.model || w.form.elements.model.value;
  const { alternatives: top, maxScoreChars: maxChars } = w.limits;
  try {
    const chars = await scoreChars(v, { model, top, maxChars });
    if (w.versions[w.current] !== v || w.busy()) return; // moved on meanwhile
    v.chars = chars;
    render(w.view, v);
    save(w);
    $("status").textContent = "Scored the text for the confidence view.";
  } catch (err) {
    $("status").textContent = `Could not score the text for the confidence view: ${err.message}`;
  }
}

/** Forget everything kept: storage, the shared link in the address, the form, the API key. */
function forget(w) {
  if (w.busy()) return;
  Object.assign(w, { versions: [], current: -1, pending: null });
  history.replaceState(null, "", location.pathname);
  w.form.reset();
  for (const input of w.form.elements) {
    input.dispatchEvent(new Event("input")); // labels and counters; not bubbling: no save
    if (input.type === "checkbox") input.dispatchEvent(new Event("change"));
  }
  resetView(w.view, "");
  list(w);
  forgetKey();
  clearTimeout(w.saving); // a save still waiting (typing, a restore) would write it all back
  clear(); // last: whatever the events above kept is dropped too
  document.dispatchEvent(new CustomEvent("write:forgot"));
  $("status").textContent = "Forgot the saved text, settings, versions and API key.";
}
