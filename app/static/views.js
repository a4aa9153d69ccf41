// The Read section's radios also choose the views that bring their own controls: Gates (gates.js)
// and Compare (compare.js).  Each shows its own panel while its radio is checked; `#read`'s
// data-view lets style.css hide what read.js's views use and these do not (its run button,
// summary and output; for Compare, the text box too).
//
//   watchView("gates", $("gates-view"), () => open(g));   // open() runs each time it is chosen

import { apiFetch } from "./api.js";
import { $ } from "./dom.js";

/** The value of the checked read-view radio. */
export const chosenView = () =>
  document.querySelector('input[name="read-view"]:checked')?.value ?? "score";

/** The model picked in the settings (undefined: the server's default). */
export const modelName = () => document.getElementById("model")?.value || undefined;

/** Show `panel` while the `name` radio is checked, calling `open` each time it becomes so. */
export function watchView(name, panel, open) {
  const update = () => {
    const v = chosenView();
    $("read").dataset.view = v;
    panel.hidden = v !== name;
    if (v === name) open();
  };
  for (const radio of document.querySelectorAll('input[name="read-view"]')) {
    radio.addEventListener("change", update);
  }
  update();
}

/** Every request these views make: api.js's fetch (the tab's client id, the API key once given). */
export const request = apiFetch;

/** POST JSON with an AbortSignal; the answer's JSON, or an Error with the server's message. */
export async function postJson(path, body, signal) {
  const response = await request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    signal,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error?.message ?? `The server answered ${response.status}.`);
  }
  return data;
}

/** How the page names each cell kind. */
export const CELL_NAMES = { lstm: "LSTM", gru: "GRU", rnn: "plain RNN" };

/** A char as the page shows it in a label: ↵ for a line break, ␣ for a space. */
export const shown = (ch) => (ch === "\n" ? "↵" : ch === " " ? "␣" : ch);
