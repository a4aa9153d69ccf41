// The Gates view's choice of cells: by number ("3, 7, 12" in #gates-units, at most as many as
// its data-max, which the server renders) or from the finder's list of cells that track simple
// features of the text (GET /api/models/{name}/cells, what `python -m model.reading.finder`
// wrote), added to the numbers with the Add button.
//
//   await loadListed(model);   addListed();   parseUnits() → {units} or {error}

import { $ } from "./dom.js";
import { request } from "./views.js";

/** The finder's cells for `model` in the Listed cells picker (each layer and cell once). */
export async function loadListed(model) {
  const pick = $("gates-listed");
  pick.replaceChildren(new Option("choose a cell the finder listed", ""));
  const response = await request(`api/models/${encodeURIComponent(model)}/cells`).catch(() => null);
  const data = response?.ok ? await response.json() : null;
  const seen = new Set();
  for (const [feature, entry] of Object.entries(data?.features ?? {})) {
    for (const c of entry.cells.slice(0, 3)) {
      if (seen.has(`${c.layer}:${c.unit}`)) continue;
      seen.add(`${c.layer}:${c.unit}`);
      const label = `${feature.replace(/_/g, " ")}: layer ${c.layer}, cell ${c.unit}`;
      pick.append(new Option(label, JSON.stringify({ layer: c.layer, unit: c.unit })));
    }
  }
  $("gates-add").disabled = seen.size === 0;
  $("gates-listed-hint").textContent = seen.size
    ? "Cells the finder matched to features of held-out text; Add puts one in the list."
    : "No list for this model (python -m model.reading.finder); give cell numbers below.";
}

/** The listed cell joins the numbers (or starts them, if it is in another layer). */
export function addListed() {
  const value = $("gates-listed").value;
  if (!value) return;
  const { layer, unit } = JSON.parse(value);
  const same = Number($("gates-layer").value) === layer;
  const units = same ? parseUnits().units ?? [] : [];
  if (!units.includes(unit)) units.push(unit);
  $("gates-layer").value = String(layer);
  $("gates-units").value = units.join(", ");
}

/** "3, 7 12" → {units: [3, 7, 12]}, or {error}. */
export function parseUnits() {
  const words = $("gates-units").value.split(/[\s,;]+/).filter(Boolean);
  const most = Number($("gates-units").dataset.max);
  if (!words.length) return { error: "Give at least one cell number." };
  if (words.some((w) => !/^\d+$/.test(w))) {
    return { error: "Cell numbers are whole numbers from 0, separated by commas." };
  }
  const units = [...new Set(words.map(Number))];
  return units.length > most ? { error: `At most ${most} cells at once.` } : { units };
}
