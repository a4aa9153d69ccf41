// Writing with the model: versions you can go back to, branching at any char, and keeping the text.
//
//   initWrite({ form, view, run, busy });   // from app.js; run(prompt, append) streams one request
//
// - Branch: with the confidence view on, click a char or press Enter on it: its alternatives open
//   as a menu; choosing one cuts the text there, puts that char in and generates on at once (the
//   server's prefix cache makes that start without re-reading the text).  See branch.js.
// - Versions: every finished run is a version (its text, per-char probabilities, seed and
//   settings) in a small tree; Back/Forward, Ctrl+Z / Ctrl+Shift+Z (outside text fields) and the
//   list move between them, and restore each version's settings.
// - Keep: Download .txt; the last visit's text, settings and versions come back after a reload
//   (localStorage; "Forget" clears it); "Share link" puts prompt, seed and settings in the URL.
//   See keep.js.
//
// The state `w` holds the options, the versions, the current one's index and the branch that the
// next finished run records (`pending`).

import { initBranch } from "./branch.js";
import { appendText, glyph, resetView, viewText } from "./confidence.js";
import { $, el } from "./dom.js";
import { clear, download, load, save, shareLink } from "./keep.js";
import { readSettings, writeSettings } from "./settings.js";

const MAX_VERSIONS = 30;

export function initWrite({ form, view, run, busy }) {
  const w = { form, view, run, busy, versions: [], current: -1, nextId: 1, pending: null };
  w.saving = null; // the timer of a save that waits for typing to pause
  document.addEventListener("write:finished", (e) => addVersion(w, e.detail));
  document.addEventListener("write:state", () => showVersions(w));
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
    $("status").textContent = await shareLink(form);
  });
  document.addEventListener("keydown", (e) => undoKey(w, e));
  form.addEventListener("input", () => saveSoon(w)); // typing: one save when it pauses

  restore(w);
  const query = new URLSearchParams(location.search); // a shared link wins over the last visit
  if ([...query.keys()].length) writeSettings(form, Object.fromEntries(query));
  showVersions(w);
}

/** The view's text as [char, logprob entry | null] pairs after the prompt. */
function snapshot(view) {
  const chars = [];
  for (const node of view.root.childNodes) {
    if (node.classList?.contains("prompt-text")) continue;
    if (node.classList?.contains("ch")) {
      chars.push([node.textContent, view.entries[Number(node.dataset.i)] ?? null]);
    } else {
      for (const ch of Array.from(node.textContent ?? "")) chars.push([ch, null]);
    }
  }
  return { prompt: view.prompt, chars };
}

/** Show a snapshot again: runs of shaded chars go in with their entries, the rest as text. */
function render(view, { prompt, chars }) {
  resetView(view, prompt);
  let i = 0;
  while (i < chars.length) {
    const shaded = chars[i][1] !== null;
    let j = i;
    while (j < chars.length && (chars[j][1] !== null) === shaded) j++;
    const part = chars.slice(i, j);
    appendText(view, part.map(([ch]) => ch).join(""), shaded ? part.map(([, e]) => e) : null);
    i = j;
  }
  document.dispatchEvent(new CustomEvent("write:rendered"));
}

/** A run ended: what is on screen becomes a new version (child of the one it grew from). */
function addVersion(w, { seed, append }) {
  const snap = snapshot(w.view);
  if (!snap.prompt && !snap.chars.length) return;
  const parent = append ? (w.versions[w.current]?.id ?? null) : null;
  const settings = readSettings(w.form);
  w.versions.push({ id: w.nextId++, parent, ...snap, seed, settings, branch: w.pending });
  w.pending = null;
  if (w.versions.length > MAX_VERSIONS) w.versions.shift();
  w.current = w.versions.length - 1;
  showVersions(w);
  save(w);
}

function label(v) {
  const { branch } = v;
  let how = v.parent ? "continued" : "new";
  if (branch) how = `branch at ${branch.at + 1}: ${glyph(branch.from)}→${glyph(branch.to)}`;
  return `v${v.id} · ${how} · ${v.chars.length} chars · seed ${v.seed ?? "?"}`;
}

/** How many versions up the tree `v` grew from (its indent in the list). */
function depth(versions, v) {
  return v.parent ? 1 + depth(versions, versions.find((u) => u.id === v.parent) ?? {}) : 0;
}

function showVersions(w) {
  const items = w.versions.map((v, k) => {
    const button = Object.assign(el("button", "link", label(v)), { type: "button" });
    button.style.setProperty("--depth", String(Math.min(depth(w.versions, v), 6)));
    if (k === w.current) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => go(w, k));
    const item = el("li");
    item.append(button);
    return item;
  });
  $("versions").replaceChildren(...items);
  $("back").disabled = w.busy() || w.current <= 0;
  $("forward").disabled = w.busy() || w.current >= w.versions.length - 1;
  $("download").disabled = !viewText(w.view);
  $("versions-box").hidden = w.versions.length === 0;
}

/** Show version `k` and restore its settings. */
function go(w, k) {
  if (w.busy() || k < 0 || k >= w.versions.length) return;
  w.current = k;
  const v = w.versions[k];
  render(w.view, v);
  writeSettings(w.form, v.settings);
  $("status").textContent = `Version ${v.id} of ${w.versions.length}.`;
  showVersions(w);
  save(w);
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
}

function forget(w) {
  clear();
  w.versions = [];
  w.current = -1;
  resetView(w.view, "");
  $("status").textContent = "Forgot the saved text, settings and versions.";
  showVersions(w);
}
