/**
 * Server-sent events: an incremental parser for upstream streams (bytes arrive split anywhere, even inside a
 * UTF-8 character or a line) and the framing the gateway writes. Only `data:` fields matter to OpenAI streams;
 * comments (`:`) and other fields are skipped; several data lines of one event are joined by newlines.
 */
export { SSE_DONE, sseData } from "../../../common/src/engine-api.js";

export class SseParser {
  private buffer = "";
  private data: string[] = [];
  private readonly decoder = new TextDecoder();

  /** Feeds bytes; returns the data payloads of the events completed by them. */
  push(chunk: Uint8Array): string[] {
    this.buffer += this.decoder.decode(chunk, { stream: true });
    const events: string[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\n|\r/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      // A lone \r at the end may be the first half of \r\n: wait for the next byte.
      if (width === 1 && this.buffer[newline] === "\r" && newline === this.buffer.length - 1) break;
      this.buffer = this.buffer.slice(newline + width);
      if (line === "") {
        if (this.data.length > 0) events.push(this.data.join("\n"));
        this.data = [];
      } else if (line.startsWith("data:")) {
        this.data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
    return events;
  }
}
