// The output pane: the prompt (muted) then the generated text, and the confidence view.
//
//   const view = new OutputView(outputEl, tipEl);
//   view.reset("ROMEO:"); view.append("But soft", logprobEntries | null);
//
// With logprob entries each char becomes a <span class="ch"> shaded by its probability (CSS
// reads --p); hovering or focusing one shows the model's top alternatives in a tooltip.  The
// chars form one tab stop (roving tabindex): ←/→ move between them, Home/End jump, Esc hides.
// Everything from the model goes in as text (textContent / Text nodes), never as HTML.

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

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class OutputView {
  constructor(root, tip) {
    this.root = root;
    this.tip = tip;
    this.entries = []; // logprob entries, indexed by each span's data-i
    this.generated = ""; // every generated char, in order, shaded or not
    this.prompt = "";
    this.tail = null; // the Text node that plain (un-shaded) text is appended to
    this.rover = null; // the one char span in the tab order
    root.addEventListener("mouseover", (e) => this.hover(e));
    root.addEventListener("mouseleave", () => this.hideTip());
    root.addEventListener("focusin", (e) => this.focused(e));
    root.addEventListener("focusout", (e) => {
      if (!root.contains(e.relatedTarget)) this.hideTip();
    });
    root.addEventListener("keydown", (e) => this.key(e));
    root.addEventListener("scroll", () => this.hideTip());
  }

  /** Start over with `prompt` shown before the generated text. */
  reset(prompt) {
    this.root.replaceChildren();
    this.entries = [];
    this.generated = "";
    this.prompt = prompt;
    this.tail = null;
    this.rover = null;
    this.hideTip();
    if (prompt) this.root.append(el("span", "prompt-text", prompt));
    this.root.classList.toggle("empty", !prompt);
  }

  /** The prompt and everything generated since reset(). */
  text() {
    return this.prompt + this.generated;
  }

  /** Add a chunk; `logprobs` (one entry per char) makes each char its own shaded span. */
  append(text, logprobs) {
    if (!text) return;
    this.root.classList.remove("empty");
    const chars = Array.from(text);
    const usable = Array.isArray(logprobs) && logprobs.length === chars.length;
    if (usable) {
      const frag = document.createDocumentFragment();
      chars.forEach((ch, k) => frag.append(this.charSpan(ch, logprobs[k])));
      this.root.append(frag);
      this.tail = null;
    } else {
      if (!this.tail) {
        this.tail = document.createTextNode("");
        this.root.append(this.tail);
      }
      this.tail.appendData(text);
    }
    this.generated += text;
  }

  charSpan(ch, entry) {
    const span = el("span", ch === "\n" ? "ch nl" : "ch", ch);
    const p = Math.exp(Number(entry.logprob));
    // CSSOM, not a style attribute: allowed under a CSP without 'unsafe-inline'.
    span.style.setProperty("--p", Number.isFinite(p) ? p.toFixed(3) : "0");
    span.dataset.i = String(this.entries.length);
    this.entries.push(entry);
    span.tabIndex = -1;
    if (!this.rover) this.setRover(span);
    return span;
  }

  setRover(span) {
    if (this.rover) this.rover.tabIndex = -1;
    this.rover = span;
    span.tabIndex = this.enabled() ? 0 : -1;
  }

  /** Switch the shading and tooltips on or off (the CSS keys off .confidence). */
  setEnabled(on) {
    this.root.classList.toggle("confidence", on);
    if (this.rover) this.rover.tabIndex = on ? 0 : -1;
    if (!on) this.hideTip();
  }

  enabled() {
    return this.root.classList.contains("confidence");
  }

  hover(e) {
    const span = e.target.closest?.(".ch");
    if (span && this.enabled()) this.showTip(span);
  }

  focused(e) {
    const span = e.target.closest?.(".ch");
    if (!span || !this.enabled()) return;
    this.setRover(span);
    this.showTip(span);
  }

  key(e) {
    const span = e.target.closest?.(".ch");
    if (!span) return;
    const spans = this.root.querySelectorAll(".ch");
    const at = Number(span.dataset.i);
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: spans.length - 1 };
    if (e.key === "Escape") {
      this.hideTip();
      return;
    }
    if (!(e.key in moves)) return;
    e.preventDefault();
    const next = spans[Math.max(0, Math.min(spans.length - 1, moves[e.key]))];
    if (next) {
      this.setRover(next);
      next.focus();
    }
  }

  showTip(span) {
    const entry = this.entries[Number(span.dataset.i)];
    if (!entry) return;
    this.tip.replaceChildren(...tipContent(entry));
    this.tip.hidden = false;
    span.setAttribute("aria-describedby", this.tip.id);
    this.current?.classList.remove("active");
    if (this.current && this.current !== span) this.current.removeAttribute("aria-describedby");
    this.current = span;
    span.classList.add("active");
    this.place(span);
  }

  hideTip() {
    this.tip.hidden = true;
    this.current?.classList.remove("active");
    this.current?.removeAttribute("aria-describedby");
    this.current = null;
  }

  /** Put the tooltip under the char (above it when there is no room below), inside the pane. */
  place(span) {
    const wrap = this.tip.offsetParent ?? this.root.parentElement;
    const box = wrap.getBoundingClientRect();
    const r = span.getBoundingClientRect();
    const w = this.tip.offsetWidth;
    const h = this.tip.offsetHeight;
    const left = Math.max(0, Math.min(r.left - box.left - 12, box.width - w));
    let top = r.bottom - box.top + 6;
    if (r.bottom + h + 6 > window.innerHeight && r.top - h - 6 > 0) top = r.top - box.top - h - 6;
    this.tip.style.left = `${left}px`;
    this.tip.style.top = `${top}px`;
  }
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
  if (!listed) parts.push(el("div", "tip-note", `Sampled outside the top ${entry.top?.length ?? 0}.`));
  return parts;
}
