// The form's settings as a flat object of strings, and back: for versions, local storage and
// shareable links (?prompt=…&seed=…&temperature=…).  Only the names below are read or written.
//
//   const settings = readSettings(form);  writeSettings(form, settings);

export const SETTINGS = [
  "prompt", "model", "temperature", "top_k", "top_p", "seed", "max_chars", "stop",
  "min_p", "repetition_penalty", "repetition_window", "presence_penalty", "frequency_penalty",
  "logit_bias", "compare", "compare_what",
];

export function readSettings(form) {
  const out = {};
  for (const name of SETTINGS) {
    const input = form.elements[name];
    if (input) out[name] = input.value;
  }
  return out;
}

/** Fill the form; a model not listed yet is chosen once the model list arrives. */
export function writeSettings(form, settings) {
  for (const name of SETTINGS) {
    const input = form.elements[name];
    const value = settings?.[name];
    if (!input || value === undefined || value === null) continue;
    const listed = input.options && [...input.options].some((o) => o.value === String(value));
    if (name === "model" && !listed) {
      input.dataset.wanted = String(value);
      continue;
    }
    if (input.options && !listed) continue; // a choice the list lacks (an old link's): ignored
    input.value = String(value);
    input.dispatchEvent(new Event("input", { bubbles: true })); // counters and labels follow
  }
  if (usesAdvanced(settings)) {
    const details = document.getElementById("advanced");
    if (details) details.open = true;
  }
}

/** Whether settings set an "Advanced" control, so that section should open to show them. */
function usesAdvanced(settings) {
  const penalised = Number(settings?.repetition_penalty || 1) !== 1; // 1: no penalty
  return penalised || Boolean(settings?.min_p || settings?.logit_bias || settings?.compare);
}

/** After the model list loads: select the model a restored setting asked for, if it exists;
 *  true when it did (and told the page with a change event). */
export function applyWantedModel(form) {
  const select = form.elements.model;
  const wanted = select.dataset.wanted;
  delete select.dataset.wanted;
  if (!wanted || ![...select.options].some((o) => o.value === wanted)) return false;
  select.value = wanted;
  select.dispatchEvent(new Event("change"));
  return true;
}
