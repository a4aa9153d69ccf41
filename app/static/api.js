// Every request the page makes to the server's /api goes through apiFetch: it sends a per-tab
// client id (X-Client-Id: a balancer hashes on it, so a text's Continue reaches the replica that
// holds its prefix cache) and, once the person has given one, the API key (Authorization:
// Bearer).  A 401 opens the key dialog (#key-dialog in index.html, a password field); requests
// refused at the same time share that one dialog, and each is sent again with the key.  The key
// is kept for the tab only (sessionStorage); Forget drops it.
//
//   initApi();                                    // once, from app.js: wires the dialog
//   const response = await apiFetch("api/models", { headers: { Accept: "application/json" } });
//   forgetKey();
//
// No state of its own: the key and the id live in sessionStorage, the dialog's state in the DOM.

import { $ } from "./dom.js";

const KEY = "char-lstm.api-key";
const CLIENT = "char-lstm.client-id";

function stored(name) {
  try {
    return sessionStorage.getItem(name);
  } catch {
    return null; // storage refused (a sandboxed frame): the page works, asking again
  }
}

function keep(name, value) {
  try {
    if (value === null) sessionStorage.removeItem(name);
    else sessionStorage.setItem(name, value);
  } catch {
    // as above
  }
}

/** This tab's random id, made once and kept in sessionStorage (a reload keeps it). */
export function clientId() {
  let id = stored(CLIENT);
  if (!id) {
    // getRandomValues, not randomUUID: the page may be served over plain http on a LAN address
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    keep(CLIENT, id);
  }
  return id;
}

export function forgetKey() {
  keep(KEY, null);
}

/** The key dialog: a submitted key is kept before anyone waiting on the dialog hears of it; a
 *  cancel is timed, so that requests refused before it do not ask again. */
export function initApi() {
  const dialog = $("key-dialog");
  dialog.addEventListener("close", () => {
    const key = $("api-key").value.trim();
    $("api-key").value = "";
    if (dialog.returnValue !== "ok" || !key) {
      dialog.dataset.declined = String(performance.now());
      return;
    }
    keep(KEY, key);
    document.dispatchEvent(new CustomEvent("api:key"));
  });
}

/** `init` with the client id and, if there is one, the key; `sent` records which key went, when. */
function withHeaders(init, sent) {
  const headers = new Headers(init.headers);
  headers.set("X-Client-Id", clientId());
  sent.at = performance.now();
  sent.key = stored(KEY);
  if (sent.key) headers.set("Authorization", `Bearer ${sent.key}`);
  return { ...init, headers };
}

/** fetch() for the page's API calls; a 401 asks for the key and sends the request again. */
export async function apiFetch(path, init = {}) {
  const sent = {};
  let response = await fetch(path, withHeaders(init, sent));
  const dialog = $("key-dialog");
  while (response.status === 401 && !init.signal?.aborted) {
    // Refused alongside a request whose question was declined since: that answer stands.
    if (Number(dialog.dataset.declined ?? -1) > sent.at) return response;
    // A key given meanwhile (for a request refused alongside this one): just send it again.
    if (stored(KEY) === sent.key && !(await askKey(Boolean(sent.key)))) return response;
    response = await fetch(path, withHeaders(init, sent));
  }
  return response;
}

/** Open the dialog (unless it is open already) and wait: true once a key was given. */
async function askKey(refused) {
  const dialog = $("key-dialog");
  if (!dialog.open) {
    $("key-refused").hidden = !refused;
    dialog.returnValue = "";
    dialog.dataset.asked = String(Number(dialog.dataset.asked ?? 0) + 1);
    dialog.showModal();
    $("api-key").focus();
  }
  await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
  return dialog.returnValue === "ok" && Boolean(stored(KEY));
}
