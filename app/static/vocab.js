// The picked model's vocabulary: its chars listed under the model card (#vocab), and the prompt's
// chars it does not know, marked while the person types (#prompt-unknown), before any request,
// with a button that takes them out.  The server still checks every prompt (a 422 naming them).
//
//   listChars(model);  checkPrompt(page);  removeUnknown(page);
//   // model: an entry of GET /api/models (its `chars`); page: app.js's state (form, models)

import { glyph } from "./confidence.js";
import { $, el } from "./dom.js";
import { excerpts } from "./form.js";

/** The model picked in the form, from the list GET /api/models gave. */
const picked = (page) => page.models.find((m) => m.name === page.form.elements.model.value);

/** The chars of `model` (undefined: none listed), each as a glyph, under the card. */
export function listChars(model) {
  const chars = Array.isArray(model?.chars) ? model.chars : [];
  $("vocab").hidden = !chars.length;
  $("vocab-count").textContent = String(chars.length);
  $("vocab-chars").replaceChildren(
    ...chars.map((ch) => {
      const item = el("span", "glyph", glyph(ch));
      item.title = `U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
      return item;
    }),
  );
}

/** The indices of the prompt's chars that the picked model does not know (none: no model). */
function unknownAt(page, chars) {
  const known = picked(page)?.chars;
  if (!Array.isArray(known)) return [];
  const set = new Set(known);
  return chars.flatMap((ch, i) => (set.has(ch) ? [] : [i]));
}

/** Mark what the model cannot read in the prompt, or hide the note when it reads it all. */
export function checkPrompt(page) {
  const chars = Array.from(page.form.elements.prompt.value);
  const hits = unknownAt(page, chars);
  const box = $("prompt-unknown");
  box.hidden = !hits.length;
  if (!hits.length) return;
  const distinct = [...new Set(hits.map((i) => chars[i]))];
  const named = distinct.slice(0, 8).map((ch) => `“${glyph(ch)}”`).join(" ");
  const more = distinct.length > 8 ? ` and ${distinct.length - 8} more` : "";
  const s = hits.length === 1 ? "" : "s";
  $("unknown-text").textContent =
    `${hits.length} char${s} the model does not know: ${named}${more}. Generate would refuse them.`;
  $("unknown-excerpts").replaceChildren(...excerpts(chars, hits).childNodes);
}

/** Take the unknown chars out of the prompt (one click), and put the caret back in it. */
export function removeUnknown(page) {
  const prompt = page.form.elements.prompt;
  const chars = Array.from(prompt.value);
  const drop = new Set(unknownAt(page, chars));
  const removed = drop.size;
  prompt.value = chars.filter((_, i) => !drop.has(i)).join("");
  prompt.dispatchEvent(new Event("input", { bubbles: true })); // the counter, this note, a save
  prompt.focus();
  $("status").textContent = `Removed ${removed} unknown char${removed === 1 ? "" : "s"}.`;
}
