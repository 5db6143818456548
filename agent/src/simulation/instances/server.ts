/**
 * The engine API of the simulated serving instances (common/src/engine-api.ts, for real): one HTTP port for the
 * whole agent, each instance under its own base URL (routes.ts). Requests go to the pod's ServingEngine through
 * SimInstance; tokens leave at the engine's modelled step times (the runtime's 20 ms tick delivers them).
 *
 * - POST /v1/completions (colocated): stream (SSE chunks, the last with finish_reason and usage, then [DONE]) or one
 *   JSON answer. Prompt tokens are the contract's estimate (UTF-8 bytes / 4); text is placeholder words (tokens.ts).
 * - POST /gpufleet/v1/prefill (prefill): prefills, answers the first token and a KV handle; the blocks stay held
 *   until the decode side DELETEs them, or HELD_KV_TTL_MS passes without that.
 * - GET /gpufleet/v1/kv/<id> (prefill): the KV's description (kv-transfer.ts); DELETE frees the blocks.
 * - POST /gpufleet/v1/decode (decode): pulls the KV description from the handle's source_url, waits the modelled
 *   transfer time (KV bytes over the link between the two nodes), imports the KV, frees it on the source, and
 *   streams tokens 2..max_tokens. Headers x-gpufleet-kv-transfer-ms and x-gpufleet-kv-link say what was modelled.
 * A client that disconnects before the end cancels the request on the engine (its blocks are freed).
 * Engine-internal prefill→decode hand-offs are only for the synthetic load: requests from here never take that path.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  EngineHeader,
  estimateTokens,
  HealthStatus,
  kvPath,
  parsePriority,
  Priority,
  validateDecodeRequest,
  validateEngineCompletionRequest,
  validatePrefillRequest,
  type HealthResponse,
  type KvHandle,
  type PrefillResponse,
  type Usage,
  type Validation,
} from "../../../../common/src/engine-api.js";
import {
  Outcome,
  RequestStatus,
  type KvHandoff,
  type MigratedTo,
  type RequestResult,
  type RequestSink,
} from "../../workers/simulated/sequence.js";
import { ErrorCode, httpError, kvPullError, refusalError, type HttpError } from "./errors.js";
import type { SimInstance } from "./instance.js";
import { kvLink, kvTransferMs, parseKvDescription, sourceEnd, type KvDescription, type KvLink } from "./kv-transfer.js";
import {
  leaseMs,
  linkEndOf,
  parseCommitBody,
  parseReserveBody,
  parseStageBody,
  type ReserveAnswer,
} from "./migrations.js";
import { ResumableStream, ResumeError } from "./resumable-stream.js";
import { instanceBaseUrl, matchRoute, roleServes, type Route } from "./routes.js";
import { placeholderToken } from "./tokens.js";
import { SseWriter } from "./sse-writer.js";

export interface EngineServerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface EngineServerOptions {
  /** 0: any free port. */
  port: number;
  /** Interface to listen on. */
  bindHost: string;
  /** Host in the instances' engineUrls (what the gateway can reach). */
  advertisedHost: string;
  /** How long a prefill instance holds KV nobody pulled or freed. */
  heldKvTtlMs?: number;
  /** Bound on the decode side's KV pull (the description; the transfer itself is modelled, not waited on here). */
  kvPullTimeoutMs?: number;
  /** How long a migration's pre-allocation outlives the stage it was granted for (MIGRATION_LEASE_GRACE_MS). */
  migrationLeaseGraceMs?: number;
  /** A migrated request nobody resumes within this long is cancelled (resumable-stream.ts). */
  resumeAttachTimeoutMs?: number;
}

export const EngineResponseHeader = {
  kvTransferMs: "x-gpufleet-kv-transfer-ms",
  kvLink: "x-gpufleet-kv-link",
} as const;

export const HELD_KV_TTL_MS = 60_000;
/**
 * A pre-allocation outlives its stage's modelled copy time by this much before the destination frees it. Over
 * HTTP the next message's round trip and both agents' event loops sit in between (a second under load), so the
 * grace is wider than the in-process simulation's 1 s; a source that vanished is still noticed within seconds.
 */
