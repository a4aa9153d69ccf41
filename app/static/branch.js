// Branch at any char: with the confidence view on, click a char or press Enter on it; its
// alternatives open as a menu (↑/↓, Enter, Esc); choosing one cuts the text there, puts that char
// in, and hands over to `onBranch`, which generates on at once.
//
//   initBranch({ view, busy, snapshot, render, onBranch });   // from write.js

import { glyph, percent } from "./confidence.js";

const $ = (id) => document.getElementById(id);

export function initBranch({ view, busy, snapshot, render, onBranch }) {
  const menu = $("branch-menu");

  function openMenu(span) {
    const entry = view.entries[Number(span.dataset.i)];
    if (!entry || busy()) return;
    const items = (entry.top ?? []).filter(([ch]) => ch !== entry.char);
    menu.replaceChildren(Object.assign(document.createElement("p"), { className: "menu-title", textContent: `Instead of ${glyph(entry.char)}:` }));
    for (const [ch, lp] of items) {
      const item = Object.assign(document.createElement("button"), { type: "button", className: "menu-item" });
      item.setAttribute("role", "menuitem");
      item.dataset.char = ch;
      item.append(Object.assign(document.createElement("span"), { className: "glyph", textContent: glyph(ch) }), ` ${percent(Math.exp(lp))}`);
      item.addEventListener("click", () => choose(span, entry, ch, lp));
      menu.append(item);
    }
    menu.hidden = false; // first: a hidden menu has no offsetParent to place it in
    const box = span.getBoundingClientRect();
    const wrap = menu.offsetParent?.getBoundingClientRect() ?? { left: 0, top: 0 };
    menu.style.left = `${Math.max(0, Math.min(box.left - wrap.left, wrap.width - menu.offsetWidth))}px`;
    menu.style.top = `${box.bottom - wrap.top + 4}px`;
    menu.anchor = span;
    view.hideTip();
    menu.querySelector(".menu-item")?.focus();
  }

  function closeMenu(refocus) {
    if (menu.hidden) return;
    menu.hidden = true;
    if (refocus) menu.anchor?.focus();
  }

  /** Cut the text at the char, put `ch` in its place and generate on from there. */
  function choose(span, entry, ch, lp) {
    closeMenu(false);
    const snap = snapshot();
    const at = Array.prototype.indexOf.call(view.root.querySelectorAll(".ch"), span);
    const index = charIndex(snap, span);
    if (index < 0 || at < 0) return;
    const chars = snap.chars.slice(0, index);
    chars.push([ch, { char: ch, logprob: lp, top: entry.top }]);
    render({ prompt: snap.prompt, chars });
    onBranch({ at: index, from: entry.char, to: ch });
  }

  /** Index of a char span among the generated chars (plain text counts too). */
  function charIndex(snap, span) {
    let k = 0;
    for (const node of view.root.childNodes) {
      if (node.classList?.contains("prompt-text")) continue;
      if (node === span) return k;
      k += node.classList?.contains("ch") ? 1 : Array.from(node.textContent ?? "").length;
    }
    return -1;
  }

  view.root.addEventListener("click", (e) => {
    const span = e.target.closest?.(".ch");
    if (span && view.enabled()) openMenu(span);
  });
  view.root.addEventListener("keydown", (e) => {
    const span = e.target.closest?.(".ch");
    if (span && e.key === "Enter" && view.enabled()) {
      e.preventDefault();
      e.stopPropagation();
      openMenu(span);
    }
  });
  menu.addEventListener("keydown", (e) => {
    const items = [...menu.querySelectorAll(".menu-item")];
    const at = items.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
    if (e.key === "Escape") {
      e.preventDefault();
      closeMenu(true);
    } else if (e.key in moves && items.length) {
      e.preventDefault();
      items[(moves[e.key] + items.length) % items.length].focus();
    } else if (e.key === "Tab") closeMenu(false);
  });
  document.addEventListener("click", (e) => {
    if (!menu.hidden && !menu.contains(e.target) && e.target !== menu.anchor) closeMenu(false);
  });
}
