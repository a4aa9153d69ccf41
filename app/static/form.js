// The form's side of a request: read the fields into the JSON body for POST /api/generate/stream,
// and show errors (the page's own checks, or the API's envelope) beside the field they name.
//
//   const { json, errors } = buildRequest(form, prompt, logprobs, limits.maxSeed);
//   showError(form, fieldOf(error.param), error.message, prompt);
//
// Everything shown is inserted as text: the API's message and the prompt never become HTML.
// The ranges are the server's: the API checks them and its message lands beside the field.

import { el } from "./dom.js";

// The "Advanced" sampling controls: sent only when set, so a plain request stays as it was.
export const ADVANCED = [
  "min_p", "repetition_penalty", "repetition_window", "presence_penalty", "frequency_penalty",
];
export const FIELDS = [
  "prompt", "model", "temperature", "top_k", "top_p", "seed", "max_chars", "stop",
  ...ADVANCED, "logit_bias",
];

const ESCAPES = { n: "\n", t: "\t", "\\": "\\" };
/** "\\n" → a line break, "\\t" → a tab, "\\\\" → a backslash. */
const unescape = (s) => s.replace(/\\(n|t|\\)/g, (_, c) => ESCAPES[c]);

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
  const text = form.elements.logit_bias?.value ?? "";
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  if (!lines.length) return null;
  const bias = {};
  for (const line of lines) {
    const at = line.lastIndexOf("=");
    const ch = unescape(line.slice(0, at));
    const written = line.slice(at + 1);
    const value = Number(written);
    const oneChar = at >= 1 && Array.from(ch).length === 1;
    if (!oneChar || written.trim() === "" || !Number.isFinite(value)) {
      errors.logit_bias = `"${line}": write one char, "=", then a number.`;
      return null;
    }
    bias[ch] = value;
  }
  return bias;
}

function stopStrings(form) {
  const lines = form.elements.stop.value.split("\n").filter((line) => line !== "");
  return lines.length ? lines.map(unescape) : null;
}

/** The seed as JSON digits ("" for random), or null when it is not a seed below `maxSeed`. */
function seedDigits(form, maxSeed) {
  const seed = form.elements.seed.value.trim().replace(/^0+(?=\d)/, ""); // "007": no leading 0s
  if (seed === "") return "";
  return /^\d+$/.test(seed) && BigInt(seed) < maxSeed ? seed : null;
}

/** The JSON body for `prompt` (`logprobs`: alternatives per char), and any errors by field. */
export function buildRequest(form, prompt, logprobs, maxSeed) {
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
  const seed = seedDigits(form, maxSeed);
  if (seed === null) errors.seed = "A seed is a whole number ≥ 0, or blank for random.";
  let json = JSON.stringify(params);
  // Seeds go up to 2^63, past a JS number's exact range: splice the digits in as written.
  if (seed) json = `${json.slice(0, -1)},"seed":${seed}}`;
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
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
}

/** Show `message` beside `field` (the API's `param`); unknown fields go under the buttons. */
export function showError(form, field, message, prompt = "") {
  const box = errorBox(form, field);
  box.append(el("p", "", message));
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

/** The chars an error message names: as U+XXXX, else quoted as Python writes them. */
function namedChars(message) {
  const named = new Set();
  for (const [, hex] of message.matchAll(/U\+([0-9A-Fa-f]{4,6})/g)) {
    const code = parseInt(hex, 16);
    if (code <= 0x10ffff) named.add(String.fromCodePoint(code));
  }
  if (named.size) return named;
  // 'x', "'", '\t', '\x7f', '\u2028'
  const quoted = /(['"])(?:\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|([tnr]))|(.))\1/gu;
  for (const [, , x, u, U, esc, ch] of message.matchAll(quoted)) {
    const hex = x ?? u ?? U;
    if (hex) named.add(String.fromCodePoint(Math.min(parseInt(hex, 16), 0x10ffff)));
    else named.add(esc ? { t: "\t", n: "\n", r: "\r" }[esc] : ch);
  }
  return named;
}

/** Point out, in excerpts of the prompt, the chars the API said are not in the vocabulary. */
function markUnknown(box, prompt, message) {
  const named = namedChars(message);
  const chars = Array.from(prompt);
  const hits = chars.flatMap((ch, i) => (named.has(ch) ? [i] : []));
  if (hits.length) box.append(excerpts(chars, hits));
}

/** The first three of `hits` (indices into `chars`) as excerpts, then how many more. */
export function excerpts(chars, hits) {
  const list = el("p", "excerpts");
  for (const at of hits.slice(0, 3)) list.append(excerpt(chars, at));
  if (hits.length > 3) list.append(`and ${hits.length - 3} more`);
  return list;
}

/** "char 7: …some text <mark>x</mark> more…", up to 16 chars either side, line breaks as ↵. */
function excerpt(chars, at) {
  const line = el("span", "excerpt");
  const from = Math.max(0, at - 16);
  const to = Math.min(chars.length, at + 17);
  const before = chars.slice(from, at).join("").replace(/\n/g, "↵");
  const after = chars.slice(at + 1, to).join("").replace(/\n/g, "↵");
  const start = `char ${at + 1}: ${from > 0 ? "…" : ""}${before}`;
  line.append(start, el("mark", "", chars[at]), `${after}${to < chars.length ? "…" : ""}`);
  return line;
}

/** A refused response's {message, param}: the API's envelope, else its status line. */
export async function errorOf(response) {
  let error = {};
  try {
    error = (await response.json()).error ?? {};
  } catch {
    // not the JSON envelope (a proxy's page, say): fall back to the status line
  }
  let message = error.message || `The server answered ${response.status} ${response.statusText}.`;
  const retry = response.headers.get("Retry-After");
  if (response.status === 429 && retry) message += ` Try again in ${retry} s.`;
  return { message, param: error.param ?? null };
}

export async function showApiError(form, response, prompt) {
  const { message, param } = await errorOf(response);
  showError(form, fieldOf(param), message, prompt);
}