export const MIGRATION_LEASE_GRACE_MS = 5_000;
const MAX_BODY_BYTES = 4 * 2 ** 20;
/** The engine's priority for the contract's `high` (higher runs first among waiting requests). */
const HIGH_PRIORITY = 1;

class BodyError extends Error {
  override name = "BodyError";
  constructor(readonly http: HttpError) {
    super(http.body.error.message);
  }
}

export class EngineServer {
  private readonly server: Server;
  private readonly heldKv = new Map<string, NodeJS.Timeout>();
  /** Migrations into this agent's instances: the link and the KV positions pre-allocated so far. */
  private readonly incoming = new Map<string, { link: KvLink; tokens: number }>();
  /** Migrated requests' streams, until resumed and ended (or abandoned). */
  private readonly resumable = new Map<string, ResumableStream>();
  private origin = "";

  constructor(
    private readonly options: EngineServerOptions,
    private readonly instanceOf: (podUid: string) => SimInstance | undefined,
    private readonly log: EngineServerLog,
  ) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.warn({ err: (err as Error).message, url: req.url }, "engine API request failed");
        if (!res.headersSent)
          send(res, httpError(500, ErrorCode.invalidRequest, `internal error: ${(err as Error).message}`));
        else res.destroy();
      });
    });
  }

  /** Listens; resolves with the port. */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.bindHost, () => resolve());
    });
    const port = (this.server.address() as AddressInfo).port;
    this.origin = `http://${this.options.advertisedHost.includes(":") ? `[${this.options.advertisedHost}]` : this.options.advertisedHost}:${port}`;
    return port;
  }

  /** The engineUrl of a pod's instance (valid once start() resolved). */
  engineUrl(podUid: string): string {
    return instanceBaseUrl(this.origin, podUid);
  }

  async stop(): Promise<void> {
    for (const timer of this.heldKv.values()) clearTimeout(timer);
    this.heldKv.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const pathname = new URL(req.url ?? "/", "http://engine").pathname;
    const matched = matchRoute(req.method ?? "GET", pathname);
    if ("error" in matched) return send(res, matched.error);
    const instance = this.instanceOf(matched.instanceKey);
    if (!instance)
      return send(
        res,
        httpError(
          404,
          ErrorCode.instanceNotFound,
          `no simulated serving instance ${matched.instanceKey} on this agent`,
        ),
      );
    const wrongRole = roleServes(instance.role, matched.route);
    if (wrongRole) return send(res, wrongRole);
    try {
      await this.dispatch(matched.route, instance, req, res);
    } catch (err) {
      if (err instanceof BodyError) return send(res, err.http);
      throw err;
    }
  }

  private dispatch(
    route: Route,
    instance: SimInstance,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> | void {
    switch (route.name) {
      case "health": {
        const body: HealthResponse = {
          status: instance.draining ? HealthStatus.draining : HealthStatus.ok,
          role: instance.role,
          model: instance.modelName,
          instance: instance.workerId,
        };
        return sendJson(res, 200, body);
      }
      case "completions":
        return this.completions(instance, req, res);
      case "prefill":
        return this.prefill(instance, req, res);
      case "decode":
        return this.decode(instance, req, res);
      case "kv-get":
        return this.kvGet(instance, route.requestId, res);
      case "kv-delete":
        return this.kvDelete(instance, route.requestId, res);
      case "migration-reserve":
        return this.migrationReserve(instance, req, res);
      case "migration-stage":
        return this.migrationStage(instance, route.requestId, req, res);
      case "migration-commit":
        return this.migrationCommit(instance, route.requestId, req, res);
      case "migration-release":
        return this.migrationRelease(instance, route.requestId, res);
      case "migration-stream":
        return this.migrationStream(instance, route.requestId, req, res);
    }
  }

  // ---- live migration, destination side (migrations.ts describes the messages) ----

  private async migrationReserve(instance: SimInstance, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parsedWith(parseReserveBody(await readJson(req)));
    const link = kvLink(linkEndOf(body.source), instance.link);
    const lease = leaseMs(
      body.tokens,
      0,
      instance.kvBytesPerToken,
      link,
      this.options.migrationLeaseGraceMs ?? MIGRATION_LEASE_GRACE_MS,
    );
    const spec = {
      requestId: body.request_id,
      model: body.model,
      blockSizeTokens: body.block_size_tokens,
      promptTokens: body.prompt_tokens,
      maxOutputTokens: body.max_output_tokens,
      tokens: body.tokens,
    };
    const admission = instance.reserveIncoming(spec, lease);
    if (!admission.accepted) {
      this.log.info(
        { workerId: instance.workerId, requestId: body.request_id, code: admission.code, reason: admission.reason },
        "migration pre-allocation refused",
      );
      return send(res, refusalError(admission.code, admission.reason));
    }
    this.incoming.set(key(instance, body.request_id), { link, tokens: body.tokens });
    const answer: ReserveAnswer = {
      request_id: body.request_id,
      link: { kind: link.kind, gbps: link.GBps },
      lease_ms: lease,
    };
    sendJson(res, 201, answer, body.request_id);
  }

  private async migrationStage(
    instance: SimInstance,
    requestId: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const body = parsedWith(parseStageBody(await readJson(req)));
    const held = this.heldIncoming(instance, requestId);
    if (!held)
      return send(
        res,
        httpError(
          404,
          ErrorCode.migrationNotFound,
          `no pre-allocation for ${requestId} on ${instance.workerId} (never made, expired or released)`,
        ),
      );
    const lease = leaseMs(
      body.tokens,
      held.tokens,
      instance.kvBytesPerToken,
      held.link,
      this.options.migrationLeaseGraceMs ?? MIGRATION_LEASE_GRACE_MS,
    );
    const admission = instance.growIncoming(requestId, body.tokens, lease);
    if (!admission.accepted) return send(res, refusalError(admission.code, admission.reason));
    held.tokens = Math.max(held.tokens, body.tokens);
    sendJson(res, 200, { request_id: requestId, lease_ms: lease }, requestId);
  }

  private async migrationCommit(
    instance: SimInstance,
    requestId: string,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const body = parsedWith(parseCommitBody(await readJson(req)));
    if (!this.heldIncoming(instance, requestId))
      return send(
        res,
        httpError(
          404,
          ErrorCode.migrationNotFound,
          `no pre-allocation for ${requestId} on ${instance.workerId} (never made, expired or released)`,
        ),
      );
    const k = key(instance, requestId);
    const usage: Usage = {
      prompt_tokens: body.prompt_tokens,
      completion_tokens: body.max_output_tokens,
      total_tokens: body.prompt_tokens + body.max_output_tokens,
    };
    const stream = new ResumableStream(
      requestId,
      body.output_tokens,
      instance.modelName,
      usage,
      (why) => {
        this.resumable.delete(k);
        if (why === "abandoned" && instance.cancel(requestId))
          this.log.warn(
            { workerId: instance.workerId, requestId },
            "migrated request not resumed by any client: cancelled",
          );
      },
      this.options.resumeAttachTimeoutMs,
    );
    const handed = {
      request: {
        requestId,
        promptTokens: body.prompt_tokens,
        maxOutputTokens: body.max_output_tokens,
        priority: body.priority,
      },
      outputTokens: body.output_tokens,
      arrivalMs: body.arrival_ms,
      firstTokenAtMs: body.first_token_at_ms,
      sink: stream.sink(),
    };
    const admission = instance.commitIncoming(handed, handed.sink);
    this.incoming.delete(k);
    if (!admission.accepted) return send(res, refusalError(admission.code, admission.reason));
    this.resumable.set(k, stream);
    this.log.info(
      { workerId: instance.workerId, requestId, nextTokenIndex: body.output_tokens },
      "migrated request adopted",
    );
    sendJson(res, 200, { request_id: requestId, next_token_index: body.output_tokens }, requestId);
  }

  private migrationRelease(instance: SimInstance, requestId: string, res: ServerResponse): void {
    this.incoming.delete(key(instance, requestId));
    if (instance.releaseIncoming(requestId) === 0 && !instance.hasIncoming(requestId)) {
      return send(
        res,
        httpError(404, ErrorCode.migrationNotFound, `no pre-allocation for ${requestId} on ${instance.workerId}`),
      );
    }
    res.writeHead(204).end();
  }

  private migrationStream(instance: SimInstance, requestId: string, req: IncomingMessage, res: ServerResponse): void {
    const stream = this.resumable.get(key(instance, requestId));
    if (!stream)
      return send(
        res,
        httpError(
          404,
          ErrorCode.migrationNotFound,
          `no migrated request ${requestId} to resume on ${instance.workerId}`,
        ),
      );
    const from = Number(new URL(req.url ?? "/", "http://engine").searchParams.get("from") ?? stream.firstIndex);
    try {
      stream.attach(res, from);
    } catch (err) {
      if (err instanceof ResumeError) return send(res, httpError(400, ErrorCode.invalidRequest, err.message, "from"));
      throw err;
    }
    onDisconnect(res, () => {
      if (!stream.ended && instance.cancel(requestId))
        this.log.info(
          { workerId: instance.workerId, requestId },
          "client disconnected from a resumed stream: request cancelled",
        );
    });
  }

  /** The server's record of a pre-allocation the engine still holds (a lapsed lease is forgotten here too). */
  private heldIncoming(instance: SimInstance, requestId: string): { link: KvLink; tokens: number } | undefined {
    const k = key(instance, requestId);
    const held = this.incoming.get(k);
    if (held && !instance.hasIncoming(requestId)) this.incoming.delete(k);
    return instance.hasIncoming(requestId) ? held : undefined;
  }

  private async completions(instance: SimInstance, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parsed(validateEngineCompletionRequest(await readJson(req)));
    checkModel(instance, body.model);
    const priority = priorityOf(req);
    const requestId = headerRequestId(req) ?? `cmpl-${randomUUID()}`;
    const promptTokens = estimateTokens(body.prompt);
    const stream = new CompletionStream(res, requestId, instance.modelName, body.stream === true, {
      prompt_tokens: promptTokens,
      completion_tokens: body.max_tokens,
      total_tokens: promptTokens + body.max_tokens,
    });
    const admission = instance.submit(
      {
        requestId,
        promptTokens,
        maxOutputTokens: body.max_tokens,
        priority: priority === Priority.high ? HIGH_PRIORITY : 0,
      },
      stream.sink(),
    );
    if (!admission.accepted) return send(res, refusalError(admission.code, admission.reason));
    stream.open();
    onDisconnect(res, () => {
      if (!stream.ended && instance.cancel(requestId))
        this.log.info({ workerId: instance.workerId, requestId }, "client disconnected: request cancelled");
    });
  }

  private async prefill(instance: SimInstance, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parsed(validatePrefillRequest(await readJson(req)));
    checkModel(instance, body.model);
    const priority = priorityOf(req);
    const requestId = body.request_id;
    const promptTokens = estimateTokens(body.prompt);
    let firstToken = "";
    let answered = false;
    const sink: RequestSink = {
      token: (_id, index) => {
        if (index === 0) firstToken = placeholderToken(0);
      },
      finish: (result) => {
        answered = true;
        if (result.outcome === Outcome.prefilled) {
          // The client may be gone by now: hold the KV anyway only if someone is there to hand it to.
          if (res.destroyed) {
            instance.releaseKv(requestId);
            return;
          }
          const kv = instance.exportKv(requestId);
          this.holdKv(instance, requestId);
          sendJson(
            res,
            200,
            prefillResponse(body.request_id, promptTokens, firstToken, null, kvHandle(instance, kv)),
            requestId,
          );
        } else if (result.outcome === Outcome.completed) {
          // max_tokens 1: the first token ended the request and its blocks are already free.
          const none: KvHandle = {
            source_url: instance.engineUrl,
            source_instance: instance.workerId,
            request_id: requestId,
            blocks: 0,
            bytes: 0,
            block_size_tokens: instance.blockSizeTokens,
          };
          sendJson(res, 200, prefillResponse(body.request_id, promptTokens, firstToken, "length", none), requestId);
        } else if (result.outcome === Outcome.aborted && !res.destroyed) {
          send(
            res,
            httpError(503, ErrorCode.aborted, `request ${requestId} aborted: ${result.reason ?? "no reason given"}`),
          );
        }
      },
    };
    const admission = instance.submit(
      {
        requestId,
        promptTokens,
        maxOutputTokens: body.max_tokens,
        priority: priority === Priority.high ? HIGH_PRIORITY : 0,
      },
      sink,
    );
    if (!admission.accepted) return send(res, refusalError(admission.code, admission.reason));
    onDisconnect(res, () => {
      if (!answered && instance.cancel(requestId))
        this.log.info(
          { workerId: instance.workerId, requestId },
          "client disconnected during prefill: request cancelled",
        );
    });
  }

  private holdKv(instance: SimInstance, requestId: string): void {
    const key = `${instance.workerId}\u0000${requestId}`;
    clearTimeout(this.heldKv.get(key));
    const ttlMs = this.options.heldKvTtlMs ?? HELD_KV_TTL_MS;
    const timer = setTimeout(() => {
      this.heldKv.delete(key);
      if (instance.statusOf(requestId) !== RequestStatus.holdingKv) return;
      const blocks = instance.releaseKv(requestId);
      this.log.warn(
        { workerId: instance.workerId, requestId, blocks, ttlMs },
        "held KV expired: no decode instance pulled it",
      );
    }, ttlMs);
    timer.unref();
    this.heldKv.set(key, timer);
  }

  private kvGet(instance: SimInstance, requestId: string, res: ServerResponse): void {
    if (instance.statusOf(requestId) !== RequestStatus.holdingKv)
      return send(res, httpError(404, ErrorCode.kvNotFound, `no KV held for ${requestId} on ${instance.workerId}`));
    const kv = instance.exportKv(requestId);
    const link = instance.link;
    const description: KvDescription = {
      request_id: requestId,
      model: kv.model,
      prompt_tokens: kv.promptTokens,
      output_tokens: kv.outputTokens,
      priority: kv.priority,
      blocks: kv.blocks,
      bytes: kv.kvBytes,
      block_size_tokens: kv.blockSizeTokens,
      source: { node: link.nodeName, gpu_model: link.gpuModel, gpus: link.gpus, nic_gbps_per_gpu: link.nicGBpsPerGpu },
    };
    sendJson(res, 200, description, requestId);
  }

  private kvDelete(instance: SimInstance, requestId: string, res: ServerResponse): void {
    if (instance.statusOf(requestId) !== RequestStatus.holdingKv)
      return send(res, httpError(404, ErrorCode.kvNotFound, `no KV held for ${requestId} on ${instance.workerId}`));
    const key = `${instance.workerId}\u0000${requestId}`;
    clearTimeout(this.heldKv.get(key));
    this.heldKv.delete(key);
    instance.releaseKv(requestId);
    res.writeHead(204).end();
  }

  private async decode(instance: SimInstance, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parsed(validateDecodeRequest(await readJson(req)));
    checkModel(instance, body.model);
    const priority = priorityOf(req);
    if (instance.draining)
      return send(res, refusalError("draining", `${instance.workerId} is draining: it admits no new requests`));
    const requestId = body.request_id;
    const { kv } = body;
    const disconnected = new AbortController();
    onDisconnect(res, () => disconnected.abort());

    const pulled = await pullKv(
      kv,
      AbortSignal.any([disconnected.signal, AbortSignal.timeout(this.options.kvPullTimeoutMs ?? 10_000)]),
    );
    if (disconnected.signal.aborted) return;
    if ("error" in pulled) return send(res, pulled.error);
    const description = pulled.description;
    const link = kvLink(sourceEnd(description), instance.link);
    const transferMs = kvTransferMs(description.bytes, link);
    const transferStartMs = instance.nowMs();
    // The KV crosses the link in modelled time; the source keeps its blocks until the decode side has it all.
    await sleep(transferMs, disconnected.signal);
    if (disconnected.signal.aborted) return;

    const handoff: KvHandoff = {
      requestId,
      promptTokens: description.prompt_tokens,
      outputTokens: description.output_tokens,
      maxOutputTokens: body.max_tokens,
      priority: priority === Priority.high ? HIGH_PRIORITY : description.priority,
      blocks: description.blocks,
      blockSizeTokens: description.block_size_tokens,
      kvBytes: description.bytes,
      model: description.model,
    };
    const usage: Usage = {
      prompt_tokens: body.prompt_tokens,
      completion_tokens: body.max_tokens,
      total_tokens: body.prompt_tokens + body.max_tokens,
    };
    const stream = new CompletionStream(
      res,
      requestId,
      instance.modelName,
      body.stream === true,
      usage,
      body.first_token.text,
      {
        [EngineResponseHeader.kvTransferMs]: transferMs.toFixed(3),
        [EngineResponseHeader.kvLink]: link.kind,
      },
    );
    const admission = instance.importKv(handoff, stream.sink(), transferStartMs + transferMs);
    if (!admission.accepted) return send(res, refusalError(admission.code, admission.reason));
    void freeKv(kv).then((status) => {
      if (status !== 204)
        this.log.warn(
          { workerId: instance.workerId, requestId, source: kv.source_url, status },
          "freeing the pulled KV on its prefill instance failed",
        );
    });
    stream.open();
    onDisconnect(res, () => {
      if (!stream.ended && instance.cancel(requestId))
        this.log.info({ workerId: instance.workerId, requestId }, "client disconnected: request cancelled");
    });
  }
}

