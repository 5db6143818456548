/**
 * A migrated request's stream on its destination: from the commit on, the engine's tokens are kept here until the
 * client (the gateway, told by the source's `migrated` event) opens GET …/migrations/<id>/stream?from=N; then the
 * tokens from N on go out, and the rest as they come, as on any completion stream (sse-writer.ts). Nothing is
 * produced twice and nothing skipped: the client names the first token it does not have.
 *
 * A request nobody resumes (the client went away while the migration committed, or the source lost the commit's
 * answer and kept the request) is cancelled after `attachTimeoutMs`, so a destination never decodes for nobody.
 */
import type { ServerResponse } from "node:http";
import type { Usage } from "../../../../common/src/engine-api.js";
import { Outcome, type MigratedTo, type RequestResult, type RequestSink } from "../../workers/simulated/sequence.js";
import { placeholderToken } from "./tokens.js";
import { SseWriter } from "./sse-writer.js";

export const RESUME_ATTACH_TIMEOUT_MS = 10_000;

export class ResumeError extends Error {
  override name = "ResumeError";
}

export class ResumableStream {
  private readonly buffered: number[] = [];
  private ending: { result: RequestResult } | { migrated: MigratedTo } | undefined;
  private sse: SseWriter | undefined;
  private from = 0;
  private readonly attachTimer: NodeJS.Timeout;

  constructor(
    readonly requestId: string,
    /** The first token index produced here (the source produced the ones before). */
    readonly firstIndex: number,
    private readonly model: string,
    private readonly usage: Usage,
    /** Called once the stream is over here (ended, or abandoned): forget it. */
    private readonly onOver: (reason: "ended" | "abandoned") => void,
    attachTimeoutMs = RESUME_ATTACH_TIMEOUT_MS,
  ) {
    this.attachTimer = setTimeout(() => {
      if (!this.sse) this.onOver("abandoned");
    }, attachTimeoutMs);
    this.attachTimer.unref();
  }

  get attached(): boolean {
    return this.sse !== undefined;
  }

  get ended(): boolean {
    return this.sse?.ended ?? false;
  }

  sink(): RequestSink {
    return {
      token: (_id, index) => {
        if (this.sse) {
          if (index >= this.from) this.sse.token(placeholderToken(index));
        } else {
          this.buffered.push(index);
        }
      },
      finish: (result) => this.end({ result }),
      migrated: (_id, to) => this.end({ migrated: to }),
    };
  }

  /** Sends tokens `from`.. on `res`; throws ResumeError when this instance cannot produce exactly those. */
  attach(res: ServerResponse, from: number): void {
    if (this.sse) throw new ResumeError(`the stream of ${this.requestId} is already being resumed`);
    if (!Number.isInteger(from) || from < this.firstIndex)
      throw new ResumeError(
        `from=${from}: this instance produces ${this.requestId}'s tokens from index ${this.firstIndex} on (the ones before came from the source)`,
      );
    if (from > this.usage.completion_tokens)
      throw new ResumeError(`from=${from} is past the request's ${this.usage.completion_tokens} tokens`);
    clearTimeout(this.attachTimer);
    this.from = from;
    this.sse = new SseWriter(res, this.requestId, this.model);
    this.sse.open();
    for (const index of this.buffered) if (index >= from) this.sse.token(placeholderToken(index));
    this.buffered.length = 0;
    if (this.ending) this.write(this.ending);
  }

  private end(ending: { result: RequestResult } | { migrated: MigratedTo }): void {
    this.ending = ending;
    if (this.sse) this.write(ending);
  }

  private write(ending: { result: RequestResult } | { migrated: MigratedTo }): void {
    const sse = this.sse!;
    if ("migrated" in ending) {
      sse.migrated({
        instance: ending.migrated.destination,
        engineUrl: ending.migrated.engineUrl ?? "",
        nextTokenIndex: ending.migrated.nextTokenIndex,
      });
    } else if (ending.result.outcome === Outcome.completed) {
      sse.finish("length", this.usage);
    } else {
      sse.error({
        error: {
          message: `request ${this.requestId} ${ending.result.outcome}: ${ending.result.reason ?? "no reason given"}`,
          type: "service_unavailable_error",
          code: "aborted",
          param: null,
        },
      });
    }
    this.onOver("ended");
  }
}
