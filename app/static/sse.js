// Server-sent events over a POST response: fetch() gives a byte stream, not an EventSource.
//
//   const response = await startStream(json, controller.signal);   // POST /api/generate/stream
//   for await (const {event, data} of readEvents(response)) { measure(meter, text); ... }
//
// Bytes are decoded with TextDecoder in stream mode, so a multi-byte char split across two
// network reads is joined, not turned into U+FFFD; lines may end in \n, \r\n or \r, and a
// line may be split across reads anywhere.  Follows the WHATWG event-stream rules for the
// fields we use (event, data; comments and other fields are ignored).
//
// The request goes through api.js (the tab's client id, the API key once given).

import { apiFetch } from "./api.js";

/** POST a generation request (a JSON body) and resolve to the response, its stream unread. */
export function startStream(body, signal) {
  return apiFetch("api/generate/stream", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
    body,
    signal,
  });
}

/** A chars/s meter: `count` chars so far, `rate` timed from the first chunk (null until then). */
export function newMeter() {
  return { count: 0, first: null, rate: null };
}

/** Add a chunk's chars; the rate leaves out the wait for the first chunk. */
export function measure(meter, text) {
  meter.count += Array.from(text).length;
  meter.first ??= { at: performance.now(), count: meter.count };
  const secs = (performance.now() - meter.first.at) / 1000;
  meter.rate = secs > 0.05 ? (meter.count - meter.first.count) / secs : meter.rate;
}

/** An incremental parser's state: parseChunk() text as it arrives, get the events it completed. */
export function newParser() {
  return { buffer: "", event: "", data: [] };
}

/** @returns {{event: string, data: string}[]} the events `text` completed */
export function parseChunk(parser, text) {
  parser.buffer += text;
  const events = [];
  for (;;) {
    const match = /\r\n|\r|\n/.exec(parser.buffer);
    // A lone \r at the very end may be the first half of \r\n: wait for more input.
    if (!match || (match[0] === "\r" && match.index === parser.buffer.length - 1)) break;
    const line = parser.buffer.slice(0, match.index);
    parser.buffer = parser.buffer.slice(match.index + match[0].length);
    const done = parseLine(parser, line);
    if (done) events.push(done);
  }
  return events;
}

/** End of stream: a final event without its blank line is dropped, as browsers do. */
export function endParse(parser) {
  Object.assign(parser, newParser());
}

/** One line: a blank one completes the event; `event:` and `data:` fill it; the rest is ignored. */
function parseLine(parser, line) {
  if (line === "") {
    const { event, data } = parser;
    Object.assign(parser, { event: "", data: [] });
    return data.length ? { event: event || "message", data: data.join("\n") } : null;
  }
  if (line.startsWith(":")) return null; // comment / keep-alive
  const colon = line.indexOf(":");
  const field = colon === -1 ? line : line.slice(0, colon);
  let value = colon === -1 ? "" : line.slice(colon + 1);
  if (value.startsWith(" ")) value = value.slice(1);
  if (field === "event") parser.event = value;
  else if (field === "data") parser.data.push(value);
  return null;
}

/** Yield each event of a streaming fetch() response until the server closes it. */
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = newParser();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parseChunk(parser, decoder.decode(value, { stream: true }));
    }
    finished = true;
    yield* parseChunk(parser, decoder.decode());
    endParse(parser);
  } finally {
    // The caller stopped early (an error event, or it broke out): close the connection so the
    // server sees the disconnect and frees the slot, rather than leaving the body unread.
    if (!finished) reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
}