/**
 * One completion's answer from the engine's sink: SSE chunks as tokens come (stream, sse-writer.ts), or one JSON
 * object at the end. Tokens 0..firstIndex−1 came from elsewhere (the prefill instance): `prefix` is their text.
 * A streamed request can live-migrate away: its stream then ends with the `migrated` event.
 */
class CompletionStream {
  private text: string;
  private readonly sse: SseWriter;
  private nonStreamEnded = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    model: string,
    private readonly streaming: boolean,
    private readonly usage: Usage,
    prefix = "",
    private readonly extraHeaders: Record<string, string> = {},
  ) {
    this.text = prefix;
    this.sse = new SseWriter(res, requestId, model);
  }

  get ended(): boolean {
    return this.sse.ended || this.nonStreamEnded;
  }

  /** Sends the SSE headers (streaming); a non-streamed answer waits for the end. */
  open(): void {
    if (this.streaming) this.sse.open(this.extraHeaders);
  }

  sink(): RequestSink {
    return {
      token: (_id, index) => {
        const token = placeholderToken(index);
        if (this.streaming) this.sse.token(token);
        else this.text += token;
      },
      finish: (result) => this.finish(result),
      // Only a stream can tell its client where the request went; a non-streamed request does not migrate.
      ...(this.streaming
        ? {
            migrated: (_id: string, to: MigratedTo) =>
              this.sse.migrated({
                instance: to.destination,
                engineUrl: to.engineUrl ?? "",
                nextTokenIndex: to.nextTokenIndex,
              }),
          }
        : {}),
    };
  }

  private finish(result: RequestResult): void {
    if (!this.streaming) this.nonStreamEnded = true;
    if (this.res.destroyed) return;
    if (result.outcome === Outcome.completed) {
      if (this.streaming) this.sse.finish("length", this.usage);
      else sendJson(this.res, 200, this.sse.chunk(this.text, "length", this.usage), this.requestId, this.extraHeaders);
      return;
    }
    // Cancelled requests were cancelled here (the client is gone); aborted ones get the reason.
    const error = httpError(
      503,
      ErrorCode.aborted,
      `request ${this.requestId} ${result.outcome}: ${result.reason ?? "no reason given"}`,
    );
    if (this.streaming && this.res.headersSent) this.sse.error(error.body);
    else send(this.res, error);
  }
}

