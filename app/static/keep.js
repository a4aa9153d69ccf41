// Keeping the text: the last visit's text, settings and versions in localStorage, a .txt
// download, and a link that restores the prompt, seed and settings.
//
//   save(w);  const data = load();  clear();      // w: write.js's state (versions, current, ...)
//   download(text);  await shareLink(form);       // shareLink resolves to the status line to show

import { readSettings } from "./settings.js";

const KEY = "char-lstm.write.v1";

/** Store the form's settings and the versions; over the quota, store less rather than nothing. */
export function save(w) {
  const data = {
    settings: readSettings(w.form),
    versions: w.versions,
    current: w.current,
    nextId: w.nextId,
  };
  const current = w.versions[w.current];
  const plain = (v) => (v === current ? v : { ...v, chars: v.chars.map(([ch]) => [ch, null]) });
  // Over the quota (about 5 MB): older versions without their probabilities, then the current
  // one alone.
  const attempts = [
    data,
    { ...data, versions: w.versions.map(plain) },
    { ...data, versions: current ? [current] : [], current: current ? 0 : -1 },
  ];
  for (const attempt of attempts) {
    try {
      localStorage.setItem(KEY, JSON.stringify(attempt));
      return;
    } catch {
      // try a smaller form; storage refused altogether (private mode): the page works without it
    }
  }
}

/** What save() stored, or null (nothing stored, unreadable, or no storage at all). */
export function load() {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? "null");
  } catch {
    return null;
  }
}

export function clear() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing stored
  }
}

export function download(text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: "char-lstm.txt" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Put the form's settings in the address and copy it; the status line to show. */
export async function shareLink(form) {
  const settings = Object.entries(readSettings(form)).filter(([, v]) => v !== "" && v !== null);
  const url = `${location.origin}${location.pathname}?${new URLSearchParams(settings)}`;
  history.replaceState(null, "", url);
  try {
    await navigator.clipboard.writeText(url);
    return "Link copied: it restores the prompt, seed and settings.";
  } catch {
    return "The address bar now holds the link: it restores the prompt, seed and settings.";
  }
}
