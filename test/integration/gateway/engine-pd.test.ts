/**
 * The gateway's prefill→decode hand-off with vLLM (NixlConnector) and SGLang (PD disaggregation) behind it, on the
 * real path: each engine's load adapter (agent/src/engines/sidecar.ts, its own process) reports to the real node
 * agent over its Unix socket, the agent publishes to a real nats-server's JetStream, and the gateway (its own
 * process) learns the instances (engine kind, SGLang's bootstrap port) from those reports and serves OpenAI requests
 * through them.
 *
 * The engines cannot run here (no GPUs, no images): each one is a small HTTP server in this file that checks every
 * request against the shapes the engines' proxies document (gateway/src/dispatch/fixtures/engine-pd-requests.json,
 * with the source URLs), answers as the engine does, and serves a /metrics page with the gauges the adapter reads.
 * What they model of the engines, beyond the documented fields:
 * - vLLM: the decode instance must get exactly the kv_transfer_params its prefill instance answered for the request
 *   (matched by x-request-id, which toy_proxy_server.py sends to both).
 * - SGLang: the prefill instance waits for the decode instance of the same bootstrap room to join, and the decode
 *   instance waits for the prefill's KV, as their bootstrap handshake does: a gateway that sent the halves one after
 *   the other would never get an answer.
 * Both produce the whole completion on the decode instance; the prefill's own token must never reach the client.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../harness/wait.js";
import {
  spawnEngineAdapter,
  startAdapterAgent,
  type AdapterAgent,
  type AdapterProcess,
} from "../../support/engine-adapter.js";
import { readSse, startGatewayProcess, tokensOf, type GatewayProcess } from "../../support/gateway.js";
import { REPO_ROOT } from "../../support/paths.js";
import { startNatsServer, type NatsServer } from "../agent/nats-server.js";

const documented = JSON.parse(
  readFileSync(`${REPO_ROOT}/gateway/src/dispatch/fixtures/engine-pd-requests.json`, "utf8"),
) as {
  vllm: {
    prefillRequest: { set: Record<string, unknown>; absent: string[] };
    prefillAnswer: Record<string, unknown> & {
      choices: Record<string, unknown>[];
      kv_transfer_params: Record<string, unknown>;
    };
    streamChunk: Record<string, unknown>;
    usageChunk: Record<string, unknown>;
  };
  sglang: {
    request: { added: Record<string, string>; bootstrapRoomMax: string };
    streamChunk: Record<string, unknown>;
    usageChunk: Record<string, unknown>;
  };
};

type Kind = "vllm" | "sglang";
type Role = "prefill" | "decode";

const run = Date.now().toString(36);
const MODEL: Record<Kind, string> = { vllm: `vllm-pd-${run}`, sglang: `sglang-pd-${run}` };
/** Not SGLang's default: the port must come from the prefill instance's report. */
const SGLANG_BOOTSTRAP_PORT = 9123;
/** What every fake decode instance generates, one token per chunk. */
const TOKENS = [" Paris", ",", " France", "."];
/** What every fake prefill instance generates as its one token: it must never reach the client. */
const PREFILL_TOKEN = " PREFILL-ONLY";
const PROMPT_TOKENS = 7;
/** A prompt containing this makes the fake prefill instance fail. */
const FAIL = "FAIL-PREFILL";

/** The gauges the adapter needs (the documented pages' mapping is tested in agent/src/engines/engine-load.test.ts). */
const METRICS: Record<Kind, string> = {
  vllm: [
    'vllm:num_requests_running{model_name="m"} 0',
    'vllm:num_requests_waiting{model_name="m"} 0',
    'vllm:kv_cache_usage_perc{model_name="m"} 0.1',
    'vllm:cache_config_info{block_size="16",num_gpu_blocks="20000"} 1',
    "",
  ].join("\n"),
  sglang: [
    'sglang:num_running_reqs{model_name="m"} 0',
    'sglang:num_queue_reqs{model_name="m"} 0',
    'sglang:token_usage{model_name="m"} 0.1',
    'sglang:num_used_tokens{model_name="m"} 10000',
    'sglang:gen_throughput{model_name="m"} 0',
    "",
  ].join("\n"),
};

