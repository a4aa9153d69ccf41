// A confidence view's text as data and back: [char, logprob entry | null] pairs after the prompt,
// for versions (write.js) and side-by-side columns kept as versions (columns.js).
//
//   const snap = snapshot(view);   // {prompt, chars}
//   render(view, snap);            // the same text, shaded where it has entries

import { appendText, resetView } from "./confidence.js";

/** The view's text as [char, logprob entry | null] pairs after the prompt. */
export function snapshot(view) {
  const chars = [];
  for (const node of view.root.childNodes) {
    if (node.classList?.contains("prompt-text")) continue;
    if (node.classList?.contains("ch")) {
      chars.push([node.textContent, view.entries[Number(node.dataset.i)] ?? null]);
    } else {
      for (const ch of Array.from(node.textContent ?? "")) chars.push([ch, null]);
    }
  }
  return { prompt: view.prompt, chars };
}

/** Show a snapshot again: runs of shaded chars go in with their entries, the rest as text. */
export function render(view, { prompt, chars }) {
  resetView(view, prompt);
  let i = 0;
  while (i < chars.length) {
    const shaded = chars[i][1] !== null;
    let j = i;
    while (j < chars.length && (chars[j][1] !== null) === shaded) j++;
    const part = chars.slice(i, j);
    appendText(view, part.map(([ch]) => ch).join(""), shaded ? part.map(([, e]) => e) : null);
    i = j;
  }
}
