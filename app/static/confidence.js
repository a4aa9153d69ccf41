// The output pane: the prompt (muted) then the generated text, and the confidence view.
//
//   const view = createView(outputEl, tipEl);
//   resetView(view, "ROMEO:");  appendText(view, "But soft", logprobEntries | null);
//
// `view` is a plain object (root, tip, prompt, generated, entries, ...); the functions below read
// and change it.  With logprob entries each char becomes a <span class="ch"> shaded by its
// probability (CSS reads --p); hovering or focusing one shows the model's top alternatives in a
// tooltip.  The chars form one tab stop (roving tabindex): ←/→ move between them, Home/End jump,
// Esc hides.  Everything from the model goes in as text (textContent / Text nodes), never HTML.

import { el } from "./dom.js";

const GLYPHS = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍" };

/** A char as it can be seen in a tooltip: whitespace gets a visible symbol. */
export function glyph(ch) {
  return GLYPHS[ch] ?? ch;
}

/** A probability as a short percentage. */
export function percent(p) {
  if (p >= 0.9995) return "100%";
  if (p < 0.001) return "<0.1%";
  return `${(p * 100).toFixed(p < 0.1 ? 1 : 0)}%`;
}

/** The view's state over the pane `root` and its tooltip `tip`, with the listeners wired. */
export function createView(root, tip) {
  const view = {
    root,
    tip,
    entries: [], // logprob entries, indexed by each span's data-i
    generated: "", // every generated char, in order, shaded or not
    prompt: "",
    tail: null, // the Text node that plain (un-shaded) text is appended to
    rover: null, // the one char span in the tab order
    current: null, // the char span whose tooltip is showing
  };
  root.addEventListener("mouseover", (e) => onHover(view, e));
  root.addEventListener("mouseleave", () => hideTip(view));
  root.addEventListener("focusin", (e) => onFocus(view, e));
  root.addEventListener("focusout", (e) => {
    if (!root.contains(e.relatedTarget)) hideTip(view);
  });
  root.addEventListener("keydown", (e) => onKey(view, e));
  root.addEventListener("scroll", () => hideTip(view));
  return view;
}

/** Start over with `prompt` shown before the generated text. */
export function resetView(view, prompt) {
  view.root.replaceChildren();
  Object.assign(view, { entries: [], generated: "", prompt, tail: null, rover: null });
  hideTip(view);
  if (prompt) view.root.append(el("span", "prompt-text", prompt));
  view.root.classList.toggle("empty", !prompt);
}

/** The prompt and everything generated since the last reset. */
export function viewText(view) {
  return view.prompt + view.generated;
}

/** Add a chunk; `logprobs` (one entry per char) makes each char its own shaded span. */
export function appendText(view, text, logprobs) {
  if (!text) return;
  view.root.classList.remove("empty");
  const chars = Array.from(text);
  if (Array.isArray(logprobs) && logprobs.length === chars.length) {
    const frag = document.createDocumentFragment();
    chars.forEach((ch, k) => frag.append(charSpan(view, ch, logprobs[k])));
    view.root.append(frag);
    view.tail = null;
  } else {
    if (!view.tail) {
      view.tail = document.createTextNode("");
      view.root.append(view.tail);
    }
    view.tail.appendData(text);
  }
  view.generated += text;
}

function charSpan(view, ch, entry) {
  const span = el("span", ch === "\n" ? "ch nl" : "ch", ch);
  const p = Math.exp(Number(entry.logprob));
  // CSSOM, not a style attribute: allowed under a CSP without 'unsafe-inline'.
  span.style.setProperty("--p", Number.isFinite(p) ? p.toFixed(3) : "0");
  span.dataset.i = String(view.entries.length);
  view.entries.push(entry);
  span.tabIndex = -1;
  if (!view.rover) setRover(view, span);
  return span;
}

function setRover(view, span) {
  if (view.rover) view.rover.tabIndex = -1;
  view.rover = span;
  span.tabIndex = confidenceOn(view) ? 0 : -1;
}