function prefillResponse(
  requestId: string,
  promptTokens: number,
  text: string,
  finishReason: PrefillResponse["finish_reason"],
  kv: KvHandle,
): PrefillResponse {
  return { request_id: requestId, prompt_tokens: promptTokens, first_token: { text }, finish_reason: finishReason, kv };
}

function kvHandle(instance: SimInstance, kv: KvHandoff): KvHandle {
  return {
    source_url: instance.engineUrl,
    source_instance: instance.workerId,
    request_id: kv.requestId,
    blocks: kv.blocks,
    bytes: kv.kvBytes,
    block_size_tokens: kv.blockSizeTokens,
  };
}

async function pullKv(
  kv: KvHandle,
  signal: AbortSignal,
): Promise<{ description: KvDescription } | { error: HttpError }> {
  let response: Response;
  try {
    response = await fetch(`${kv.source_url}${kvPath(kv.request_id)}`, { signal });
  } catch (err) {
    return {
      error: kvPullError(
        undefined,
        kv.source_url,
        kv.request_id,
        ((err as Error).cause as Error | undefined)?.message ?? (err as Error).message,
      ),
    };
  }
  const text = await response.text().catch(() => "");
  if (response.status !== 200)
    return { error: kvPullError(response.status, kv.source_url, kv.request_id, text.slice(0, 200)) };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { error: kvPullError(response.status, kv.source_url, kv.request_id, "the KV description is not JSON") };
  }
  const description = parseKvDescription(value);
  if (typeof description === "string")
    return { error: kvPullError(response.status, kv.source_url, kv.request_id, `bad KV description: ${description}`) };
  if (description.bytes !== kv.bytes || description.blocks !== kv.blocks) {
    return {
      error: kvPullError(
        response.status,
        kv.source_url,
        kv.request_id,
        `the source holds ${description.blocks} blocks / ${description.bytes} bytes, the handle says ${kv.blocks} / ${kv.bytes}`,
      ),
    };
  }
  return { description };
}

