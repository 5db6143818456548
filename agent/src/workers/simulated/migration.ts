/**
 * Live migration of one running request between two simulated serving engines (pure, clock passed in), as
 * Llumnix (OSDI'24 §4.2) does it:
 * 1. Pre-allocation handshake: the destination reserves blocks (and a batch slot) for the KV about to arrive,
 *    or refuses (out of memory, busy, incompatible, draining): then nothing changes.
 * 2. Pre-copy stages while the request keeps decoding on the source: stage 0 copies every complete block (all but
 *    the one being written); each later stage copies the blocks completed since the previous stage began, the
 *    destination's reservation grown first.
 * 3. Stop-and-copy: once at most `stopAndCopyMaxBlocks` blocks remain (or after `maxPreCopyStages` stages) the
 *    source pauses the request (it keeps its blocks and slot) and the rest, the partial block included, is copied.
 *    Its duration is the migration's downtime.
 * 4. Commit: the destination adopts the request, decoding token `outputTokens` next; the source frees its blocks and
 *    tells the request's sink where it went (RequestSink.migrated).
 * Every abort leaves the source the one owner: the source's request finished, was cancelled or preempted, either
 * side died, the destination refused a stage (out of memory) or let its lease lapse, the migration timed out, or
 * the caller aborted. The destination's reservation is a lease (renewed by each stage): one whose source vanished
 * without an abort is freed by the destination engine itself when the lease ends.
 *
 * Time: a stage takes `link.latencyMs` plus its KV bytes (tokens × kvBytesPerToken) over `link.bytesPerSecond`.
 * Driving: like a ServingEngine, nextEventMs() and advance(toMs). advance() advances both engines to each of its
 * event times before acting (so tokens that end then are delivered first), and again after, so a request it
 * resumed or handed over starts decoding at once; a simulation may advance the engines itself too (advanceAll).
 */
import { blocksForTokens } from "./block-manager.js";
import { RefusalCode, type ServingEngine } from "./engine.js";
import { RequestStatus, type RequestSink } from "./sequence.js";

export interface MigrationLink {
  bytesPerSecond: number;
  /** Per stage: a message's one-way latency plus the handshake (pre-allocation or commit) it carries. */
  latencyMs: number;
}

export interface MigrationConfig {
  /** Stop and copy once at most this many blocks remain to copy (the partial block counts). */
  stopAndCopyMaxBlocks: number;
  /** Pre-copy stages after which the stop-and-copy comes however many blocks remain. */
  maxPreCopyStages: number;
  /** A migration not committed this long after it began is aborted. */
  timeoutMs: number;
  /** How long the destination keeps a pre-allocation past the end of the stage it was granted for. */
  preallocationLeaseMs: number;
}

export const DEFAULT_MIGRATION_CONFIG: MigrationConfig = {
  stopAndCopyMaxBlocks: 2,
  maxPreCopyStages: 8,
  timeoutMs: 10_000,
  preallocationLeaseMs: 1_000,
};

export const MigrationPhase = {
  preCopy: "pre-copy",
  stopAndCopy: "stop-and-copy",
  committed: "committed",
  aborted: "aborted",
} as const;
export type MigrationPhase = (typeof MigrationPhase)[keyof typeof MigrationPhase];

/** Why a migration ended without a commit (the request stays on, or ended on, the source). */
export const MigrationAbortCode = {
  sourceRefused: "source-refused",
  destinationRefused: "destination-refused",
  destinationOutOfMemory: "destination-out-of-memory",
  sourceFinished: "source-finished",
  sourcePreempted: "source-preempted",
  sourceDied: "source-died",
  destinationDied: "destination-died",
  leaseExpired: "lease-expired",
  timeout: "timeout",
  aborted: "aborted",
} as const;
export type MigrationAbortCode = (typeof MigrationAbortCode)[keyof typeof MigrationAbortCode];

export const StageKind = { preCopy: "pre-copy", stopAndCopy: "stop-and-copy" } as const;
export type StageKind = (typeof StageKind)[keyof typeof StageKind];

export interface MigrationStage {
  index: number;
  kind: StageKind;
  startMs: number;
  endMs: number;
  /** KV positions [fromTokens, toTokens) copied. */
  fromTokens: number;
  toTokens: number;
  blocks: number;
  bytes: number;
}

export interface MigrationReport {
  requestId: string;
  source: string;
  destination: string;
  phase: MigrationPhase;
  startedAtMs: number;
  endedAtMs?: number;
  /** Finished stages, then the one in flight (when any). */
  stages: MigrationStage[];
  /** The stop-and-copy's duration (committed migrations; 0 otherwise). */
  downtimeMs: number;
  copiedBlocks: number;
  copiedBytes: number;
  /** Committed: the first token index the destination produces. */
  nextTokenIndex?: number;
  abort?: { code: MigrationAbortCode; reason: string };
}