/** One request a fake engine received. */
interface Received {
  kind: Kind;
  role: Role;
  requestId: string;
  raw: string;
  body: Record<string, unknown>;
  /** SGLang: bootstrap_room's digits exactly as sent. */
  room?: string;
  /** The gateway closed the connection before the answer ended. */
  closedEarly: boolean;
}

const received: Received[] = [];
/** Every way a request differed from the documented shape (asserted empty; each also answered 400). */
const violations: string[] = [];
/** vLLM: the kv_transfer_params each prefill answer carried, by x-request-id. */
const issuedKvParams = new Map<string, Record<string, unknown>>();

/** SGLang bootstrap rooms: who joined, and whether the prefill's KV is ready (or failed). */
interface Room {
  joined: Partial<Record<Role, true>>;
  waiters: (() => void)[];
  kv?: "ready" | "failed";
}
const rooms = new Map<string, Room>();
function room(id: string): Room {
  let r = rooms.get(id);
  if (!r) rooms.set(id, (r = { joined: {}, waiters: [] }));
  return r;
}
function touch(r: Room): void {
  for (const w of r.waiters.splice(0)) w();
}
/** Resolves once `test` holds for the room, false after `timeoutMs` (or when the connection closes). */
function until(r: Room, test: () => boolean, timeoutMs: number, res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const check = () => {
      if (test()) return done(true);
      if (res.destroyed) return done(false);
      r.waiters.push(check);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const onClose = () => done(false);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off("close", onClose);
      resolve(ok);
    };
    res.once("close", onClose);
    check();
  });
}

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;

function chunk(kind: Kind, model: string, text: string, finish: string | null): Record<string, unknown> {
  const template = documented[kind].streamChunk as { choices: Record<string, unknown>[] };
  return { ...template, model, choices: [{ ...template.choices[0], text, finish_reason: finish }] };
}

/** The decode half's answer: TOKENS up to max_tokens, then (with include_usage) the usage chunk and [DONE]. */
async function streamCompletion(kind: Kind, body: Record<string, unknown>, res: ServerResponse): Promise<void> {
  const maxTokens = body.max_tokens as number;
  const tokens = TOKENS.slice(0, maxTokens);
  res.writeHead(200, { "content-type": "text/event-stream" });
  for (const [i, text] of tokens.entries()) {
    const last = i === tokens.length - 1;
    res.write(
      sse(chunk(kind, body.model as string, text, last ? (maxTokens <= TOKENS.length ? "length" : "stop") : null)),
    );
    await new Promise((r) => setTimeout(r, 5));
  }
  if ((body.stream_options as { include_usage?: boolean } | undefined)?.include_usage)
    res.write(
      sse({
        ...documented[kind].usageChunk,
        model: body.model,
        usage: {
          prompt_tokens: PROMPT_TOKENS,
          completion_tokens: tokens.length,
          total_tokens: PROMPT_TOKENS + tokens.length,
        },
      }),
    );
  res.end("data: [DONE]\n\n");
}

function reject(res: ServerResponse, problems: string[]): void {
  violations.push(...problems);
  res
    .writeHead(400, { "content-type": "application/json" })
    .end(JSON.stringify({ error: { message: problems.join("; "), type: "BadRequestError", param: null, code: 400 } }));
}

