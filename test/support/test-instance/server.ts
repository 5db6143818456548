/**
 * TEST INSTANCE (a stand-in): a minimal serving instance that implements docs/engine-api.md with placeholder tokens
 * on a fixed token interval; it models no latency, GPU or KV cache beyond block counting. The gateway's integration
 * tests run against the agent's simulated instances and use this only for what those never do: answer 429 (a
 * simulated instance queues what it cannot hold yet, as vLLM does). The gateway benchmark uses it too. Modes for tests:
 * a token interval (slow instances), a running-request limit (answers 429
 * beyond it), and dieAfterTokens (the process dies mid-stream).
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  EngineHeader,
  EnginePath,
  estimateTokens,
  kvPath,
  SSE_DONE,
  sseData,
  validateDecodeRequest,
  validateEngineCompletionRequest,
  validatePrefillRequest,
  type EngineChunk,
  type InstanceLoadFields,
  type InstanceRole,
  type KvHandle,
} from "../../../common/src/engine-api.js";
import type { LoadEntry } from "../../../common/src/telemetry/subjects.js";

export interface TestInstanceOptions {
  id: string;
  role: InstanceRole;
  model: string;
  servingDeployment: string;
  port?: number;
  tokenIntervalMs?: number;
  prefillMs?: number;
  maxRunning?: number;
  kvBlocksTotal?: number;
  blockSizeTokens?: number;
  kvBytesPerToken?: number;
  /** Called once a stream has sent this many tokens (the process entry exits there: a death mid-stream). */
  dieAfterTokens?: number;
  onDie?: () => void;
}

export interface TestInstanceStats {
  completed: number;
  cancelled: number;
  running: number;
  kvPulled: number;
  kvHeld: number;
  requestIds: string[];
}

export interface TestInstance {
  readonly url: string;
  readonly stats: TestInstanceStats;
  loadEntry(nowMs: number): LoadEntry & InstanceLoadFields;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    return undefined;
  }
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { "content-type": "application/json" }).end(
    JSON.stringify({
      error: { message, type: status === 429 ? "rate_limit_error" : "invalid_request_error", code, param: null },
    }),
  );
}

