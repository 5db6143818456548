/**
 * The SSE side of one completion on a simulated instance: headers sent at once (the request is admitted, even if
 * it waits in the engine's queue), one `text_completion` chunk per token, the last chunk with finish_reason and
 * usage, then [DONE]; an error event; or the `migrated` control event (common/src/engine-api.ts MigratedEvent).
 *
 * Keep-alive: while no token comes (the request waits in the queue, or a migration pauses it) an SSE comment goes
 * out every `heartbeatMs`, so a client's idle timeout measures whether the instance is alive, not how long the
 * queue is. Comments are no events: OpenAI clients and the gateway's parser skip them.
 */
import type { ServerResponse } from "node:http";
import {
  EngineHeader,
  MIGRATED_OBJECT,
  SSE_DONE,
  sseData,
  type EngineChunk,
  type ErrorBody,
  type FinishReason,
  type MigratedEvent,
  type Usage,
} from "../../../../common/src/engine-api.js";

/** Below the gateway's default idle timeout (30 s) with room for a slow tick. */
export const SSE_HEARTBEAT_MS = 5_000;
export const SSE_HEARTBEAT = ": keep-alive\n\n";

export class SseWriter {
  private readonly created = Math.floor(Date.now() / 1000);
  private heartbeat: NodeJS.Timeout | undefined;
  private wroteSinceBeat = false;
  ended = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly model: string,
    private readonly heartbeatMs = SSE_HEARTBEAT_MS,
  ) {}

  open(extraHeaders: Record<string, string> = {}): void {
    if (this.res.headersSent || this.res.destroyed) return;
    this.res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      [EngineHeader.requestId]: this.requestId,
      ...extraHeaders,
    });
    // Without this, Node sends the headers with the first token: a queued request would look like a dead instance.
    this.res.flushHeaders();
    this.heartbeat = setInterval(() => {
      if (!this.wroteSinceBeat && !this.res.destroyed) this.res.write(SSE_HEARTBEAT);
      this.wroteSinceBeat = false;
    }, this.heartbeatMs);
    this.heartbeat.unref();
    this.res.once("close", () => this.stop());
  }

  token(text: string): void {
    this.write(sseData(this.chunk(text, null)));
  }

  finish(finishReason: FinishReason, usage: Usage): void {
    this.end(sseData(this.chunk("", finishReason, usage)) + SSE_DONE);
  }

  error(body: ErrorBody): void {
    this.end(sseData(body));
  }

  /** The request now lives on another instance: one control event, then the stream ends without [DONE]. */
  migrated(to: { instance: string; engineUrl: string; nextTokenIndex: number }): void {
    const event: MigratedEvent = {
      object: MIGRATED_OBJECT,
      request_id: this.requestId,
      instance: to.instance,
      engine_url: to.engineUrl,
      next_token_index: to.nextTokenIndex,
    };
    this.end(sseData(event));
  }

  chunk(text: string, finishReason: FinishReason | null, usage?: Usage): EngineChunk {
    return {
      id: `cmpl-${this.requestId}`,
      object: "text_completion",
      created: this.created,
      model: this.model,
      choices: [{ index: 0, text, finish_reason: finishReason }],
      ...(usage ? { usage } : {}),
    };
  }

  private write(text: string): void {
    if (this.ended || this.res.destroyed) return;
    this.open();
    this.wroteSinceBeat = true;
    this.res.write(text);
  }

  private end(text: string): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.res.destroyed) {
      this.open();
      this.res.end(text);
    }
    this.stop();
  }

  private stop(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }
}