/** What the documented proxy flow requires of a request to this engine and role. */
function problemsOf(kind: Kind, role: Role, r: Received, bootstrapPort: number): string[] {
  const p: string[] = [];
  const where = `${kind} ${role}`;
  if (r.body.model !== MODEL[kind]) p.push(`${where}: model is ${JSON.stringify(r.body.model)}`);
  if (typeof r.body.prompt !== "string") p.push(`${where}: prompt is not a string`);
  if (!r.requestId) p.push(`${where}: no x-request-id`);
  if (kind === "vllm" && role === "prefill") {
    for (const [field, value] of Object.entries(documented.vllm.prefillRequest.set))
      if (!isDeepStrictEqual(r.body[field], value))
        p.push(`${where}: ${field} is ${JSON.stringify(r.body[field])}, documented ${JSON.stringify(value)}`);
    for (const field of documented.vllm.prefillRequest.absent)
      if (field in r.body) p.push(`${where}: ${field} must not be sent`);
  }
  if (kind === "vllm" && role === "decode") {
    const issued = issuedKvParams.get(r.requestId);
    if (!issued) p.push(`${where}: no prefill answered request ${r.requestId} before its decode`);
    else if (!isDeepStrictEqual(r.body.kv_transfer_params, issued))
      p.push(`${where}: kv_transfer_params ${JSON.stringify(r.body.kv_transfer_params)} are not the prefill's`);
    if (r.body.stream !== true) p.push(`${where}: not streamed`);
  }
  if (kind === "sglang") {
    for (const field of Object.keys(documented.sglang.request.added))
      if (!(field in r.body)) p.push(`${where}: ${field} missing`);
    if (r.body.bootstrap_host !== "127.0.0.1") p.push(`${where}: bootstrap_host ${String(r.body.bootstrap_host)}`);
    if (r.body.bootstrap_port !== bootstrapPort) p.push(`${where}: bootstrap_port ${String(r.body.bootstrap_port)}`);
    if (r.room === undefined || BigInt(r.room) > BigInt(documented.sglang.request.bootstrapRoomMax))
      p.push(`${where}: bootstrap_room is not an integer in [0, 2^63 - 1]: ${r.raw.match(/"bootstrap_room":[^,}]*/)}`);
  }
  return p;
}

async function handleCompletion(kind: Kind, role: Role, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw = "";
  for await (const part of req) raw += (part as Buffer).toString();
  const r: Received = {
    kind,
    role,
    requestId: String(req.headers["x-request-id"] ?? ""),
    raw,
    body: JSON.parse(raw) as Record<string, unknown>,
    closedEarly: false,
  };
  const digits = /"bootstrap_room":(\d+)[,}]/.exec(raw)?.[1];
  if (digits !== undefined) r.room = digits;
  res.on("close", () => (r.closedEarly = !res.writableFinished));
  received.push(r);
  const problems = problemsOf(kind, role, r, SGLANG_BOOTSTRAP_PORT);
  if (problems.length > 0) return reject(res, problems);
  const fails = String(r.body.prompt).includes(FAIL);

  if (kind === "vllm" && role === "prefill") {
    if (fails)
      return void res.writeHead(500, { "content-type": "application/json" }).end(
        JSON.stringify({
          error: { message: "CUDA out of memory", type: "InternalServerError", param: null, code: 500 },
        }),
      );
    const params = {
      ...documented.vllm.prefillAnswer.kv_transfer_params,
      remote_request_id: `${r.requestId}-0`,
      remote_block_ids: [received.length, received.length + 1],
      remote_host: "127.0.0.1",
    };
    issuedKvParams.set(r.requestId, params);
    const answer = documented.vllm.prefillAnswer;
    return void res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        ...answer,
        model: r.body.model,
        choices: [{ ...answer.choices[0], text: PREFILL_TOKEN }],
        kv_transfer_params: params,
      }),
    );
  }
  if (kind === "vllm") return streamCompletion(kind, r.body, res);

  // SGLang: both halves meet in the bootstrap room; the decode half waits for the prefill's KV.
  const bootstrap = room(r.room!);
  bootstrap.joined[role] = true;
  touch(bootstrap);
  const other: Role = role === "prefill" ? "decode" : "prefill";
  if (!(await until(bootstrap, () => bootstrap.joined[other] === true, 5_000, res))) {
    if (!res.destroyed) reject(res, [`sglang ${role}: no ${other} request joined bootstrap room ${r.room} in 5 s`]);
    return;
  }
  if (role === "prefill") {
    bootstrap.kv = fails ? "failed" : "ready";
    touch(bootstrap);
    if (fails)
      return void res
        .writeHead(500, { "content-type": "application/json" })
        .end(
          JSON.stringify({ object: "error", message: "KV transfer failed", type: "InternalServerError", code: 500 }),
        );
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(sse(chunk(kind, r.body.model as string, PREFILL_TOKEN, "length")));
    return void res.end("data: [DONE]\n\n");
  }
  // The decode instance waits for KV; a failed prefill leaves it waiting until the gateway gives up on it.
  if (!(await until(bootstrap, () => bootstrap.kv === "ready", 30_000, res))) return;
  return streamCompletion(kind, r.body, res);
}

