/**
 * Admission: what a request must pass before the gateway does any work for it. In order:
 *  1. the API key, when keys are configured (401, OpenAI's `invalid_api_key`);
 *  2. a completion slot: at most maxInFlight run, at most maxQueued wait (429 + Retry-After when the queue is full;
 *     503 + Retry-After when one waited queueTimeoutMs). A waiting request has not had its body read, so it costs
 *     a socket and its headers, nothing more;
 *  3. while it runs, a response the client stops reading is closed after writeStallTimeoutMs (slow-clients.ts).
 * Node's own limits (request timeout for headers + body, connection cap) are set on the server by applyServerLimits.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Logger } from "../logger.js";
import type { GatewayMetrics } from "../metrics.js";
import { ErrorCode, GatewayError } from "../openai/errors.js";
import { ApiKeys } from "./api-keys.js";
import type { AdmissionConfig } from "./config.js";
import { SlowClientReaper } from "./slow-clients.js";
import { Refusal, SlotRefusedError, Slots } from "./slots.js";

export class Admission {
  private readonly slots: Slots;
  private readonly keys: ApiKeys;
  private readonly reaper: SlowClientReaper;
  private readonly keyRefresh: NodeJS.Timeout | undefined;

  constructor(
    readonly config: AdmissionConfig,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {
    this.slots = new Slots({
      maxInFlight: config.maxInFlight,
      maxQueued: config.maxQueued,
      timeoutMs: config.queueTimeoutMs,
    });
    this.keys = new ApiKeys(config.apiKeysFile);
    this.reaper = new SlowClientReaper(config.writeStallTimeoutMs, (res) => {
      metrics.slowClientsClosedTotal.inc();
      logger.warn(
        { requestId: res.getHeader("x-request-id"), stallMs: config.writeStallTimeoutMs },
        "closing a response the client stopped reading",
      );
    });
    if (this.keys.enabled) {
      logger.info({ keys: this.keys.count, file: config.apiKeysFile }, "API keys required");
      this.keyRefresh = setInterval(() => {
        if (!this.keys.reload())
          logger.warn({ file: config.apiKeysFile }, "API key file unreadable or empty; keeping the keys read before");
      }, config.apiKeysRefreshMs).unref();
    }
    this.publish();
  }

  /** Node's limits on the server: the whole request (headers + body) within requestTimeoutMs, and a connection cap. */
  applyServerLimits(server: Server): void {
    server.requestTimeout = this.config.requestTimeoutMs;
    server.headersTimeout = Math.min(server.headersTimeout, this.config.requestTimeoutMs);
    server.maxConnections = this.config.maxConnections;
  }

  /** A 401 GatewayError when keys are configured and the request presents none of them; undefined to pass. */
  authorize(req: IncomingMessage): GatewayError | undefined {
    const failure = this.keys.check(req.headers);
    if (failure === undefined) return undefined;
    this.metrics.admissionRefusedTotal.inc({ reason: `${failure}_key` });
    return new GatewayError(
      401,
      ErrorCode.unauthorized,
      failure === "missing" ? "an API key is required (Authorization: Bearer <key>)" : "the API key is not valid",
    );
  }

  /**
   * Waits for a completion slot. Resolves with the function that gives it back (idempotent), or with the 429/503
   * GatewayError (Retry-After) to answer when refused; also 503 when the client left while waiting (nobody reads it).
   */
  async enter(res: ServerResponse): Promise<(() => void) | GatewayError> {
    const left = new AbortController();
    const onClose = () => left.abort();
    res.once("close", onClose);
    let release: () => void;
    try {
      const waiting = this.slots.acquire(left.signal);
      this.publish();
      release = await waiting;
    } catch (error) {
      this.publish();
      if (!(error instanceof SlotRefusedError)) throw error;
      this.metrics.admissionRefusedTotal.inc({ reason: error.refusal });
      const status = error.refusal === Refusal.queueFull ? 429 : 503;
      return new GatewayError(status, ErrorCode.overloaded, `the gateway is at capacity: ${error.message}`, {
        retryAfterS: this.config.retryAfterS,
      });
    } finally {
      res.off("close", onClose);
    }
    this.publish();
    const untrack = this.reaper.track(res);
    return () => {
      untrack();
      release();
      this.publish();
    };
  }

  close(): void {
    if (this.keyRefresh) clearInterval(this.keyRefresh);
  }

  private publish(): void {
    this.metrics.admissionSlots.set({ state: "in_flight" }, this.slots.inFlight);
    this.metrics.admissionSlots.set({ state: "queued" }, this.slots.queued);
  }
}
