// The model picker: the list from GET /api/models in the <select>, and the picked model's card
// (parameters, network, vocabulary, held-out bits/char, corpus) beside it, with its chars
// (vocab.js).  Without an API key the server lists nothing: the page says so, with a button.
//
//   await loadModels(page);   showCard(page);   // from app.js; page.models holds the list

import { apiFetch } from "./api.js";
import { $, el } from "./dom.js";
import { showApiError, showError } from "./form.js";
import { applyWantedModel } from "./settings.js";
import { checkPrompt, listChars } from "./vocab.js";

const count = (n) => Number(n).toLocaleString();

/** Fill the picker (the server's default model chosen), show its card, mark the page ready. */
export async function loadModels(page) {
  const { form } = page;
  page.listing = true; // a key given meanwhile: this request is sent again, no second one
  try {
    const response = await apiFetch("api/models", { headers: { Accept: "application/json" } });
    if (response.status === 401) return keyNeeded(page); // the key was asked for, not given
    if (!response.ok) return await showApiError(form, response, "");
    page.models = (await response.json()).models ?? [];
  } catch (err) {
    return showError(form, "model", `Could not load the model list (${err.message}).`);
  } finally {
    page.listing = false;
  }
  const select = form.elements.model;
  select.replaceChildren(); // a second load (after the API key was given) starts over
  const preferred = page.limits.defaultModel || page.models.find((m) => m.default)?.name;
  for (const m of page.models) {
    const label = m.default ? `${m.name} (default)` : m.name;
    const option = new Option(label, m.name, false, m.name === preferred);
    option.label = `${label} · ${describe(m)}`; // what the picker shows: cell, size, bits/char
    select.append(option);
  }
  for (const o of select.options) o.defaultSelected = o.value === preferred; // Forget's reset
  if (!applyWantedModel(form)) select.dispatchEvent(new Event("change")); // a model, at last
  document.body.classList.add("ready");
}

/** Without the key there is no model list: say so, with the way to give it. */
function keyNeeded(page) {
  const box = $("model-error");
  const retry = Object.assign(el("button", "link", "Enter the API key"), { type: "button" });
  retry.addEventListener("click", () => {
    box.hidden = true;
    loadModels(page); // its 401 opens the key dialog again
  });
  box.replaceChildren(el("p", "", "This server needs an API key to list its models."), retry);
  box.hidden = false;
}

/** "LSTM 2×512, 3,315,265 params, 1.482 bits/char": the model at a glance, for the picker. */
function describe(m) {
  const cfg = m.config ?? {};
  const shape = cfg.layers && cfg.units ? ` ${cfg.layers}×${cfg.units}` : "";
  const bits = m.held_out_bits_per_char;
  const held = bits != null ? `${Number(bits).toFixed(3)} bits/char` : "bits/char not measured";
  const cell = (m.cell ?? cfg.cell ?? "lstm").toUpperCase();
  return `${cell}${shape}, ${count(m.params)} params, ${held}`;
}

export function showCard(page) {
  const model = page.models.find((m) => m.name === page.form.elements.model.value);
  const rows = model ? cardRows(model) : [];
  $("model-card").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  listChars(model);
  checkPrompt(page); // another model may know other chars
}

/** The model card as label/value rows; fields a card lacks are left out. */
function cardRows(m) {
  const cfg = m.config ?? {};
  const bits = m.held_out_bits_per_char;
  const unseen = m.corpus?.held_out_chars;
  const heldOut = unseen ? ` on ${count(unseen)} unseen chars` : "";
  const corpusChars = m.corpus?.chars ? `, ${count(m.corpus.chars)} chars` : "";
  return [
    ["Parameters", m.params != null ? `${count(m.params)}${size(m)}` : null],
    ["Network", cfg.layers && cfg.units ? `${cfg.layers} LSTM layers × ${cfg.units} units` : null],
    ["Vocabulary", m.vocab_size != null ? `${m.vocab_size} chars` : null],
    ["Held-out", bits != null ? `${Number(bits).toFixed(3)} bits/char${heldOut}` : "not measured"],
    ["Corpus", m.corpus?.name ? `${m.corpus.name}${corpusChars}` : null],
  ].filter(([, value]) => value !== null);
}

/** " (1.2 MiB)" as stored, or " (… MiB as float32)" from the parameter count; "" if unknown. */
function size(m) {
  const stored = m.size_bytes ?? m.bytes;
  const weights = stored ?? (m.params != null ? m.params * 4 : null);
  if (weights === null) return "";
  const mib = `${(weights / 2 ** 20).toFixed(weights < 2 ** 20 ? 2 : 1)} MiB`;
  return ` (${mib}${stored == null ? " as float32" : ""})`;
}