async function freeKv(kv: KvHandle): Promise<number | undefined> {
  try {
    const response = await fetch(`${kv.source_url}${kvPath(kv.request_id)}`, {
      method: "DELETE",
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return undefined;
  }
}

function parsed<T>(v: Validation<T>): T {
  if (!v.ok) throw new BodyError(httpError(400, ErrorCode.invalidRequest, v.message, v.param));
  return v.value;
}

function parsedWith<T>(value: T | string): T {
  if (typeof value === "string") throw new BodyError(httpError(400, ErrorCode.invalidRequest, value));
  return value;
}

const key = (instance: SimInstance, requestId: string) => `${instance.workerId}\u0000${requestId}`;

function checkModel(instance: SimInstance, model: string): void {
  if (model !== instance.modelName)
    throw new BodyError(
      httpError(404, ErrorCode.modelNotFound, `this instance serves '${instance.modelName}', not '${model}'`, "model"),
    );
}

function priorityOf(req: IncomingMessage): Priority {
  const header = req.headers[EngineHeader.priority];
  const priority = parsePriority(Array.isArray(header) ? header[0] : header);
  if (!priority)
    throw new BodyError(
      httpError(
        400,
        ErrorCode.invalidRequest,
        `${EngineHeader.priority} must be high or normal, got '${String(header)}'`,
        EngineHeader.priority,
      ),
    );
  return priority;
}

function headerRequestId(req: IncomingMessage): string | undefined {
  const value = req.headers[EngineHeader.requestId];
  const id = Array.isArray(value) ? value[0] : value;
  return id && id.length <= 200 ? id : undefined;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new BodyError(httpError(413, ErrorCode.bodyTooLarge, `request body over ${MAX_BODY_BYTES} bytes`));
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (err) {
    throw new BodyError(httpError(400, ErrorCode.invalidJson, `the body is not JSON: ${(err as Error).message}`));
  }
}

/** Runs `then` once if the client goes away before the response ended. */
function onDisconnect(res: ServerResponse, then: () => void): void {
  res.once("close", () => {
    if (!res.writableFinished) then();
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  requestId?: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res
    .writeHead(status, {
      "content-type": "application/json",
      ...(requestId ? { [EngineHeader.requestId]: requestId } : {}),
      ...headers,
    })
    .end(JSON.stringify(body));
}

function send(res: ServerResponse, error: HttpError): void {
  sendJson(
    res,
    error.status,
    error.body,
    undefined,
    error.retryAfterS !== undefined ? { "retry-after": String(error.retryAfterS) } : {},
  );
}
