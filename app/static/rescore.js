// Probabilities for text that came without them: a version opened from a shared link, one kept
// without them when storage ran short.  With the confidence view on, the page sends the prompt
// and text to POST /api/score (its last MAX_SCORE_CHARS chars) and gives each char that lacks an
// entry the score's: the model's probability of that char after all the text before it, and its
// top alternatives, the same numbers a generation streams (the raw model's, before sampling).
//
//   const chars = await scoreChars(version, { model, top, maxChars });  // [[ch, entry]...]
//   lacksEntries(version)                                                // anything to score?
//
// Chars before the scored window, or outside the model's vocabulary, stay without an entry.

import { apiFetch } from "./api.js";
import { errorOf } from "./form.js";

/** Whether some generated char of the version has no probability entry. */
export function lacksEntries(version) {
  return Boolean(version?.chars.some(([, entry]) => !entry));
}

/** The version's chars with the missing entries filled in; throws the server's message. */
export async function scoreChars({ prompt, chars }, { model, top, maxChars, signal }) {
  const all = [...Array.from(prompt), ...chars.map(([ch]) => ch)];
  const from = Math.max(0, all.length - maxChars);
  const response = await apiFetch("api/score", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify({ text: all.slice(from).join(""), model: model || null, top }),
    signal,
  });
  if (!response.ok) throw new Error((await errorOf(response)).message);
  const scored = (await response.json()).chars ?? [];
  const offset = Array.from(prompt).length - from; // where the generated chars start in `scored`
  return chars.map(([ch, entry], i) => {
    const s = scored[offset + i];
    if (entry || !s || s.char !== ch || s.logprob === null) return [ch, entry ?? null];
    return [ch, { char: ch, logprob: s.logprob, top: s.top ?? [] }];
  });
}