export class MigrationConfigError extends Error {
  override name = "MigrationConfigError";
}

export function validateMigrationSetup(link: MigrationLink, config: MigrationConfig): void {
  if (!(link.bytesPerSecond > 0) || !Number.isFinite(link.bytesPerSecond))
    throw new MigrationConfigError(`link.bytesPerSecond must be a positive number, got ${link.bytesPerSecond}`);
  if (!(link.latencyMs >= 0) || !Number.isFinite(link.latencyMs))
    throw new MigrationConfigError(`link.latencyMs must be a non-negative number, got ${link.latencyMs}`);
  if (!Number.isInteger(config.stopAndCopyMaxBlocks) || config.stopAndCopyMaxBlocks < 0)
    throw new MigrationConfigError(
      `stopAndCopyMaxBlocks must be a non-negative integer, got ${config.stopAndCopyMaxBlocks}`,
    );
  if (!Number.isInteger(config.maxPreCopyStages) || config.maxPreCopyStages < 1)
    throw new MigrationConfigError(`maxPreCopyStages must be a positive integer, got ${config.maxPreCopyStages}`);
  if (!(config.timeoutMs > 0)) throw new MigrationConfigError(`timeoutMs must be positive, got ${config.timeoutMs}`);
  if (!(config.preallocationLeaseMs > 0))
    throw new MigrationConfigError(`preallocationLeaseMs must be positive, got ${config.preallocationLeaseMs}`);
}

/** Milliseconds to copy `tokens` KV positions in one stage. */
export function stageMs(tokens: number, kvBytesPerToken: number, link: MigrationLink): number {
  return link.latencyMs + (tokens * kvBytesPerToken * 1000) / link.bytesPerSecond;
}

export interface LiveMigrationOptions {
  source: ServingEngine;
  destination: ServingEngine;
  requestId: string;
  link: MigrationLink;
  config?: Partial<MigrationConfig>;
  atMs: number;
  /** Names in reports and in RequestSink.migrated (default "source", "destination"). */
  sourceName?: string;
  destinationName?: string;
  /** Receives the request's tokens after the commit (default: the sink it had on the source). */
  destinationSink?: RequestSink;
  /** Told once, when the migration commits or aborts. */
  onEnd?: (report: MigrationReport) => void;
}

export class LiveMigration {
  readonly requestId: string;
  readonly config: MigrationConfig;
  private readonly source: ServingEngine;
  private readonly destination: ServingEngine;
  private readonly link: MigrationLink;
  private readonly sourceName: string;
  private readonly destinationName: string;
  private readonly startedAtMs: number;
  private phase: MigrationPhase = MigrationPhase.preCopy;
  private readonly stages: MigrationStage[] = [];
  private stage: MigrationStage | undefined;
  private copiedTokens = 0;
  private preemptionsAtStart = 0;
  private endedAtMs: number | undefined;
  private abortInfo: { code: MigrationAbortCode; reason: string } | undefined;
  private nextTokenIndex: number | undefined;

  constructor(private readonly options: LiveMigrationOptions) {
    this.config = { ...DEFAULT_MIGRATION_CONFIG, ...options.config };
    validateMigrationSetup(options.link, this.config);
    this.requestId = options.requestId;
    this.source = options.source;
    this.destination = options.destination;
    this.link = options.link;
    this.sourceName = options.sourceName ?? "source";
    this.destinationName = options.destinationName ?? "destination";
    this.startedAtMs = options.atMs;
    this.begin(options.atMs);
  }

  get state(): MigrationPhase {
    return this.phase;
  }

  get done(): boolean {
    return this.phase === MigrationPhase.committed || this.phase === MigrationPhase.aborted;
  }

  /** The stage's end or the timeout, whichever comes first; undefined once committed or aborted. */
  nextEventMs(): number | undefined {
    if (this.done || !this.stage) return undefined;
    return Math.min(this.stage.endMs, this.deadlineMs);
  }

  advance(toMs: number): void {
    for (;;) {
      if (this.done) return;
      const atMs = this.nextEventMs();
      if (atMs === undefined || atMs > toMs) break;
      this.source.advance(atMs, false);
      this.destination.advance(atMs, false);
      this.onEvent(atMs);
      this.source.advance(atMs);
      this.destination.advance(atMs);
    }
    // Between events: notice at once a source request that ended or a side that died (frees the reservation).
    if (!this.done) this.checkBroken(toMs);
  }

  /** The caller gives up (e.g. a command's deadline); the request stays on the source. False when already over. */
  abort(reason: string, atMs: number): boolean {
    if (this.done) return false;
    this.end(MigrationAbortCode.aborted, reason, atMs);
    return true;
  }

