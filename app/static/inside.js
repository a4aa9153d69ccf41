// The "Inside" view of Read the model: the text coloured blue→red by one LSTM cell's activation
// (POST /api/inspect), the cell picked from the model's list (GET /api/models/{name}/cells, what
// `python -m model.cells` found) or by layer and number.
//
//   await loadCells(r, modelName);  pickListed();  showInside(data);   // from read.js

import { apiFetch } from "./api.js";
import { glyph } from "./confidence.js";
import { $, el } from "./dom.js";
import { errorOf } from "./form.js";

/** Fill the cell picker with the model's listed cells (once per model; `r.cellsFor` remembers).
 *  Only a 404 means the model has no list; any other refusal (a missing API key, say) is said. */
export async function loadCells(r, name) {
  if (r.cellsFor === name) return;
  const pick = $("cell-pick");
  const hint = $("cell-pick-hint");
  pick.replaceChildren(new Option("any cell: set layer and cell below", ""));
  if (!name) {
    hint.textContent = "The cells are listed once the model list has loaded.";
    return; // the list's arrival picks a model: a change event calls again
  }
  r.cellsFor = name;
  hint.textContent = "Loading the list of cells…";
  try {
    const response = await apiFetch(`api/models/${encodeURIComponent(name ?? "")}/cells`);
    if (response.status === 404) {
      hint.textContent = "No list for this model (python -m model.cells); pick any cell by number.";
      return;
    }
    if (!response.ok) throw new Error((await errorOf(response)).message);
    const data = await response.json();
    for (const [feature, entry] of Object.entries(data?.features ?? {})) {
      for (const c of entry.cells.slice(0, 3)) {
        pick.append(new Option(cellLabel(feature, c), JSON.stringify(c)));
      }
    }
    hint.textContent = "Cells the finder matched to simple features of held-out text.";
  } catch (err) {
    r.cellsFor = null; // try again next time
    hint.textContent = `Could not load the list of cells (${err.message}); pick a cell by number.`;
  }
}

/** "in quotes: layer 1 c[3] (r +0.71)" */
function cellLabel(feature, c) {
  const r = `${c.r >= 0 ? "+" : ""}${c.r.toFixed(2)}`;
  return `${feature.replace(/_/g, " ")}: layer ${c.layer} ${c.what}[${c.unit}] (r ${r})`;
}

/** A listed cell was picked: put its layer, number and state in the boxes. */
export function pickListed() {
  const value = $("cell-pick").value;
  if (!value) return;
  const c = JSON.parse(value);
  $("cell-layer").value = c.layer;
  $("cell-unit").value = c.unit;
  $("cell-what").value = c.what;
}

/** Each char's background: red for positive, blue for negative, as strong as the value. */
export function showInside(data) {
  const values = data.activations.map((row) => row[0]);
  // h is within ±1; c is not: scale c by its largest value in this text
  const scale = data.what === "h" ? 1 : Math.max(1e-6, ...values.map(Math.abs));
  const out = $("read-inside");
  out.replaceChildren();
  data.chars.forEach((ch, k) => {
    const v = values[k] / scale;
    const span = el("span", ch === "\n" ? "cell nl" : "cell", ch);
    const alpha = Math.abs(v).toFixed(3);
    // CSSOM, not a style attribute: allowed under the page's CSP.
    span.style.backgroundColor = v >= 0 ? `rgb(220 38 38 / ${alpha})` : `rgb(37 99 235 / ${alpha})`;
    span.title = `${glyph(ch)}: ${values[k].toFixed(3)}`;
    out.append(span);
  });
  const range = data.what === "h" ? "±1" : `±${scale.toFixed(2)}`;
  $("read-summary").textContent =
    `Layer ${data.layer}, ${data.what}[${data.units[0]}]: blue negative, red positive (${range}).`;
}
