// The versions list under the output: one button per version, indented by how it grew (new,
// continued, a branch, a side-by-side column kept), the current one marked; Back, Forward,
// Download and Forget follow the page's state.  Versions from a shared link join the list.
//
//   showVersions(w, pick);   // w: write.js's state; pick(k) shows version k
//   adopt(w, shared);        // shared: share.js's {versions, current}; renumbered after ours

import { glyph, viewText } from "./confidence.js";
import { $, el } from "./dom.js";

export const MAX_VERSIONS = 30;

function label(v) {
  const { branch } = v;
  let how = v.parent ? "continued" : v.column ? `kept from ${v.column}` : "new";
  if (branch) how = `branch at ${branch.at + 1}: ${glyph(branch.from)}→${glyph(branch.to)}`;
  return `v${v.id} · ${how} · ${v.chars.length} chars · seed ${v.seed ?? "?"}`;
}

/** How many versions up the tree `v` grew from (its indent in the list). */
function depth(versions, v) {
  return v.parent ? 1 + depth(versions, versions.find((u) => u.id === v.parent) ?? {}) : 0;
}

export function showVersions(w, pick) {
  const items = w.versions.map((v, k) => {
    const button = Object.assign(el("button", "link", label(v)), { type: "button" });
    button.style.setProperty("--depth", String(Math.min(depth(w.versions, v), 6)));
    if (k === w.current) button.setAttribute("aria-current", "true");
    button.addEventListener("click", () => pick(k));
    const item = el("li");
    item.append(button);
    return item;
  });
  $("versions").replaceChildren(...items);
  $("back").disabled = w.busy() || w.current <= 0;
  $("forward").disabled = w.busy() || w.current >= w.versions.length - 1;
  $("download").disabled = !viewText(w.view);
  $("forget").disabled = w.busy(); // a run still streaming would save again after Forget
  $("versions-box").hidden = w.versions.length === 0;
}

/** Versions from a shared link join ours (new ids, the tree kept); theirs becomes current. */
export function adopt(w, { versions, current }) {
  const ids = new Map(versions.map((v, k) => [v.id, w.nextId + k]));
  const renumber = (v) => ({ ...v, id: ids.get(v.id), parent: ids.get(v.parent) ?? null });
  const joined = versions.map(renumber);
  w.nextId += versions.length;
  w.versions.push(...joined);
  const now = joined[current];
  w.versions = w.versions.slice(-MAX_VERSIONS);
  if (!w.versions.includes(now)) w.versions.push(now); // a very long link: keep what it showed
  w.current = w.versions.indexOf(now);
}