/** Switch the shading and tooltips on or off (the CSS keys off .confidence). */
export function setConfidence(view, on) {
  view.root.classList.toggle("confidence", on);
  if (view.rover) view.rover.tabIndex = on ? 0 : -1;
  if (!on) hideTip(view);
}

export function confidenceOn(view) {
  return view.root.classList.contains("confidence");
}

function onHover(view, e) {
  const span = e.target.closest?.(".ch");
  if (span && confidenceOn(view)) showTip(view, span);
}

function onFocus(view, e) {
  const span = e.target.closest?.(".ch");
  if (!span || !confidenceOn(view)) return;
  setRover(view, span);
  showTip(view, span);
}

/** ←/→ move along the chars, Home/End jump, Esc hides the tooltip. */
function onKey(view, e) {
  const span = e.target.closest?.(".ch");
  if (!span) return;
  if (e.key === "Escape") return hideTip(view);
  const spans = view.root.querySelectorAll(".ch");
  const at = Number(span.dataset.i);
  const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: spans.length - 1 };
  if (!(e.key in moves)) return;
  e.preventDefault();
  const next = spans[Math.max(0, Math.min(spans.length - 1, moves[e.key]))];
  if (next) {
    setRover(view, next);
    next.focus();
  }
}

function showTip(view, span) {
  const entry = view.entries[Number(span.dataset.i)];
  if (!entry) return;
  view.tip.replaceChildren(...tipContent(entry));
  view.tip.hidden = false;
  span.setAttribute("aria-describedby", view.tip.id);
  view.current?.classList.remove("active");
  if (view.current && view.current !== span) view.current.removeAttribute("aria-describedby");
  view.current = span;
  span.classList.add("active");
  placeTip(view, span);
}

export function hideTip(view) {
  view.tip.hidden = true;
  view.current?.classList.remove("active");
  view.current?.removeAttribute("aria-describedby");
  view.current = null;
}

/** Put the tooltip under the char (above it when there is no room below), inside the pane. */
function placeTip(view, span) {
  const { tip } = view;
  const box = (tip.offsetParent ?? view.root.parentElement).getBoundingClientRect();
  const r = span.getBoundingClientRect();
  const [w, h] = [tip.offsetWidth, tip.offsetHeight];
  const left = Math.max(0, Math.min(r.left - box.left - 12, box.width - w));
  let top = r.bottom - box.top + 6;
  if (r.bottom + h + 6 > window.innerHeight && r.top - h - 6 > 0) top = r.top - box.top - h - 6;
  tip.style.left = `${left}px`;
  tip.style.top = `${top}px`;
}

/** The tooltip's nodes: the chosen char and its probability, then the alternatives as bars. */
function tipContent(entry) {
  const p = Math.exp(entry.logprob);
  const bits = -entry.logprob / Math.LN2;
  const head = el("div", "tip-head");
  head.append(el("span", "glyph", glyph(entry.char)), el("span", "tip-p", `${percent(p)} likely`));
  head.append(el("span", "tip-bits", `${bits.toFixed(2)} bits`));
  const list = el("ol", "alts");
  let listed = false;
  for (const [ch, lp] of entry.top ?? []) {
    const q = Math.exp(lp);
    const item = el("li", ch === entry.char ? "chosen" : "");
    const bar = el("span", "bar");
    const fill = el("span", "fill");
    fill.style.width = `${Math.max(1, q * 100).toFixed(1)}%`;
    bar.append(fill);
    item.append(el("span", "glyph", glyph(ch)), bar, el("span", "pct", percent(q)));
    list.append(item);
    listed ||= ch === entry.char;
  }
  const parts = [head, el("div", "tip-label", "The model's top choices here"), list];
  const outside = `Sampled outside the top ${entry.top?.length ?? 0}.`;
  if (!listed) parts.push(el("div", "tip-note", outside));
  return parts;
}