export async function startTestInstance(opts: TestInstanceOptions): Promise<TestInstance> {
  const tokenIntervalMs = opts.tokenIntervalMs ?? 5;
  const blockSizeTokens = opts.blockSizeTokens ?? 16;
  const kvBlocksTotal = opts.kvBlocksTotal ?? 1_000;
  const maxRunning = opts.maxRunning ?? 1_000;
  const stats: TestInstanceStats = { completed: 0, cancelled: 0, running: 0, kvPulled: 0, kvHeld: 0, requestIds: [] };
  const held = new Map<string, { bytes: number; blocks: number }>();
  let blocksUsed = 0;
  let tokensSent = 0;
  let url = "";

  /** Streams tokens first..max on `res` (SSE or one JSON); false if the client closed first. */
  async function generate(
    res: ServerResponse,
    requestId: string,
    prompt: number,
    first: number,
    max: number,
    stream: boolean,
    prefix = "",
  ): Promise<void> {
    const id = `cmpl-${requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const chunk = (
      text: string,
      finish: EngineChunk["choices"][number]["finish_reason"],
      usage?: EngineChunk["usage"],
    ): EngineChunk => ({
      id,
      object: "text_completion",
      created,
      model: opts.model,
      choices: [{ index: 0, text, finish_reason: finish }],
      ...(usage ? { usage } : {}),
    });
    const usage = { prompt_tokens: prompt, completion_tokens: max, total_tokens: prompt + max };
    let closed = false;
    res.on("close", () => (closed = !res.writableFinished));
    const blocks = Math.ceil((prompt + max) / blockSizeTokens);
    blocksUsed += blocks;
    stats.running += 1;
    try {
      if (stream) res.writeHead(200, { "content-type": "text/event-stream", [EngineHeader.requestId]: requestId });
      let text = prefix;
      for (let i = first; i <= max; i++) {
        await sleep(tokenIntervalMs);
        if (closed) {
          stats.cancelled += 1;
          return;
        }
        const token = `tok${i} `;
        text += token;
        if (stream) res.write(sseData(chunk(token, null)));
        tokensSent += 1;
        if (opts.dieAfterTokens !== undefined && tokensSent >= opts.dieAfterTokens) {
          opts.onDie?.();
          res.destroy();
          return;
        }
      }
      stats.completed += 1;
      if (stream) res.end(sseData(chunk("", "length", usage)) + SSE_DONE);
      else
        res
          .writeHead(200, { "content-type": "application/json", [EngineHeader.requestId]: requestId })
          .end(JSON.stringify(chunk(text, "length", usage)));
    } finally {
      stats.running -= 1;
      blocksUsed -= blocks;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://instance").pathname;
    const requestId = String(req.headers[EngineHeader.requestId] ?? "none");
    if (req.method === "GET" && path === EnginePath.health)
      return void res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ status: "ok", role: opts.role, model: opts.model, instance: opts.id }));
    if (req.method === "GET" && path === "/test/stats")
      return void res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stats));
    if (path.startsWith(EnginePath.kvPrefix)) {
      const id = decodeURIComponent(path.slice(EnginePath.kvPrefix.length));
      const kv = held.get(id);
      if (!kv) return sendError(res, 404, "kv_not_found", `no KV held for ${id}`);
      if (req.method === "DELETE") {
        held.delete(id);
        stats.kvHeld = held.size;
        return void res.writeHead(204).end();
      }
      stats.kvPulled += 1;
      return void res.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.alloc(kv.bytes));
    }
    if (req.method !== "POST") return sendError(res, 404, "not_found", `no route ${path}`);
    const body = await readJson(req);
    if (stats.running >= maxRunning)
      return sendError(res, 429, "overloaded", `${opts.id} runs ${stats.running} requests`);
    stats.requestIds.push(requestId);
    if (path === EnginePath.completions && opts.role !== "prefill") {
      const parsed = validateEngineCompletionRequest(body);
      if (!parsed.ok) return sendError(res, 400, "invalid_request", parsed.message);
      return generate(
        res,
        requestId,
        estimateTokens(parsed.value.prompt),
        1,
        parsed.value.max_tokens,
        parsed.value.stream === true,
      );
    }
    if (path === EnginePath.prefill && opts.role === "prefill") {
      const parsed = validatePrefillRequest(body);
      if (!parsed.ok) return sendError(res, 400, "invalid_request", parsed.message);
      await sleep(opts.prefillMs ?? tokenIntervalMs);
      const promptTokens = estimateTokens(parsed.value.prompt);
      const blocks = Math.ceil(promptTokens / blockSizeTokens);
      const bytes = promptTokens * (opts.kvBytesPerToken ?? 64);
      const done = parsed.value.max_tokens === 1;
      if (!done) held.set(parsed.value.request_id, { bytes, blocks });
      stats.kvHeld = held.size;
      const kv: KvHandle = {
        source_url: url,
        source_instance: opts.id,
        request_id: parsed.value.request_id,
        blocks,
        bytes,
        block_size_tokens: blockSizeTokens,
      };
      stats.completed += 1;
      return void res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          request_id: parsed.value.request_id,
          prompt_tokens: promptTokens,
          first_token: { text: "tok1 " },
          finish_reason: done ? "length" : null,
          kv,
        }),
      );
    }
    if (path === EnginePath.decode && opts.role === "decode") {
      const parsed = validateDecodeRequest(body);
      if (!parsed.ok) return sendError(res, 400, "invalid_request", parsed.message);
      const { kv } = parsed.value;
      // Pull the KV from the prefill instance (DistServe's decode-side pull), then free it there.
      const pulled = await fetch(`${kv.source_url}${kvPath(kv.request_id)}`, {
        signal: AbortSignal.timeout(5_000),
      }).catch(() => undefined);
      if (!pulled || pulled.status !== 200)
        return sendError(res, 410, "kv_gone", `KV of ${kv.request_id} is not on ${kv.source_instance}`);
      const bytes = (await pulled.arrayBuffer()).byteLength;
      if (bytes !== kv.bytes) return sendError(res, 502, "kv_incomplete", `pulled ${bytes} of ${kv.bytes} bytes`);
      await fetch(`${kv.source_url}${kvPath(kv.request_id)}`, {
        method: "DELETE",
        signal: AbortSignal.timeout(5_000),
      }).catch(() => undefined);
      return generate(
        res,
        requestId,
        parsed.value.prompt_tokens,
        2,
        parsed.value.max_tokens,
        parsed.value.stream === true,
        parsed.value.first_token.text,
      );
    }
    return sendError(res, 404, "not_found", `${opts.role} instance has no ${path}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, "internal_error", String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", () => resolve()));
  const address = server.address();
  url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;

  return {
    url,
    stats,
    loadEntry(nowMs) {
      const [namespace = "default", name = opts.id] = opts.servingDeployment.split("/");
      return {
        workerId: opts.id,
        podNamespace: namespace,
        podName: `${name}-${opts.id}`,
        unixMs: nowMs,
        queueLength: 0,
        runningRequests: stats.running,
        kvCacheUsedFraction: Math.min(1, blocksUsed / kvBlocksTotal),
        kvCacheUsedBytes: blocksUsed * blockSizeTokens * (opts.kvBytesPerToken ?? 64),
        ttftMs: 0,
        tpotMs: tokenIntervalMs,
        tokensPerSecond: 0,
        engineUrl: url,
        model: opts.model,
        role: opts.role,
        servingDeployment: opts.servingDeployment,
        kvBlocksTotal,
        kvBlocksUsed: Math.min(kvBlocksTotal, blocksUsed),
        blockSizeTokens,
        outstandingPromptTokens: 0,
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