  report(): MigrationReport {
    const all = this.stage && !this.done ? [...this.stages, this.stage] : [...this.stages];
    const stopAndCopy = this.stages.find((s) => s.kind === StageKind.stopAndCopy);
    return {
      requestId: this.requestId,
      source: this.sourceName,
      destination: this.destinationName,
      phase: this.phase,
      startedAtMs: this.startedAtMs,
      ...(this.endedAtMs !== undefined ? { endedAtMs: this.endedAtMs } : {}),
      stages: all,
      downtimeMs: this.phase === MigrationPhase.committed && stopAndCopy ? stopAndCopy.endMs - stopAndCopy.startMs : 0,
      copiedBlocks: this.stages.reduce((sum, s) => sum + s.blocks, 0),
      copiedBytes: this.stages.reduce((sum, s) => sum + s.bytes, 0),
      ...(this.nextTokenIndex !== undefined ? { nextTokenIndex: this.nextTokenIndex } : {}),
      ...(this.abortInfo ? { abort: this.abortInfo } : {}),
    };
  }

  private get deadlineMs(): number {
    return this.startedAtMs + this.config.timeoutMs;
  }

  private get blockSizeTokens(): number {
    return this.source.config.blockSizeTokens;
  }

  private begin(atMs: number): void {
    const begun = this.source.beginMigrationOut(this.requestId, atMs);
    if (!begun.accepted) return this.finishAborted(MigrationAbortCode.sourceRefused, begun.reason, atMs);
    const view = this.source.sourceView(this.requestId)!;
    this.preemptionsAtStart = view.preemptions;
    const handed = this.source.peekMigrating(this.requestId)!;
    const stopNow = this.remainingBlocks(view.kvTokens) <= this.config.stopAndCopyMaxBlocks;
    const toTokens = stopNow ? view.kvTokens : this.completeTokens(view.kvTokens);
    const spec = {
      requestId: this.requestId,
      model: this.source.config.modelName,
      blockSizeTokens: this.blockSizeTokens,
      promptTokens: handed.request.promptTokens,
      maxOutputTokens: handed.request.maxOutputTokens,
      tokens: toTokens,
    };
    const reserved = this.destination.reserveIncoming(spec, atMs, this.leaseFor(atMs, toTokens));
    if (!reserved.accepted) {
      const code =
        reserved.code === RefusalCode.outOfMemory
          ? MigrationAbortCode.destinationOutOfMemory
          : MigrationAbortCode.destinationRefused;
      this.source.endMigrationOut(this.requestId);
      return this.finishAborted(code, `the destination refused the pre-allocation: ${reserved.reason}`, atMs);
    }
    if (stopNow) this.startStopAndCopy(atMs, view.kvTokens);
    else this.startStage(StageKind.preCopy, atMs, toTokens);
  }

  private onEvent(atMs: number): void {
    if (this.checkBroken(atMs)) return;
    if (atMs >= this.deadlineMs)
      return this.end(MigrationAbortCode.timeout, `not committed within ${this.config.timeoutMs} ms`, atMs);
    const finished = this.stage!;
    this.stages.push(finished);
    this.stage = undefined;
    this.copiedTokens = finished.toTokens;
    if (finished.kind === StageKind.stopAndCopy) return this.commit(atMs);
    const view = this.source.sourceView(this.requestId)!;
    const preCopies = this.stages.filter((s) => s.kind === StageKind.preCopy).length;
    if (
      this.remainingBlocks(view.kvTokens) <= this.config.stopAndCopyMaxBlocks ||
      preCopies >= this.config.maxPreCopyStages
    ) {
      return this.startStopAndCopy(atMs, view.kvTokens);
    }
    const toTokens = this.completeTokens(view.kvTokens);
    if (!this.grow(toTokens, atMs)) return;
    this.startStage(StageKind.preCopy, atMs, toTokens);
  }

  private startStopAndCopy(atMs: number, kvTokens: number): void {
    if (!this.grow(kvTokens, atMs)) return;
    this.source.suspendForMigration(this.requestId);
    this.phase = MigrationPhase.stopAndCopy;
    // Paused, the request writes no more KV: what it holds now is all there is to copy.
    this.startStage(StageKind.stopAndCopy, atMs, this.source.sourceView(this.requestId)!.kvTokens);
  }

  private startStage(kind: StageKind, atMs: number, toTokens: number): void {
    const tokens = Math.max(0, toTokens - this.copiedTokens);
    const blocks =
      blocksForTokens(toTokens, this.blockSizeTokens) - Math.floor(this.copiedTokens / this.blockSizeTokens);
    this.stage = {
      index: this.stages.length,
      kind,
      startMs: atMs,
      endMs: atMs + stageMs(tokens, this.source.config.kvBytesPerToken, this.link),
      fromTokens: this.copiedTokens,
      toTokens,
      blocks: Math.max(0, blocks),
      bytes: tokens * this.source.config.kvBytesPerToken,
    };
  }

