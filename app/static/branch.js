// Branch at any char: with the confidence view on, click a char or press Enter on it; its
// alternatives open as a menu (↑/↓, Enter, Esc); choosing one cuts the text there, puts that char
// in, and hands over to `onBranch`, which generates on at once.  Focus lands on the new char.
//
//   initBranch({ view, busy, snapshot, render, onBranch });   // from write.js
//
// The state `b` is the options plus the menu element and the char it was opened on (`anchor`).

import { confidenceOn, glyph, hideTip, percent } from "./confidence.js";
import { $, el } from "./dom.js";

export function initBranch({ view, busy, snapshot, render, onBranch }) {
  const b = { view, busy, snapshot, render, onBranch, menu: $("branch-menu"), anchor: null };
  view.root.addEventListener("click", (e) => {
    const span = e.target.closest?.(".ch");
    if (span && confidenceOn(view)) openMenu(b, span);
  });
  view.root.addEventListener("keydown", (e) => {
    const span = e.target.closest?.(".ch");
    if (span && e.key === "Enter" && confidenceOn(view)) {
      e.preventDefault();
      e.stopPropagation();
      openMenu(b, span);
    }
  });
  b.menu.addEventListener("keydown", (e) => onMenuKey(b, e));
  document.addEventListener("click", (e) => {
    if (!b.menu.hidden && !b.menu.contains(e.target) && e.target !== b.anchor) closeMenu(b, false);
  });
}

/** The char's alternatives as menu items, the menu placed under the char, the first focused. */
function openMenu(b, span) {
  const { view, menu } = b;
  const entry = view.entries[Number(span.dataset.i)];
  if (!entry || b.busy()) return;
  menu.replaceChildren(el("p", "menu-title", `Instead of ${glyph(entry.char)}:`));
  for (const [ch, lp] of (entry.top ?? []).filter(([alt]) => alt !== entry.char)) {
    const item = Object.assign(el("button", "menu-item"), { type: "button" });
    item.setAttribute("role", "menuitem");
    item.dataset.char = ch;
    item.append(el("span", "glyph", glyph(ch)), ` ${percent(Math.exp(lp))}`);
    item.addEventListener("click", () => choose(b, span, entry, ch, lp));
    menu.append(item);
  }
  menu.hidden = false; // first: a hidden menu has no offsetParent to place it in
  const box = span.getBoundingClientRect();
  const wrap = menu.offsetParent?.getBoundingClientRect() ?? { left: 0, top: 0 };
  const left = Math.min(box.left - wrap.left, wrap.width - menu.offsetWidth);
  menu.style.left = `${Math.max(0, left)}px`;
  menu.style.top = `${box.bottom - wrap.top + 4}px`;
  b.anchor = span;
  hideTip(view);
  menu.querySelector(".menu-item")?.focus();
}

function closeMenu(b, refocus) {
  if (b.menu.hidden) return;
  b.menu.hidden = true;
  if (refocus) b.anchor?.focus();
}

/** ↑/↓/Home/End move through the items, Esc closes (back to the char), Tab leaves. */
function onMenuKey(b, e) {
  const items = [...b.menu.querySelectorAll(".menu-item")];
  const at = items.indexOf(document.activeElement);
  const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
  if (e.key === "Escape") {
    e.preventDefault();
    closeMenu(b, true);
  } else if (e.key in moves && items.length) {
    e.preventDefault();
    items[(moves[e.key] + items.length) % items.length].focus();
  } else if (e.key === "Tab") closeMenu(b, false);
}

/** Cut the text at the char, put `ch` in its place and generate on from there. */
function choose(b, span, entry, ch, lp) {
  closeMenu(b, false);
  const snap = b.snapshot();
  const at = Array.prototype.indexOf.call(b.view.root.querySelectorAll(".ch"), span);
  const index = charIndex(b.view, span);
  if (index < 0 || at < 0) return;
  const chars = snap.chars.slice(0, index);
  chars.push([ch, { char: ch, logprob: lp, top: entry.top }]);
  b.render({ prompt: snap.prompt, chars });
  // The menu that had focus is gone: keyboard focus goes to the branch point, the new char.
  [...b.view.root.querySelectorAll(".ch")].at(-1)?.focus();
  b.onBranch({ at: index, from: entry.char, to: ch });
}

/** Index of a char span among the generated chars (plain text counts too). */
function charIndex(view, span) {
  let k = 0;
  for (const node of view.root.childNodes) {
    if (node.classList?.contains("prompt-text")) continue;
    if (node === span) return k;
    k += node.classList?.contains("ch") ? 1 : Array.from(node.textContent ?? "").length;
  }
  return -1;
}
