import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SseParser } from "../../../../gateway/src/openai/sse.js";
import { Outcome } from "../../workers/simulated/sequence.js";
import { ResumableStream, ResumeError } from "./resumable-stream.js";
import { SSE_HEARTBEAT, SseWriter } from "./sse-writer.js";
import { placeholderToken } from "./tokens.js";

const USAGE = { prompt_tokens: 10, completion_tokens: 10, total_tokens: 20 };
let server: Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A real HTTP server whose one route hands the response to `onRequest`; returns its URL. */
async function serve(onRequest: (res: ServerResponse, url: URL) => void): Promise<string> {
  server = createServer((req, res) => onRequest(res, new URL(req.url ?? "/", "http://x")));
  await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", () => resolve()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function readAll(response: Response): Promise<{ raw: string; events: unknown[]; done: boolean }> {
  const raw = await response.text();
  const parser = new SseParser();
  const datas = parser.push(new TextEncoder().encode(raw));
  return {
    raw,
    events: datas.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d) as unknown),
    done: datas.includes("[DONE]"),
  };
}

const texts = (events: unknown[]) =>
  events.map((e) => (e as { choices?: { text: string }[] }).choices?.[0]?.text).filter((t) => t);

describe("ResumableStream", () => {
  it("keeps the tokens made before the client came, and sends exactly those from `from` on, then the rest live", async () => {
    const overs: string[] = [];
    const stream = new ResumableStream("r", 5, "m", USAGE, (why) => overs.push(why));
    const sink = stream.sink();
    sink.token("r", 5, 0);
    sink.token("r", 6, 0);
    const url = await serve((res, u) => {
      stream.attach(res, Number(u.searchParams.get("from")));
      sink.token("r", 7, 0);
      sink.finish({ requestId: "r", outcome: Outcome.completed, outputTokens: 8, firstTokenAtMs: 0, finishedAtMs: 1 });
    });
    const { events, done } = await readAll(await fetch(`${url}/?from=6`));
    expect(texts(events)).toEqual([placeholderToken(6), placeholderToken(7)]);
    expect(events.at(-1)).toMatchObject({ choices: [{ finish_reason: "length" }], usage: USAGE });
    expect(done).toBe(true);
    expect(overs).toEqual(["ended"]);
  });

  it("refuses a `from` before its first token (those came from the source) or past the end", () => {
    const stream = new ResumableStream("r", 5, "m", USAGE, () => {});
    const res = {} as ServerResponse;
    expect(() => stream.attach(res, 4)).toThrow(ResumeError);
    expect(() => stream.attach(res, 11)).toThrow(/past the request's 10 tokens/);
    expect(stream.attached).toBe(false);
  });

  it("ends with a migrated event (no [DONE]) when the request moves on again", async () => {
    const stream = new ResumableStream("r", 2, "m", USAGE, () => {});
    const sink = stream.sink();
    const url = await serve((res) => {
      stream.attach(res, 2);
      sink.token("r", 2, 0);
      sink.migrated!("r", { destination: "w3", nextTokenIndex: 3, atMs: 0, engineUrl: "http://h:2/instances/u3" });
    });
    const { events, done } = await readAll(await fetch(url));
    expect(texts(events)).toEqual([placeholderToken(2)]);
    expect(events.at(-1)).toEqual({
      object: "gpufleet.migrated",
      request_id: "r",
      instance: "w3",
      engine_url: "http://h:2/instances/u3",
      next_token_index: 3,
    });
    expect(done).toBe(false);
  });

  it("gives a request nobody resumes up after the attach timeout", async () => {
    const overs: string[] = [];
    new ResumableStream("r", 1, "m", USAGE, (why) => overs.push(why), 20);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(overs).toEqual(["abandoned"]);
  });
});

describe("SseWriter", () => {
  it("sends the headers at once and a keep-alive comment while no token comes", async () => {
    let writer: SseWriter | undefined;
    const url = await serve((res) => {
      writer = new SseWriter(res, "r", "m", 20);
      writer.open();
    });
    const response = await fetch(url);
    // Headers arrived before any token: a queued request is not a silent instance.
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    await new Promise((resolve) => setTimeout(resolve, 70));
    writer!.finish("length", USAGE);
    const { raw, done } = await readAll(response);
    expect(raw.startsWith(SSE_HEARTBEAT)).toBe(true);
    expect(done).toBe(true);
  });
});
