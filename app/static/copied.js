// The "Copied" view of Read the model: runs of the text found verbatim in the training text
// (POST /api/copied), underlined; hovering or focusing one shows its source line.
//
//   showCopied(text, data);  showSource(event);   // from read.js

import { $, el } from "./dom.js";

/** The text with each copied run as a focusable <span class="copied">, and a summary line. */
export function showCopied(text, data) {
  const out = $("read-copied");
  out.replaceChildren();
  if (!data.indexed) {
    out.append(document.createTextNode(text));
    $("read-summary").textContent = data.message;
    return;
  }
  const chars = Array.from(text);
  let at = 0;
  for (const span of mergedSpans(data.spans)) {
    if (span.start > at) out.append(document.createTextNode(chars.slice(at, span.start).join("")));
    const mark = el("span", "copied", chars.slice(span.start, span.end).join(""));
    mark.tabIndex = 0;
    mark.dataset.line = `Line ${span.source.line} of the training text:`;
    mark.dataset.source = span.source.line_text;
    out.append(mark);
    at = span.end;
  }
  if (at < chars.length) out.append(document.createTextNode(chars.slice(at).join("")));
  $("read-summary").textContent = summary(data, chars.length);
}

function summary(data, length) {
  const runs = data.spans.length;
  if (!runs) return `No run of ${data.min_chars}+ chars appears verbatim in the training text.`;
  const found = `run${runs > 1 ? "s" : ""} of ${data.min_chars}+ chars found verbatim`;
  return `${data.copied_chars} of ${length} chars are in ${runs} ${found} in the training text.`;
}

/** Overlapping runs become one underline; its source is the first run's. */
function mergedSpans(spans) {
  const merged = [];
  for (const s of spans) {
    const last = merged.at(-1);
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else merged.push({ ...s });
  }
  return merged;
}

/** The source line of the run under the pointer or focus, in a tooltip below it. */
export function showSource(e) {
  const mark = e.target.closest?.(".copied");
  const tip = $("copied-tip");
  if (!mark) return;
  tip.replaceChildren(
    el("div", "tip-label", mark.dataset.line),
    el("div", "source-line", mark.dataset.source),
  );
  tip.hidden = false;
  mark.setAttribute("aria-describedby", "copied-tip");
  const box = tip.offsetParent?.getBoundingClientRect() ?? { left: 0, top: 0, width: 300 };
  const r = mark.getBoundingClientRect();
  tip.style.left = `${Math.max(0, Math.min(r.left - box.left, box.width - tip.offsetWidth))}px`;
  tip.style.top = `${r.bottom - box.top + 6}px`;
}
