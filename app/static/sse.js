// Server-sent events over a POST response: fetch() gives a byte stream, not an EventSource.
//
//   for await (const {event, data} of readEvents(response)) { ... }
//
// Bytes are decoded with TextDecoder in stream mode, so a multi-byte char split across two
// network reads is joined, not turned into U+FFFD; lines may end in \n, \r\n or \r, and a
// line may be split across reads anywhere.  Follows the WHATWG event-stream rules for the
// fields we use (event, data; comments and other fields are ignored).

/** Incremental parser: push() text as it arrives, get back the events it completed. */
export class EventParser {
  constructor() {
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  /** @param {string} text @returns {{event: string, data: string}[]} */
  push(text) {
    this.buffer += text;
    const events = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      // A lone \r at the very end may be the first half of \r\n: wait for more input.
      if (!match || (match[0] === "\r" && match.index === this.buffer.length - 1)) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const done = this.line(line);
      if (done) events.push(done);
    }
    return events;
  }

  /** End of stream: a final event without its blank line is dropped, as browsers do. */
  finish() {
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  line(line) {
    if (line === "") {
      if (this.data.length === 0) {
        this.event = "";
        return null;
      }
      const done = { event: this.event || "message", data: this.data.join("\n") };
      this.event = "";
      this.data = [];
      return done;
    }
    if (line.startsWith(":")) return null; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    return null;
  }
}

/** Yield each event of a streaming fetch() response until the server closes it. */
export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder("utf-8");
  const parser = new EventParser();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    finished = true;
    yield* parser.push(decoder.decode());
    parser.finish();
  } finally {
    // The caller stopped early (an error event, or it broke out): close the connection so the
    // server sees the disconnect and frees the slot, rather than leaving the body unread.
    if (!finished) reader.cancel().catch(() => {});
    else reader.releaseLock();
  }
}
