/**
 * Live migration driven from the source side towards a destination that is reached by messages (the engine API
 * over HTTP in the agent: agent/src/simulation/instances/), the same protocol as LiveMigration (migration.ts) runs
 * between two engines in one process: pre-allocation, pre-copy stages while the request keeps decoding, a short
 * stop-and-copy, commit; every abort leaves the source the one owner.
 *
 * What differs from LiveMigration: the destination answers asynchronously and may be unreachable at any step
 * (that is `destination-died`), and time passes by `sleep` on the caller's clock (the agent's wall clock) instead
 * of discrete events. Stage durations are the same `stageMs` over the link the destination computed from both
 * ends (latency + KV bytes over the bandwidth between their nodes). The destination renews its pre-allocation's
 * lease at each stage and frees it by itself when no stage or commit comes in time (a source that vanished).
 *
 * Commit order: the destination adopts the request first; only when it said yes does the source hand the request
 * over (its sink learns where it went: RequestSink.migrated). A commit whose answer is lost leaves the request on
 * the source; the destination's copy has no client and is dropped by the destination when nobody resumes it.
 */
import { blocksForTokens } from "./block-manager.js";
import { RefusalCode, type IncomingMigration, type ServingEngine } from "./engine.js";
import {
  DEFAULT_MIGRATION_CONFIG,
  MigrationAbortCode,
  MigrationPhase,
  StageKind,
  stageMs,
  validateMigrationSetup,
  type MigrationConfig,
  type MigrationLink,
  type MigrationReport,
  type MigrationStage,
} from "./migration.js";
import { RequestStatus } from "./sequence.js";

/** A destination's answer; `unreachable` when it did not answer (gone, or not an instance any more). */
export type RemoteAnswer<T extends object = object> =
  ({ accepted: true } & T) | { accepted: false; reason: string; code: RefusalCode | "unreachable" };

/** What a request needs on the destination at the commit (the rest it has from the pre-allocation). */
export interface HandedRequest {
  requestId: string;
  promptTokens: number;
  maxOutputTokens: number;
  priority: number;
  /** Tokens produced so far: the destination produces token `outputTokens` (0-based) next. */
  outputTokens: number;
  arrivalMs: number;
  firstTokenAtMs: number | undefined;
}

/** The destination as the source sees it. */
export interface MigrationDestination {
  /** Pre-allocation of `spec.tokens` KV positions; the answer names the link the stages cross. */
  reserve(spec: IncomingMigration): Promise<RemoteAnswer<{ link: MigrationLink }>>;
  /** A later stage: grow the pre-allocation to `tokens` positions (renews its lease). */
  grow(requestId: string, tokens: number): Promise<RemoteAnswer>;
  commit(handed: HandedRequest): Promise<RemoteAnswer>;
  /** Abort: free the pre-allocation (best effort; the lease frees it anyway). */
  release(requestId: string): Promise<void>;
}

export interface MigrateOutOptions {
  source: ServingEngine;
  requestId: string;
  destination: MigrationDestination;
  sourceName: string;
  destinationName: string;
  /** Where the request's stream resumes after the commit (told to its sink). */
  destinationUrl?: string;
  config?: Partial<MigrationConfig>;
  now(): number;
  sleep(ms: number): Promise<void>;
}

type Aborted = { code: MigrationAbortCode; reason: string };

/** Runs one migration to its end; the report says whether it committed (and its downtime) or why it aborted. */
export async function migrateOut(o: MigrateOutOptions): Promise<MigrationReport> {
  const config = { ...DEFAULT_MIGRATION_CONFIG, ...o.config };
  const run = new OutgoingMigration(o, config);
  return run.execute();
}

class OutgoingMigration {
  private readonly stages: MigrationStage[] = [];
  private copiedTokens = 0;
  private preemptionsAtStart = 0;
  private reserved = false;
  private readonly startedAtMs: number;
  private link: MigrationLink = { bytesPerSecond: 1, latencyMs: 0 };

  constructor(
    private readonly o: MigrateOutOptions,
    private readonly config: MigrationConfig,
  ) {
    this.startedAtMs = o.now();
  }

  private get engine(): ServingEngine {
    return this.o.source;
  }

  private get blockSize(): number {
    return this.engine.config.blockSizeTokens;
  }

