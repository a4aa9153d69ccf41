// Writing with the model: versions you can go back to, branching at any char, and keeping the text.
//
//   initWrite({ form, view, run, busy });   // from app.js; run(prompt, append) streams one request
//
// - Branch: with the confidence view on, click a char or press Enter on it: its alternatives open
//   as a menu; choosing one cuts the text there, puts that char in and generates on at once (the
//   server's prefix cache makes that start without re-reading the text).
// - Versions: every finished run is a version (its text, per-char probabilities, seed and
//   settings) in a small tree; Back/Forward, Ctrl+Z / Ctrl+Shift+Z (outside text fields) and the
//   list move between them, and restore each version's settings.
// - Keep: Download .txt; the last visit's text, settings and versions come back after a reload
//   (localStorage; "Forget" clears it); "Share link" puts prompt, seed and settings in the URL.

import { initBranch } from "./branch.js";
import { glyph } from "./confidence.js";
import { readSettings, writeSettings } from "./settings.js";

const KEY = "char-lstm.write.v1";
const MAX_VERSIONS = 30;
const $ = (id) => document.getElementById(id);

export function initWrite({ form, view, run, busy }) {
  const state = { versions: [], current: -1, nextId: 1, pending: null };

  /** The view's text as [char, logprob entry | null] pairs after the prompt. */
  function snapshot() {
    const chars = [];
    for (const node of view.root.childNodes) {
      if (node.classList?.contains("prompt-text")) continue;
      if (node.classList?.contains("ch")) chars.push([node.textContent, view.entries[Number(node.dataset.i)] ?? null]);
      else for (const ch of Array.from(node.textContent ?? "")) chars.push([ch, null]);
    }
    return { prompt: view.prompt, chars };
  }

  function render({ prompt, chars }) {
    view.reset(prompt);
    let i = 0;
    while (i < chars.length) {
      const shaded = chars[i][1] !== null;
      let j = i;
      while (j < chars.length && (chars[j][1] !== null) === shaded) j++;
      const part = chars.slice(i, j);
      view.append(part.map(([ch]) => ch).join(""), shaded ? part.map(([, e]) => e) : null);
      i = j;
    }
    document.dispatchEvent(new CustomEvent("write:rendered"));
  }

  function label(v) {
    const n = v.chars.length;
    const how = v.branch ? `branch at ${v.branch.at + 1}: ${glyph(v.branch.from)}→${glyph(v.branch.to)}` : v.parent ? "continued" : "new";
    return `v${v.id} · ${how} · ${n} chars · seed ${v.seed ?? "?"}`;
  }

  function showVersions() {
    const list = $("versions");
    const depth = (v) => (v.parent ? 1 + depth(state.versions.find((w) => w.id === v.parent) ?? {}) : 0);
    list.replaceChildren(
      ...state.versions.map((v, k) => {
        const item = document.createElement("li");
        const button = Object.assign(document.createElement("button"), { type: "button", className: "link", textContent: label(v) });
        button.style.setProperty("--depth", String(Math.min(depth(v), 6)));
        if (k === state.current) button.setAttribute("aria-current", "true");
        button.addEventListener("click", () => go(k));
        item.append(button);
        return item;
      }),
    );
    $("back").disabled = busy() || state.current <= 0;
    $("forward").disabled = busy() || state.current >= state.versions.length - 1;
    $("download").disabled = !view.text();
    $("versions-box").hidden = state.versions.length === 0;
  }

  function go(k) {
    if (busy() || k < 0 || k >= state.versions.length) return;
    state.current = k;
    const v = state.versions[k];
    render(v);
    writeSettings(form, v.settings);
    $("status").textContent = `Version ${v.id} of ${state.versions.length}.`;
    showVersions();
    save();
  }

  /** A run ended: what is on screen becomes a new version (child of the one it grew from). */
  document.addEventListener("write:finished", (e) => {
    const snap = snapshot();
    if (!snap.prompt && !snap.chars.length) return;
    const parent = e.detail.append ? state.versions[state.current]?.id ?? null : null;
    const version = { id: state.nextId++, parent, ...snap, seed: e.detail.seed, settings: readSettings(form), branch: state.pending };
    state.pending = null;
    state.versions.push(version);
    if (state.versions.length > MAX_VERSIONS) state.versions.shift();
    state.current = state.versions.length - 1;
    showVersions();
    save();
  });
  document.addEventListener("write:state", showVersions);

  initBranch({
    view,
    busy,
    snapshot,
    render,
    onBranch: (branch) => {
      state.pending = branch;
      run(view.text(), true);
    },
  });

  // ---- keeping the text -------------------------------------------------------------------------

  function save() {
    const data = { settings: readSettings(form), versions: state.versions, current: state.current, nextId: state.nextId };
    const current = state.versions[state.current];
    const plain = (v) => (v === current ? v : { ...v, chars: v.chars.map(([ch]) => [ch, null]) });
    // Over the quota (about 5 MB): older versions without their probabilities, then the current one alone.
    for (const attempt of [data, { ...data, versions: state.versions.map(plain) },
      { ...data, versions: current ? [current] : [], current: current ? 0 : -1 }]) {
      try {
        localStorage.setItem(KEY, JSON.stringify(attempt));
        return;
      } catch {
        // try a smaller form; storage refused altogether (private mode): the page works without it
      }
    }
  }

  let saving = null;
  function saveSoon() {
    clearTimeout(saving);
    saving = setTimeout(save, 300);
  }

  function restore() {
    let data = null;
    try {
      data = JSON.parse(localStorage.getItem(KEY) ?? "null");
    } catch {
      data = null;
    }
    if (!data) return false;
    state.versions = Array.isArray(data.versions) ? data.versions : [];
    state.current = Math.min(Number(data.current ?? -1), state.versions.length - 1);
    state.nextId = Number(data.nextId) || state.versions.length + 1;
    if (data.settings) writeSettings(form, data.settings);
    if (state.current >= 0) render(state.versions[state.current]);
    return true;
  }

  function forget() {
    try {
      localStorage.removeItem(KEY);
    } catch {
      // nothing stored
    }
    state.versions = [];
    state.current = -1;
    view.reset("");
    $("status").textContent = "Forgot the saved text, settings and versions.";
    showVersions();
  }

  function download() {
    const url = URL.createObjectURL(new Blob([view.text()], { type: "text/plain;charset=utf-8" }));
    const a = Object.assign(document.createElement("a"), { href: url, download: "char-lstm.txt" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  async function share() {
    const settings = readSettings(form);
    const query = new URLSearchParams(Object.entries(settings).filter(([, v]) => v !== "" && v !== null));
    const url = `${location.origin}${location.pathname}?${query}`;
    history.replaceState(null, "", url);
    try {
      await navigator.clipboard.writeText(url);
      $("status").textContent = "Link copied: it restores the prompt, seed and settings.";
    } catch {
      $("status").textContent = "The address bar now holds the link: it restores the prompt, seed and settings.";
    }
  }

  $("back").addEventListener("click", () => go(state.current - 1));
  $("forward").addEventListener("click", () => go(state.current + 1));
  $("download").addEventListener("click", download);
  $("forget").addEventListener("click", forget);
  $("share").addEventListener("click", share);
  document.addEventListener("keydown", (e) => {
    const typing = e.target.closest?.("textarea, input, select");
    if (typing || !(e.ctrlKey || e.metaKey)) return;
    const key = e.key.toLowerCase();
    if (key === "z" || key === "y") {
      e.preventDefault();
      go(state.current + (key === "y" || e.shiftKey ? 1 : -1));
    }
  });
  form.addEventListener("input", saveSoon); // typing: one save when it pauses

  restore();
  const query = new URLSearchParams(location.search); // a shared link wins over the last visit's settings
  if ([...query.keys()].length) writeSettings(form, Object.fromEntries(query));
  showVersions();
}
