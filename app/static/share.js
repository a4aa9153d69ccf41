// A link that shares the text, not just the settings: the form's settings go in the query
// (?prompt=…&seed=…&temperature=…) and the versions' texts, deflated, in the fragment (#v=…).
// A browser never sends the fragment to the server, so its length is no server's concern.
// Whoever opens the link sees the text and its versions at once, without pressing Generate;
// probabilities do not travel (the confidence view scores such text on demand: rescore.js).
//
//   status = await shareLink(w);        // w: write.js's state (form, versions, current)
//   const shared = await readShared();  // {versions, current} from the address, or null
//
// What is read from a link is checked field by field and only ever shown as text.

import { readSettings } from "./settings.js";

const PREFIX = "#v=";
const BUDGET = 32 * 1024; // fragment chars: past this, fewer versions travel (chat apps cut links)

async function deflate(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  return new Response(stream).text();
}

function base64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unbase64url(text) {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** The versions as they travel: text as one string, no probabilities. */
const plain = (v) => ({
  id: v.id,
  parent: v.parent,
  prompt: v.prompt,
  text: v.chars.map(([ch]) => ch).join(""),
  seed: v.seed,
  settings: v.settings,
  branch: v.branch,
});

/** All the versions, else the current one's line back to its root, else the current alone. */
function choices(versions, current) {
  const now = versions[current];
  const line = [];
  for (let v = now; v; v = versions.find((u) => u.id === v.parent)) line.unshift(v);
  return [versions, line, [now]];
}

async function fragment(w) {
  if (!w.versions[w.current]) return "";
  for (const list of choices(w.versions, w.current)) {
    const current = list.indexOf(w.versions[w.current]);
    const packed = base64url(await deflate(JSON.stringify({ versions: list.map(plain), current })));
    if (packed.length <= BUDGET) return PREFIX + packed;
  }
  return "";
}

/** Put the settings and the text in the address and copy it; the status line to show. */
export async function shareLink(w) {
  const settings = Object.entries(readSettings(w.form)).filter(([, v]) => v !== "" && v !== null);
  const text = await fragment(w);
  const url = `${location.origin}${location.pathname}?${new URLSearchParams(settings)}${text}`;
  history.replaceState(null, "", url);
  const what = text ? "the text, its versions and settings" : "the prompt, seed and settings";
  const long = w.versions.length && !text ? " (the text is too long to carry)" : "";
  try {
    await navigator.clipboard.writeText(url);
    return `Link copied: it restores ${what}${long}.`;
  } catch {
    return `The address bar now holds the link: it restores ${what}${long}.`;
  }
}

const isText = (x) => typeof x === "string";
const isSettings = (s) => s && typeof s === "object" && Object.values(s).every(isText);

/** One version from a link, or null when any field is not what shareLink wrote. */
function checked(v) {
  const seed = v?.seed === null || (isText(v?.seed) && /^\d+$/.test(v.seed));
  const b = v?.branch;
  const branch = b === null || (Number.isInteger(b?.at) && isText(b.from) && isText(b.to));
  const ok = Number.isInteger(v?.id) && (v.parent === null || Number.isInteger(v.parent));
  if (!(ok && seed && branch && isText(v.prompt) && isText(v.text) && isSettings(v.settings))) {
    return null;
  }
  const { id, parent, prompt, settings } = v;
  return { id, parent, prompt, chars: Array.from(v.text, (ch) => [ch, null]), seed: v.seed,
    settings, branch: b };
}

/** The versions a link carries ({versions, current}), or null; the fragment leaves the address. */
export async function readShared() {
  if (!location.hash.startsWith(PREFIX)) return null;
  const packed = location.hash.slice(PREFIX.length);
  history.replaceState(null, "", `${location.pathname}${location.search}`); // a reload: no repeat
  try {
    const data = JSON.parse(await inflate(unbase64url(packed)));
    const versions = (Array.isArray(data.versions) ? data.versions : []).map(checked);
    if (!versions.length || versions.includes(null) || !versions[data.current]) return null;
    return { versions, current: data.current };
  } catch {
    return null; // cut short by a chat app, or not a link of ours
  }
}
