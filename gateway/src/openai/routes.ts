/**
 * The OpenAI-compatible endpoints: body and header validation, model routing, and the response in the client's
 * format (text_completion or chat.completion, streamed as SSE or whole). Response headers wait for the first token,
 * so every failure before it is a proper HTTP status; after it, an SSE `data: {"error": ...}` event and the end of
 * the stream.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import {
  EngineHeader,
  estimateTokens,
  parsePriority,
  type FinishReason,
  type Usage,
} from "../../../common/src/engine-api.js";
import type { DispatchExecutor, CompletionEvent } from "../dispatch/executor.js";
import { CallCancelledError } from "../dispatch/upstream.js";
import type { InstanceView } from "../instances/view.js";
import type { Logger } from "../logger.js";
import type { GatewayMetrics } from "../metrics.js";
import { badRequest, ErrorCode, GatewayError, modelNotFound, toGatewayError } from "./errors.js";
import { SSE_DONE, sseData } from "./sse.js";
import { Endpoint, parseRequest, type NormalizedRequest, type ValidationLimits } from "./validation.js";

export interface RouteDeps {
  view: InstanceView;
  executor: DispatchExecutor;
  metrics: GatewayMetrics;
  logger: Logger;
  limits: ValidationLimits & { maxBodyBytes: number };
  now: () => number;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers[EngineHeader.requestId];
  return typeof given === "string" && REQUEST_ID.test(given) ? given : `req-${randomUUID()}`;
}

export async function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new GatewayError(413, ErrorCode.bodyTooLarge, `the body exceeds ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    throw new GatewayError(400, ErrorCode.invalidJson, "the body is not valid JSON", {}, { cause: error });
  }
}

export function sendError(res: ServerResponse, error: GatewayError): void {
  if (res.headersSent) return;
  res.writeHead(error.status, { "content-type": "application/json", ...error.headers() });
  res.end(JSON.stringify(error.body()));
}

export function modelsResponse(view: InstanceView, nowMs: number): object {
  return {
    object: "list",
    data: view.routes(nowMs).map((r) => ({
      id: r.model,
      object: "model",
      created: Math.floor(r.lastSeenMs / 1000),
      owned_by: "gpufleet",
      gpufleet: { servingDeployments: r.servingDeployments, mode: r.mode, instances: r.instances },
    })),
  };
}

/** Writes with back-pressure; resolves false when the client is gone. */
function write(res: ServerResponse, text: string): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (res.write(text)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on("drain", onDrain);
    res.on("close", onClose);
  });
}

class Formatter {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);
  constructor(
    private readonly r: NormalizedRequest,
    requestId: string,
  ) {
    this.id = `${r.endpoint === Endpoint.chat ? "chatcmpl" : "cmpl"}-${requestId}`;
  }
  private base(object: string) {
    return { id: this.id, object, created: this.created, model: this.r.model };
  }
  first(): string | undefined {
    return this.r.endpoint === Endpoint.chat
      ? sseData({
          ...this.base("chat.completion.chunk"),
          choices: [{ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }],
        })
      : undefined;
  }
  token(text: string): string {
    return this.r.endpoint === Endpoint.chat
      ? sseData({
          ...this.base("chat.completion.chunk"),
          choices: [{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }],
        })
      : sseData({
          ...this.base("text_completion"),
          choices: [{ index: 0, text, logprobs: null, finish_reason: null }],
        });
  }
  finish(reason: FinishReason, usage: Usage): string {
    const last =
      this.r.endpoint === Endpoint.chat
        ? sseData({
            ...this.base("chat.completion.chunk"),
            choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: reason }],
          })
        : sseData({
            ...this.base("text_completion"),
            choices: [{ index: 0, text: "", logprobs: null, finish_reason: reason }],
          });
    const usageChunk = this.r.includeUsage
      ? sseData({
          ...this.base(this.r.endpoint === Endpoint.chat ? "chat.completion.chunk" : "text_completion"),
          choices: [],
          usage,
        })
      : "";
    return last + usageChunk + SSE_DONE;
  }
  whole(text: string, reason: FinishReason, usage: Usage): object {
    return this.r.endpoint === Endpoint.chat
      ? {
          ...this.base("chat.completion"),
          choices: [{ index: 0, message: { role: "assistant", content: text }, logprobs: null, finish_reason: reason }],
          usage,
        }
      : {
          ...this.base("text_completion"),
          choices: [{ index: 0, text, logprobs: null, finish_reason: reason }],
          usage,
        };
  }
}

