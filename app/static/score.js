// The "Score" view of Read the model: each char of the text shaded by how surprised the model
// was (POST /api/score's log-probabilities), unscored chars (outside the vocabulary) as plain
// text, and the bits/char and perplexity summary beside the model's own held-out figure.
//
//   showScore(view, data);   // from read.js; view: a confidence view (confidence.js)

import { appendText, resetView } from "./confidence.js";
import { $ } from "./dom.js";

/** Scored chars shaded in the view (unscored ones as plain text), and the bits/char summary. */
export function showScore(view, data) {
  resetView(view, "");
  let run = []; // consecutive scored chars go in as one shaded chunk; unscored ones as plain text
  const flush = () => {
    if (run.length) appendText(view, run.map((c) => c.char).join(""), run);
    run = [];
  };
  for (const c of data.chars) {
    if (c.logprob === null) {
      flush();
      appendText(view, c.char, null);
    } else run.push(c);
  }
  flush();
  const s = data.summary;
  const held = s.held_out_bits_per_char;
  const own = held == null ? "" : ` — the model's own held-out text: ${Number(held).toFixed(1)}`;
  const skipped = s.unscored_chars;
  const unscored = skipped ? ` (${skipped} chars outside its vocabulary skipped)` : "";
  const bits = s.bits_per_char;
  $("read-summary").textContent =
    bits == null
      ? `Nothing to score${unscored}.`
      : `${bits.toFixed(1)} bits/char${own}. Perplexity ${s.perplexity.toFixed(1)}${unscored}.`;
}