async function fakeEngine(kind: Kind, role: Role): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method === "GET" && req.url === "/metrics")
      return void res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(METRICS[kind]);
    if (req.method === "POST" && req.url === "/v1/completions")
      return void handleCompletion(kind, role, req, res).catch((error: Error) => {
        violations.push(`${kind} ${role}: ${error.message}`);
        if (!res.headersSent) res.writeHead(500).end();
      });
    violations.push(`${kind} ${role}: ${req.method} ${req.url} is not an endpoint the engine's proxy uses`);
    res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ detail: "Not Found" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

let nats: NatsServer;
let nc: NatsConnection;
let node: AdapterAgent;
let gateway: GatewayProcess | undefined;
const engines: Server[] = [];
const adapters: AdapterProcess[] = [];

const HALVES: [Kind, Role][] = [
  ["vllm", "prefill"],
  ["vllm", "decode"],
  ["sglang", "prefill"],
  ["sglang", "decode"],
];

interface ModelEntry {
  id: string;
  gpufleet: { mode: string; instances: Record<string, number> };
}
const models = async (): Promise<ModelEntry[]> =>
  ((await (await fetch(`${gateway!.url}/v1/models`)).json()) as { data: ModelEntry[] }).data;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  node = await startAdapterAgent(nc, `pd-node-${run}`);
  for (const [i, [kind, role]] of HALVES.entries()) {
    const engine = await fakeEngine(kind, role);
    engines.push(engine);
    const port = (engine.address() as AddressInfo).port;
    adapters.push(
      spawnEngineAdapter({
        GPUFLEET_ENGINE_KIND: kind,
        GPUFLEET_ENGINE_METRICS_URL: `http://127.0.0.1:${port}/metrics`,
        GPUFLEET_AGENT_SOCKET: node.socketPath,
        POD_IP: "127.0.0.1",
        GPUFLEET_PORT: String(port),
        POD_NAMESPACE: "llm",
        POD_NAME: `${kind}-${role}`,
        POD_UID: `uid-${run}-${i}`,
        NODE_NAME: node.node,
        GPUFLEET_SERVING_DEPLOYMENT: `${kind}-chat`,
        GPUFLEET_ROLE: role,
        GPUFLEET_MODEL: MODEL[kind],
        GPUFLEET_TP: "1",
        GPUFLEET_PP: "1",
        GPUFLEET_GPU_MODEL: "H100-80GB",
        GPUFLEET_ENGINE_SCRAPE_INTERVAL_MS: "200",
        ...(kind === "sglang" && role === "prefill"
          ? { GPUFLEET_ENGINE_BOOTSTRAP_PORT: String(SGLANG_BOOTSTRAP_PORT) }
          : {}),
      }),
    );
  }
  gateway = await startGatewayProcess({
    GPUFLEET_GATEWAY_NATS_URL: nats.url,
    GPUFLEET_GATEWAY_LOG_LEVEL: "info",
    GPUFLEET_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS: "5000",
    GPUFLEET_GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS: "10000",
  });
  await waitFor(
    async () => {
      const list = await models();
      return (Object.keys(MODEL) as Kind[]).every((kind) => {
        const m = list.find((x) => x.id === MODEL[kind]);
        return (
          m?.gpufleet.mode === "disaggregated" &&
          m.gpufleet.instances.prefill === 1 &&
          m.gpufleet.instances.decode === 1
        );
      });
    },
    {
      description: `both engines' prefill and decode instances in the gateway's routes (adapter logs: ${adapters.map((a) => a.log()).join(" | ")})`,
      timeoutMs: 60_000,
    },
  );
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  for (const a of adapters) a.stop();
  await node?.stop();
  await nc?.close();
  await nats?.close();
  await Promise.all(engines.map((e) => new Promise((resolve) => e.close(resolve))));
});