/** POST /v1/completions and /v1/chat/completions. `signal` fires on shutdown after the grace period. */
export async function handleCompletion(
  deps: RouteDeps,
  endpoint: Endpoint,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  shutdown: AbortSignal,
): Promise<void> {
  const started = deps.now();
  let model = "";
  let code = 200;
  const instances: string[] = [];
  let tokens = 0;
  let firstTokenMs: number | undefined;
  let lastTokenMs: number | undefined;
  const client = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) client.abort();
  };
  res.on("close", onClose);
  const onShutdown = () => client.abort();
  shutdown.addEventListener("abort", onShutdown, { once: true });
  let inFlight = false;
  try {
    const priority = parsePriority(req.headers[EngineHeader.priority] as string | undefined);
    if (!priority) throw badRequest(`${EngineHeader.priority} must be high or normal`, EngineHeader.priority);
    const body = await readJsonBody(req, deps.limits.maxBodyBytes);
    const parsed = parseRequest(endpoint, body, deps.limits);
    if (!parsed.ok) throw parsed.error;
    const r = parsed.request;
    model = r.model;
    const route = deps.view.route(r.model, deps.now());
    if (!route?.mode) throw modelNotFound(r.model);
    deps.metrics.inFlight.inc({ model });
    inFlight = true;
    const format = new Formatter(r, requestId);
    const events = deps.executor.run(
      {
        requestId,
        model: r.model,
        prompt: r.prompt,
        promptTokens: estimateTokens(r.prompt),
        maxTokens: r.maxTokens,
        priority,
        sampling: r.sampling,
        stream: r.stream,
      },
      client.signal,
      route.mode,
    );
    let text = "";
    let done: Extract<CompletionEvent, { type: "done" }> | undefined;
    try {
      for await (const event of events) {
        if (event.type === "instance") instances.push(`${event.role}:${event.instanceId}`);
        else if (event.type === "reset") {
          text = "";
          tokens = 0;
        } else if (event.type === "token") {
          tokens += 1;
          lastTokenMs = deps.now();
          if (firstTokenMs === undefined) {
            firstTokenMs = lastTokenMs;
            deps.metrics.ttftSeconds.observe({ model }, (firstTokenMs - started) / 1000);
          }
          if (!r.stream) {
            text += event.text;
            continue;
          }
          if (!res.headersSent) {
            res.writeHead(200, {
              "content-type": "text/event-stream",
              "cache-control": "no-cache",
              connection: "keep-alive",
              [EngineHeader.requestId]: requestId,
              "x-gpufleet-instance": instances.join(","),
            });
            const first = format.first();
            if (first) await write(res, first);
          }
          if (!(await write(res, format.token(event.text)))) throw new CallCancelledError("client closed the stream");
        } else done = event;
      }
    } catch (error) {
      if (!res.headersSent || error instanceof CallCancelledError) throw error;
      // After the first token: one error event, then the end of the stream (no [DONE]).
      const failure = toGatewayError(error);
      code = failure.status;
      deps.metrics.errorsTotal.inc({ model, code: failure.code });
      deps.logger.warn({ requestId, model, instances, tokens, err: error }, "stream failed after it started");
      await write(res, sseData(failure.body()));
      res.end();
      return;
    }
    if (!done) throw new GatewayError(502, ErrorCode.upstreamFailed, "the completion ended without a result");
    if (done.usage.completion_tokens > 1 && firstTokenMs !== undefined && lastTokenMs !== undefined) {
      deps.metrics.tpotSeconds.observe(
        { model },
        (lastTokenMs - firstTokenMs) / 1000 / (done.usage.completion_tokens - 1),
      );
    }
    if (r.stream) {
      if (!res.headersSent)
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          [EngineHeader.requestId]: requestId,
          "x-gpufleet-instance": instances.join(","),
        });
      await write(res, format.finish(done.finishReason, done.usage));
      res.end();
    } else {
      res.writeHead(200, {
        "content-type": "application/json",
        [EngineHeader.requestId]: requestId,
        "x-gpufleet-instance": instances.join(","),
      });
      res.end(JSON.stringify(format.whole(text, done.finishReason, done.usage)));
    }
  } catch (error) {
    if (error instanceof CallCancelledError || client.signal.aborted) {
      const byShutdown = shutdown.aborted;
      code = byShutdown ? 503 : 499;
      deps.metrics.errorsTotal.inc({ model, code: byShutdown ? ErrorCode.shuttingDown : "client_closed" });
      if (byShutdown) {
        const failure = new GatewayError(503, ErrorCode.shuttingDown, "the gateway is shutting down");
        if (res.headersSent) await write(res, sseData(failure.body()));
        else sendError(res, failure);
      }
      res.end();
    } else {
      const failure = toGatewayError(error);
      code = failure.status;
      deps.metrics.errorsTotal.inc({ model, code: failure.code });
      if (failure.status >= 500) deps.logger.warn({ requestId, model, err: error }, "request failed");
      if (res.headersSent) {
        await write(res, sseData(failure.body()));
        res.end();
      } else {
        res.setHeader(EngineHeader.requestId, requestId);
        sendError(res, failure);
      }
    }
  } finally {
    res.off("close", onClose);
    shutdown.removeEventListener("abort", onShutdown);
    if (inFlight) deps.metrics.inFlight.dec({ model });
    deps.metrics.requestsTotal.inc({ model, endpoint, code: String(code) });
    deps.logger.info(
      {
        requestId,
        model,
        endpoint,
        code,
        instances,
        tokens,
        durationMs: deps.now() - started,
        ttftMs: firstTokenMs !== undefined ? firstTokenMs - started : undefined,
      },
      "request",
    );
  }
}