  async execute(): Promise<MigrationReport> {
    const { requestId } = this.o;
    const begun = this.engine.beginMigrationOut(requestId, this.o.now());
    if (!begun.accepted)
      return this.report(MigrationPhase.aborted, { code: MigrationAbortCode.sourceRefused, reason: begun.reason });
    try {
      const outcome = await this.stagesThenCommit();
      if (outcome === "committed") return this.report(MigrationPhase.committed);
      await this.abort();
      return this.report(MigrationPhase.aborted, outcome);
    } catch (err) {
      await this.abort();
      return this.report(MigrationPhase.aborted, {
        code: MigrationAbortCode.aborted,
        reason: `the migration failed: ${(err as Error).message}`,
      });
    }
  }

  private async stagesThenCommit(): Promise<"committed" | Aborted> {
    const { requestId } = this.o;
    const view = this.engine.sourceView(requestId)!;
    this.preemptionsAtStart = view.preemptions;
    const handed = this.engine.peekMigrating(requestId)!;
    let stopNow = this.remainingBlocks(view.kvTokens) <= this.config.stopAndCopyMaxBlocks;
    const first = stopNow ? view.kvTokens : this.completeTokens(view.kvTokens);
    const spec: IncomingMigration = {
      requestId,
      model: this.engine.config.modelName,
      blockSizeTokens: this.blockSize,
      promptTokens: handed.request.promptTokens,
      maxOutputTokens: handed.request.maxOutputTokens,
      tokens: first,
    };
    const reserved = await this.o.destination.reserve(spec);
    if (!reserved.accepted) return refused(reserved, "the destination refused the pre-allocation");
    this.reserved = true;
    validateMigrationSetup(reserved.link, this.config);
    this.link = reserved.link;
    let broken = this.brokenBy(RequestStatus.running);
    if (broken) return broken;
    let toTokens = first;
    for (;;) {
      if (stopNow) return this.stopAndCopy();
      await this.stage(StageKind.preCopy, toTokens);
      broken = this.brokenBy(RequestStatus.running) ?? this.timedOut();
      if (broken) return broken;
      const kvTokens = this.engine.sourceView(requestId)!.kvTokens;
      const preCopies = this.stages.length;
      stopNow =
        this.remainingBlocks(kvTokens) <= this.config.stopAndCopyMaxBlocks || preCopies >= this.config.maxPreCopyStages;
      if (stopNow) continue;
      toTokens = this.completeTokens(kvTokens);
      const grown = await this.o.destination.grow(requestId, toTokens);
      if (!grown.accepted) return refused(grown, "the destination refused the next stage");
      broken = this.brokenBy(RequestStatus.running);
      if (broken) return broken;
    }
  }

  private async stopAndCopy(): Promise<"committed" | Aborted> {
    const { requestId } = this.o;
    // Pause first: the destination's answer takes a round trip, during which a decoding request would write KV
    // beyond what it grants. Paused, the request writes no more: what it holds now is all there is to copy. The
    // round trip is part of the downtime, as it is in a real engine.
    const broken = this.brokenBy(RequestStatus.running);
    if (broken) return broken;
    if (!this.engine.suspendForMigration(requestId))
      return { code: MigrationAbortCode.sourceFinished, reason: "the request could not be paused on the source" };
    const pausedAtMs = this.o.now();
    const kvTokens = this.engine.sourceView(requestId)!.kvTokens;
    const grown = await this.o.destination.grow(requestId, kvTokens);
    if (!grown.accepted) return refused(grown, "the destination refused the stop-and-copy");
    const before = this.brokenBy(RequestStatus.migrating);
    if (before) return before;
    await this.stage(StageKind.stopAndCopy, kvTokens, pausedAtMs);
    const after = this.brokenBy(RequestStatus.migrating) ?? this.timedOut();
    if (after) return after;
    const handed = this.engine.peekMigrating(requestId)!;
    const committed = await this.o.destination.commit({
      requestId,
      promptTokens: handed.request.promptTokens,
      maxOutputTokens: handed.request.maxOutputTokens,
      priority: handed.request.priority,
      outputTokens: handed.outputTokens,
      arrivalMs: handed.arrivalMs,
      firstTokenAtMs: handed.firstTokenAtMs,
    });
    if (!committed.accepted) return refused(committed, "the destination refused the commit");
    this.reserved = false;
    this.nextTokenIndex = handed.outputTokens;
    this.engine.handOver(requestId, {
      destination: this.o.destinationName,
      nextTokenIndex: handed.outputTokens,
      atMs: this.o.now(),
      ...(this.o.destinationUrl ? { engineUrl: this.o.destinationUrl } : {}),
    });
    return "committed";
  }

  private nextTokenIndex: number | undefined;