const post = (body: unknown) =>
  fetch(`${gateway!.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** The requests the fake engines got for the gateway's request `requestId`. */
const requestsOf = (requestId: string) => received.filter((r) => r.requestId === requestId);

describe.each(["vllm", "sglang"] as const)("a disaggregated %s deployment behind the gateway", (kind) => {
  it("streams the decode instance's completion, each token once, never the prefill's token", async () => {
    const response = await post({
      model: MODEL[kind],
      prompt: "The capital of France is",
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.status, await response.clone().text()).toBe(200);
    const requestId = response.headers.get("x-request-id")!;
    expect(response.headers.get("x-gpufleet-instance")).toMatch(/^prefill:[^,]+,decode:[^,]+$/);
    const { events, done } = await readSse(response);
    expect(tokensOf(events)).toEqual([" Paris", ",", " France"]);
    expect(done).toBe(true);
    expect(events.at(-2)).toMatchObject({ choices: [{ finish_reason: "length" }] });
    // The decode instance's usage (it was asked for it), in OpenAI's last chunk.
    expect(events.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: PROMPT_TOKENS, completion_tokens: 3, total_tokens: PROMPT_TOKENS + 3 },
    });
    expect(violations).toEqual([]);
    const halves = requestsOf(requestId);
    expect(halves.map((r) => r.role).sort()).toEqual(["decode", "prefill"]);
    const prefill = halves.find((r) => r.role === "prefill")!;
    const decode = halves.find((r) => r.role === "decode")!;
    if (kind === "vllm") {
      expect(prefill.body).toMatchObject({ max_tokens: 1, stream: false });
      expect(decode.body).toMatchObject({ max_tokens: 3, kv_transfer_params: issuedKvParams.get(requestId) });
    } else {
      // One body for both halves, the same room; the room is not one a JSON Number could carry exactly.
      expect(decode.raw).toBe(prefill.raw);
      expect(prefill.body).toMatchObject({ max_tokens: 3, bootstrap_host: "127.0.0.1", bootstrap_port: 9123 });
      expect(prefill.room).toMatch(/^\d+$/);
    }
  });

  it("answers a whole (non-streamed) request with the decode instance's text and usage", async () => {
    const response = await post({ model: MODEL[kind], prompt: "Name the capital of France.", max_tokens: 8 });
    expect(response.status, await response.clone().text()).toBe(200);
    expect(await response.json()).toMatchObject({
      object: "text_completion",
      model: MODEL[kind],
      choices: [{ text: TOKENS.join(""), finish_reason: "stop" }],
      usage: { prompt_tokens: PROMPT_TOKENS, completion_tokens: TOKENS.length },
    });
    expect(violations).toEqual([]);
  });
});

describe("a failed prefill", () => {
  it.each(["vllm", "sglang"] as const)(
    "%s: answers an OpenAI error naming the prefill failure, sends no token, and ends the decode half",
    async (kind) => {
      const response = await post({ model: MODEL[kind], prompt: `${FAIL} please`, max_tokens: 3, stream: true });
      const text = await response.text();
      expect(response.status, text).toBe(503);
      expect(response.headers.get("content-type")).toMatch(/application\/json/);
      const body = JSON.parse(text) as { error: { code: string; type: string; message: string } };
      expect(body.error).toMatchObject({ code: "upstream_failed", type: "server_error" });
      expect(body.error.message).toMatch(
        new RegExp(
          `1 prefill instance\\(s\\) of '${MODEL[kind]}' failed; last: .*answered 500: ${kind === "vllm" ? "CUDA out of memory" : "KV transfer failed"}`,
        ),
      );
      const requestId = response.headers.get("x-request-id")!;
      const decode = requestsOf(requestId).filter((r) => r.role === "decode");
      if (kind === "vllm")
        expect(decode).toEqual([]); // the decode half is only sent with the prefill's KV params
      else {
        // Sent at once with the prefill; the gateway closed it when the prefill failed, before any token.
        expect(decode).toHaveLength(1);
        await waitFor(async () => decode[0]!.closedEarly, { description: "the decode half closed", timeoutMs: 5_000 });
      }
      expect(violations).toEqual([]);
    },
  );
});
