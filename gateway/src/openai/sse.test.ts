import { describe, expect, it } from "vitest";
import { SSE_DONE, SseParser, sseData } from "./sse.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("SseParser", () => {
  it.each([
    { name: "one event", input: ['data: {"a":1}\n\n'], events: ['{"a":1}'] },
    { name: "split inside a line and between events", input: ["da", "ta: x\n", "\ndata: y\n\n"], events: ["x", "y"] },
    { name: "CRLF line ends, split between CR and LF", input: ["data: x\r", "\n\r\n"], events: ["x"] },
    {
      name: "comments and other fields are skipped",
      input: [": keep-alive\n\nevent: message\nid: 3\ndata: z\n\n"],
      events: ["z"],
    },
    { name: "several data lines join with newlines", input: ["data: a\ndata: b\n\n"], events: ["a\nb"] },
    { name: "no space after the colon", input: ["data:x\n\n"], events: ["x"] },
    { name: "an event without its blank line is not complete", input: ["data: x\n"], events: [] },
    { name: "[DONE] is a payload like any other", input: [SSE_DONE], events: ["[DONE]"] },
  ])("$name", ({ input, events }) => {
    const parser = new SseParser();
    expect(input.flatMap((chunk) => parser.push(bytes(chunk)))).toEqual(events);
  });

  it("keeps a UTF-8 character split across chunks", () => {
    const encoded = bytes(sseData({ text: "é" }));
    const parser = new SseParser();
    const cut = encoded.indexOf(0xc3) + 1;
    const events = [...parser.push(encoded.slice(0, cut)), ...parser.push(encoded.slice(cut))];
    expect(events.map((e) => JSON.parse(e))).toEqual([{ text: "é" }]);
  });

  it("frames what it parses back (round trip)", () => {
    const parser = new SseParser();
    expect(parser.push(bytes(sseData({ a: "multi\nline" }) + SSE_DONE))).toEqual(['{"a":"multi\\nline"}', "[DONE]"]);
  });
});