  private async stage(kind: StageKind, toTokens: number, startMs = this.o.now()): Promise<void> {
    const tokens = Math.max(0, toTokens - this.copiedTokens);
    const kvBytesPerToken = this.engine.config.kvBytesPerToken;
    const durationMs = stageMs(tokens, kvBytesPerToken, this.link);
    const blocks = Math.max(
      0,
      blocksForTokens(toTokens, this.blockSize) - Math.floor(this.copiedTokens / this.blockSize),
    );
    await this.o.sleep(durationMs);
    this.stages.push({
      index: this.stages.length,
      kind,
      startMs,
      endMs: Math.max(this.o.now(), startMs + durationMs),
      fromTokens: this.copiedTokens,
      toTokens,
      blocks,
      bytes: tokens * kvBytesPerToken,
    });
    this.copiedTokens = toTokens;
  }

  private timedOut(): Aborted | undefined {
    return this.o.now() - this.startedAtMs >= this.config.timeoutMs
      ? { code: MigrationAbortCode.timeout, reason: `not committed within ${this.config.timeoutMs} ms` }
      : undefined;
  }

  /** Why the request can no longer migrate (the source side's view), if it cannot. */
  private brokenBy(expected: RequestStatus): Aborted | undefined {
    this.engine.advance(this.o.now(), false);
    if (!this.engine.isAlive)
      return { code: MigrationAbortCode.sourceDied, reason: `the source ${this.o.sourceName} died` };
    const view = this.engine.sourceView(this.o.requestId);
    if (!view || !view.migratingOut)
      return { code: MigrationAbortCode.sourceFinished, reason: "the request ended on the source" };
    if (view.preemptions !== this.preemptionsAtStart)
      return { code: MigrationAbortCode.sourcePreempted, reason: "the source preempted the request (its KV is gone)" };
    if (view.status !== expected)
      return { code: MigrationAbortCode.sourceFinished, reason: `the request is ${view.status} on the source` };
    return undefined;
  }

  private async abort(): Promise<void> {
    this.engine.endMigrationOut(this.o.requestId);
    if (this.reserved) {
      this.reserved = false;
      await this.o.destination.release(this.o.requestId).catch(() => undefined);
    }
  }

  private report(phase: MigrationPhase, abort?: Aborted): MigrationReport {
    const stopAndCopy = this.stages.find((s) => s.kind === StageKind.stopAndCopy);
    return {
      requestId: this.o.requestId,
      source: this.o.sourceName,
      destination: this.o.destinationName,
      phase,
      startedAtMs: this.startedAtMs,
      endedAtMs: this.o.now(),
      stages: [...this.stages],
      downtimeMs: phase === MigrationPhase.committed && stopAndCopy ? stopAndCopy.endMs - stopAndCopy.startMs : 0,
      copiedBlocks: this.stages.reduce((sum, s) => sum + s.blocks, 0),
      copiedBytes: this.stages.reduce((sum, s) => sum + s.bytes, 0),
      ...(this.nextTokenIndex !== undefined ? { nextTokenIndex: this.nextTokenIndex } : {}),
      ...(abort ? { abort } : {}),
    };
  }

  private remainingBlocks(kvTokens: number): number {
    return blocksForTokens(kvTokens, this.blockSize) - Math.floor(this.copiedTokens / this.blockSize);
  }

  private completeTokens(kvTokens: number): number {
    return Math.floor(kvTokens / this.blockSize) * this.blockSize;
  }
}

/** A refusal as the abort it causes: out of memory, the destination gone, or refused for another reason. */
function refused(answer: { reason: string; code: RefusalCode | "unreachable" }, what: string): Aborted {
  const reason = `${what}: ${answer.reason}`;
  if (answer.code === RefusalCode.outOfMemory) return { code: MigrationAbortCode.destinationOutOfMemory, reason };
  if (answer.code === "unreachable" || answer.code === RefusalCode.dead)
    return { code: MigrationAbortCode.destinationDied, reason };
  if (answer.code === RefusalCode.notMigratable) return { code: MigrationAbortCode.leaseExpired, reason };
  return { code: MigrationAbortCode.destinationRefused, reason };
}

/** The acknowledgement text of a migration (the operator reads "downtime N ms" from it: scheduler.ts downtimeOf). */
export function describeMigration(r: MigrationReport): string {
  const moved = `${r.stages.length} stage(s), ${r.copiedBlocks} blocks, ${r.copiedBytes} bytes`;
  if (r.phase === MigrationPhase.committed)
    return `migrated request ${r.requestId} to ${r.destination}: ${moved}, downtime ${r.downtimeMs.toFixed(1)} ms, next token ${r.nextTokenIndex}`;
  return `request ${r.requestId} stays on ${r.source}: ${r.abort?.code ?? "aborted"}: ${r.abort?.reason ?? "no reason"} (after ${moved})`;
}