  /** Grows the destination's pre-allocation (renewing its lease to cover the stage); aborts when refused. */
  private grow(tokens: number, atMs: number): boolean {
    const grown = this.destination.growIncoming(this.requestId, tokens, atMs, this.leaseFor(atMs, tokens));
    if (grown.accepted) return true;
    const code =
      grown.code === RefusalCode.outOfMemory
        ? MigrationAbortCode.destinationOutOfMemory
        : MigrationAbortCode.leaseExpired;
    this.end(code, `the destination refused the next stage: ${grown.reason}`, atMs);
    return false;
  }

  private leaseFor(atMs: number, toTokens: number): number {
    return (
      stageMs(Math.max(0, toTokens - this.copiedTokens), this.source.config.kvBytesPerToken, this.link) +
      this.config.preallocationLeaseMs
    );
  }

  private commit(atMs: number): void {
    const handed = this.source.peekMigrating(this.requestId)!;
    const adopted = this.destination.commitIncoming(handed, this.options.destinationSink ?? handed.sink, atMs);
    if (!adopted.accepted)
      return this.end(
        MigrationAbortCode.destinationRefused,
        `the destination refused the commit: ${adopted.reason}`,
        atMs,
      );
    this.nextTokenIndex = handed.outputTokens;
    this.phase = MigrationPhase.committed;
    this.endedAtMs = atMs;
    this.source.handOver(this.requestId, {
      destination: this.destinationName,
      nextTokenIndex: handed.outputTokens,
      atMs,
    });
    this.options.onEnd?.(this.report());
  }

  /** Aborts when the request or either side is no longer what the migration needs; true when it did. */
  private checkBroken(atMs: number): boolean {
    const broken = this.brokenBy();
    if (!broken) return false;
    this.end(broken.code, broken.reason, atMs);
    return true;
  }

  private brokenBy(): { code: MigrationAbortCode; reason: string } | undefined {
    if (!this.source.isAlive)
      return { code: MigrationAbortCode.sourceDied, reason: `the source ${this.sourceName} died` };
    if (!this.destination.isAlive)
      return { code: MigrationAbortCode.destinationDied, reason: `the destination ${this.destinationName} died` };
    const view = this.source.sourceView(this.requestId);
    if (!view || !view.migratingOut)
      return { code: MigrationAbortCode.sourceFinished, reason: `the request ended on the source` };
    if (view.preemptions !== this.preemptionsAtStart)
      return { code: MigrationAbortCode.sourcePreempted, reason: `the source preempted the request (its KV is gone)` };
    const expected = this.phase === MigrationPhase.stopAndCopy ? RequestStatus.migrating : RequestStatus.running;
    if (view.status !== expected)
      return { code: MigrationAbortCode.sourceFinished, reason: `the request is ${view.status} on the source` };
    if (!this.destination.hasIncoming(this.requestId))
      return {
        code: MigrationAbortCode.leaseExpired,
        reason: `the destination no longer holds the pre-allocation (its lease ran out)`,
      };
    return undefined;
  }

  private end(code: MigrationAbortCode, reason: string, atMs: number): void {
    this.source.endMigrationOut(this.requestId);
    this.destination.releaseIncoming(this.requestId);
    this.finishAborted(code, reason, atMs);
  }

  private finishAborted(code: MigrationAbortCode, reason: string, atMs: number): void {
    if (this.stage) {
      this.stage = undefined; // a stage cut short copied nothing the destination keeps
    }
    this.phase = MigrationPhase.aborted;
    this.abortInfo = { code, reason };
    this.endedAtMs = atMs;
    this.options.onEnd?.(this.report());
  }

  /** Blocks still to copy for a request with `kvTokens` KV positions (the partial block included). */
  private remainingBlocks(kvTokens: number): number {
    return blocksForTokens(kvTokens, this.blockSizeTokens) - Math.floor(this.copiedTokens / this.blockSizeTokens);
  }

  private completeTokens(kvTokens: number): number {
    return Math.floor(kvTokens / this.blockSizeTokens) * this.blockSizeTokens;
  }
}

/** Anything a discrete-event simulation drives: engines and migrations. */
export interface Clocked {
  nextEventMs(): number | undefined;
  advance(toMs: number): void;
}

/**
 * Runs every part to `toMs` event by event: at each earliest event time all parts advance to it (migrations
 * should come before engines in `parts`, so a request they resume or hand over joins the step that starts then).
 */
export function advanceAll(parts: readonly Clocked[], toMs: number): void {
  for (;;) {
    let next: number | undefined;
    for (const p of parts) {
      const at = p.nextEventMs();
      if (at !== undefined && at <= toMs && (next === undefined || at < next)) next = at;
    }
    if (next === undefined) break;
    for (const p of parts) p.advance(next);
  }
  for (const p of parts) p.advance(toMs);
}
