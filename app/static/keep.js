// Keeping the text: the last visit's text, settings and versions in localStorage, the view's
// own settings (the confidence box), and a .txt download.  A link that shares the text is
// share.js's.
//
//   save(w);  const data = load();  clear();      // w: write.js's state (versions, current, ...)
//   keepView({ confidence: true });  loadView();  download(text);

import { readSettings } from "./settings.js";

const KEY = "char-lstm.write.v1";
const VIEW = "char-lstm.view.v1";

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

/** Forget the text, settings, versions and view settings this browser keeps. */
export function clear() {
  try {
    localStorage.removeItem(KEY);
    localStorage.removeItem(VIEW);
  } catch {
    // nothing stored
  }
}

/** The view's settings ({confidence}), kept apart from the text: they are small and always fit. */
export function keepView(settings) {
  try {
    localStorage.setItem(VIEW, JSON.stringify(settings));
  } catch {
    // no storage: the box starts unticked next time
  }
}

export function loadView() {
  try {
    return JSON.parse(localStorage.getItem(VIEW) ?? "null") ?? {};
  } catch {
    return {};
  }
}

export function download(text, name = "char-lstm.txt") {
  const url = URL.createObjectURL(new Blob([text], { type: "text/plain;charset=utf-8" }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
