// Small DOM helpers every module of the page shares: find an element by id, make one with a class
// and text.  Text goes in as textContent, never as HTML.
//
//   import { $, el } from "./dom.js";   $("output");  el("span", "glyph", "↵")

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** A new <tag> with `className` (if any) and `text` (if given) as its text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
