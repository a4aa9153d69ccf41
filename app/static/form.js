// The form's side of a request: read the fields into the JSON body for POST /api/generate/stream,
// and show errors (the page's own checks, or the API's envelope) beside the field they name.
//
//   const { json, errors } = buildRequest(form, prompt, logprobs);
//   showError(form, fieldOf(error.param), error.message, prompt);
//
// Everything shown is inserted as text: the API's message and the prompt never become HTML.

export const FIELDS = ["prompt", "model", "temperature", "top_k", "top_p", "seed", "max_chars", "stop"];
// The "Advanced" sampling controls: sent only when set, so a plain request stays as it was.
export const ADVANCED = ["min_p", "repetition_penalty", "repetition_window", "presence_penalty", "frequency_penalty"];
FIELDS.push(...ADVANCED, "logit_bias");

/** The last `max` chars (code points, as the server counts) of `text`. */
export function tail(text, max) {
  const chars = Array.from(text);
  return chars.length > max ? chars.slice(-max).join("") : text;
}

function numberField(form, name, errors) {
  const input = form.elements[name];
  if (input.validity.badInput) errors[name] = "Enter a number.";
  return input.value.trim() === "" ? null : Number(input.value);
}

/** "e=2" / "\\n=-5" lines → {"e": 2, "\n": -5}; the last "=" splits, so "==1" biases "=". */
function logitBias(form, errors) {
  const lines = (form.elements.logit_bias?.value ?? "").split("\n").filter((line) => line.trim() !== "");
  if (!lines.length) return null;
  const bias = {};
  for (const line of lines) {
    const at = line.lastIndexOf("=");
    const ch = line.slice(0, at).replace(/\\(n|t|\\)/g, (_, c) => ({ n: "\n", t: "\t", "\\": "\\" })[c]);
    const value = Number(line.slice(at + 1));
    if (at < 1 || Array.from(ch).length !== 1 || line.slice(at + 1).trim() === "" || !Number.isFinite(value)) {
      errors.logit_bias = `"${line}": write one char, "=", then a number.`;
      return null;
    }
    bias[ch] = value;
  }
  return bias;
}

function stopStrings(form) {
  const unescape = (s) => s.replace(/\\(n|t|\\)/g, (_, c) => ({ n: "\n", t: "\t", "\\": "\\" })[c]);
  const lines = form.elements.stop.value.split("\n").filter((line) => line !== "");
  return lines.length ? lines.map(unescape) : null;
}

/** The JSON body for `prompt` (`logprobs`: alternatives per char), and any errors by field. */
export function buildRequest(form, prompt, logprobs) {
  const errors = {};
  const params = {
    prompt,
    model: form.elements.model.value || null,
    temperature: Number(form.elements.temperature.value),
    max_chars: numberField(form, "max_chars", errors),
    top_k: numberField(form, "top_k", errors),
    top_p: numberField(form, "top_p", errors),
    stop: stopStrings(form),
    logprobs,
  };
  for (const name of ADVANCED) {
    const value = form.elements[name] ? numberField(form, name, errors) : null;
    if (value !== null) params[name] = value;
  }
  const bias = logitBias(form, errors);
  if (bias) params.logit_bias = bias;
  if (params.max_chars === null) errors.max_chars = "Enter how many chars to generate.";
  const seed = form.elements.seed.value.trim().replace(/^0+(?=\d)/, ""); // "007": JSON has no leading zeros
  if (seed !== "" && !/^\d{1,19}$/.test(seed)) errors.seed = "A seed is a whole number ≥ 0, or blank for random.";
  let json = JSON.stringify(params);
  // Seeds go up to 2^63, past a JS number's exact range: splice the digits in as written.
  if (seed !== "") json = `${json.slice(0, -1)},"seed":${seed}}`;
  return { json, errors };
}

function errorBox(form, field) {
  return form.querySelector(`[data-error-for="${FIELDS.includes(field) ? field : ""}"]`);
}

export function clearErrors(form) {
  for (const box of form.querySelectorAll("[data-error-for]")) {
    box.hidden = true;
    box.replaceChildren();
  }
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

/** Show `message` beside `field` (the API's `param`); unknown fields go under the buttons. */
export function showError(form, field, message, prompt = "") {
  const box = errorBox(form, field);
  box.append(Object.assign(document.createElement("p"), { textContent: message }));
  if (field === "prompt" && prompt) markUnknown(box, prompt, message);
  box.hidden = false;
  const input = form.elements[field];
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

/** `param` such as "prompt", "body.top_k" or "stop.1" → the form field it names. */
export function fieldOf(param) {
  return String(param ?? "").split(/[.[\]/]/).find((part) => FIELDS.includes(part)) ?? "";
}

/** Point out, in excerpts of the prompt, the chars the API said are not in the vocabulary. */
function markUnknown(box, prompt, message) {
  const named = new Set();
  for (const [, hex] of message.matchAll(/U\+([0-9A-Fa-f]{4,6})/g)) {
    const code = parseInt(hex, 16);
    if (code <= 0x10ffff) named.add(String.fromCodePoint(code));
  }
  // Else chars quoted as Python writes them: 'x', "'", '\t', '\x7f', '\u2028'.
  const quoted = /(['"])(?:\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|([tnr]))|(.))\1/gu;
  if (!named.size) {
    for (const [, , x, u, U, esc, ch] of message.matchAll(quoted)) {
      const hex = x ?? u ?? U;
      if (hex) named.add(String.fromCodePoint(Math.min(parseInt(hex, 16), 0x10ffff)));
      else named.add(esc ? { t: "\t", n: "\n", r: "\r" }[esc] : ch);
    }
  }
  const chars = Array.from(prompt);
  const hits = chars.flatMap((ch, i) => (named.has(ch) ? [i] : []));
  if (!hits.length) return;
  const list = document.createElement("p");
  list.className = "excerpts";
  for (const at of hits.slice(0, 3)) {
    const line = document.createElement("span");
    line.className = "excerpt";
    const mark = Object.assign(document.createElement("mark"), { textContent: chars[at] });
    const from = Math.max(0, at - 16);
    const to = Math.min(chars.length, at + 17);
    const before = chars.slice(from, at).join("").replace(/\n/g, "↵");
    const after = chars.slice(at + 1, to).join("").replace(/\n/g, "↵");
    line.append(`char ${at + 1}: ${from > 0 ? "…" : ""}${before}`, mark, `${after}${to < chars.length ? "…" : ""}`);
    list.append(line);
  }
  if (hits.length > 3) list.append(`and ${hits.length - 3} more`);
  box.append(list);
}

export async function showApiError(form, response, prompt) {
  let error = {};
  try {
    error = (await response.json()).error ?? {};
  } catch {
    // not the JSON envelope (a proxy's page, say): fall back to the status line
  }
  let message = error.message || `The server answered ${response.status} ${response.statusText}.`;
  const retry = response.headers.get("Retry-After");
  if (response.status === 429 && retry) message += ` Try again in ${retry} s.`;
  showError(form, fieldOf(error.param), message, prompt);
}

