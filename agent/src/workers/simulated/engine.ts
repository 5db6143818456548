/**
 * Simulated serving engine (pure, clock passed in; nano-vllm's llm_engine.py loop): requests come in through
 * submit() (or importKv() on a decode worker), the scheduler picks each step, the step takes the time the common
 * latency model gives for that batch (common/src/models/latency.ts, the planner's model), and at the step's end
 * every sequence in it gets its token through its sink. One step runs at a time; a step that ends after the time
 * advance() is given stays in flight until a later call, so tokens are delivered at their modelled times.
 *
 * Roles follow DistServe: a colocated worker prefills and decodes; a prefill worker prefills, samples the first
 * token and then holds the request's KV blocks until exportKv()/releaseKv() (the hand-off); a decode worker only
 * takes requests whose KV it imports (block bookkeeping here; the transfer time is waited out by the HTTP front
 * end before importKv, agent/src/simulation/instances/).
 * Pipeline parallelism is modelled in the step time only: steps do not overlap across stages.
 *
 * Live migration (Llumnix §4.2; the protocol is migration.ts): the source side marks a running request
 * (beginMigrationOut), pauses it for the stop-and-copy (suspendForMigration) and hands it over (handOver); the
 * destination side pre-allocates blocks and a batch slot (reserveIncoming, growIncoming), each grant a lease that
 * the engine itself ends when it is not renewed in time (a stale pre-allocation), and adopts the request at the
 * commit (commitIncoming). At most `maxConcurrentMigrations` migrations in or out at a time.
 */
import type { ForwardBatch, InstanceLatencyModel } from "../../../../common/src/models/latency.js";
import { prefillBatch, decodeBatch } from "../../../../common/src/models/latency.js";
import { BlockManager, blocksForTokens } from "./block-manager.js";
import { Scheduler, type ScheduledStep } from "./scheduler.js";
import {
  Outcome,
  RequestStatus,
  Sequence,
  type KvHandoff,
  type MigratedTo,
  type RequestSink,
  type ServingRequest,
} from "./sequence.js";

export const ServingRole = { prefill: "prefill", decode: "decode", colocated: "colocated" } as const;
export type ServingRole = (typeof ServingRole)[keyof typeof ServingRole];

export interface EngineConfig {
  role: ServingRole;
  modelName: string;
  latency: InstanceLatencyModel;
  kvBytesPerToken: number;
  kvCapacityTokens: number;
  blockSizeTokens: number;
  maxNumSeqs: number;
  maxBatchedTokens: number;
  /** Longest prompt + output a request may ask for (the model's context). */
  maxContextTokens: number;
  /** Live migrations in and out at one time (Llumnix: one). Default 1. */
  maxConcurrentMigrations?: number;
}

export const DEFAULT_MAX_CONCURRENT_MIGRATIONS = 1;
/** Most migration candidates a load report lists (the LoadEntry contract). */
export const MAX_MIGRATION_CANDIDATES = 16;

/** A running request that could live-migrate out (the LoadEntry contract's migrationCandidates). */
export interface MigrationCandidate {
  requestId: string;
  blocks: number;
  priority: number;
  outputTokens: number;
}

export const MigrationDirection = { in: "in", out: "out" } as const;
export type MigrationDirection = (typeof MigrationDirection)[keyof typeof MigrationDirection];

/** What a migration's source side reads of its request at each stage. */
export interface MigrationSourceView {
  status: RequestStatus;
  preemptions: number;
  outputTokens: number;
  /** Positions whose KV is written (prompt + every output token but the newest). */
  kvTokens: number;
  migratingOut: boolean;
}

/** What the destination needs to pre-allocate for an incoming migration. */
export interface IncomingMigration {
  requestId: string;
  model: string;
  blockSizeTokens: number;
  promptTokens: number;
  maxOutputTokens: number;
  /** KV positions to hold now (grown by later stages). */
  tokens: number;
}

/** The request as the source hands it over at the commit. */
export interface MigratingRequest {
  request: Required<ServingRequest>;
  outputTokens: number;
  arrivalMs: number;
  firstTokenAtMs: number | undefined;
  sink: RequestSink;
}

interface IncomingReservation {
  spec: IncomingMigration;
  expiresAtMs: number;
}

/** Why a request was refused: lets an HTTP front end map refusals to status codes without parsing reasons. */
export const RefusalCode = {
  /** Missing id, lengths that are not positive integers, a bad priority or hand-off counts. */
  invalid: "invalid",
  /** The request id is already here. */
  duplicate: "duplicate",
  draining: "draining",
  /** Prompt + output exceed the model's context, the batch token budget or the whole KV cache: it never fits. */
  tooLarge: "too-large",
  /** submit() on a decode worker, importKv() on another role. */
  wrongRole: "wrong-role",
  /** KV of another model or block size. */
  incompatibleKv: "incompatible-kv",
  /** Not enough free KV blocks (or batch slots) for a migration's pre-allocation. */
  outOfMemory: "out-of-memory",
  /** The instance already runs its most concurrent migrations. */
  migrationBusy: "migration-busy",
  /** The request is not here, not running, has no token yet or is already migrating. */
  notMigratable: "not-migratable",
  /** The worker is gone (kill()). */
  dead: "dead",
} as const;
export type RefusalCode = (typeof RefusalCode)[keyof typeof RefusalCode];

export type Admission = { accepted: true } | { accepted: false; reason: string; code: RefusalCode };

export interface EngineLoad {
  queueLength: number;
  runningRequests: number;
  kvCacheUsedFraction: number;
  kvCacheUsedBytes: number;
  ttftMs: number;
  tpotMs: number;
  tokensPerSecond: number;
  kvBlocksTotal: number;
  kvBlocksUsed: number;
  blockSizeTokens: number;
  waitingDemandBlocks: number;
  headOfLineDemandBlocks: number;
  heldKvRequests: number;
  heldKvBlocks: number;
  outstandingPromptTokens: number;
  preemptionsTotal: number;
  /** Running sequences submitted with a priority above the default (the gateway's `high`). */
  highPriorityRunning: number;
  draining: boolean;
  /** Running requests that could migrate out, fewest blocks first, at most MAX_MIGRATION_CANDIDATES. */
  migrationCandidates: MigrationCandidate[];
  /** A live migration in progress on this instance ("out" when both). */
  migrating?: MigrationDirection;
}

interface InFlight {
  step: ScheduledStep;
  startMs: number;
  endMs: number;
}

export class ServingEngine {
  private readonly blocks: BlockManager;
  private readonly scheduler: Scheduler;
  private readonly sequences = new Map<string, Sequence>();
  private readonly incoming = new Map<string, IncomingReservation>();
  private inFlight: InFlight | undefined;
  private alive = true;
  private nowMs: number;
  private accepting = true;
  private lastTtftMs = 0;
  private lastTpotMs = 0;
  private tokensSinceReport = 0;
  private lastReportMs: number;

  constructor(
    readonly config: EngineConfig,
    startMs: number,
  ) {
    this.blocks = new BlockManager(
      Math.floor(config.kvCapacityTokens / config.blockSizeTokens),
      config.blockSizeTokens,
    );
    this.scheduler = new Scheduler(this.blocks, {
      maxNumSeqs: config.maxNumSeqs,
      maxBatchedTokens: config.maxBatchedTokens,
    });
    this.nowMs = startMs;
    this.lastReportMs = startMs;
  }

  get draining(): boolean {
    return !this.accepting;
  }

  get freeBlocks(): number {
    return this.blocks.freeBlocks;
  }

  get queueLength(): number {
    return this.scheduler.waiting.length;
  }

  get runningRequests(): number {
    return this.scheduler.running.length;
  }

  get isAlive(): boolean {
    return this.alive;
  }

  /** End of the step in flight or of the earliest pre-allocation lease: when advance() next has something to do. */
  nextEventMs(): number | undefined {
    const expiry = this.nextLeaseExpiryMs();
    const end = this.inFlight?.endMs;
    if (expiry === undefined) return end;
    return end === undefined ? expiry : Math.min(end, expiry);
  }

  statusOf(requestId: string): RequestStatus | undefined {
    return this.sequences.get(requestId)?.status;
  }

  submit(request: ServingRequest, sink: RequestSink, atMs: number): Admission {
    if (this.config.role === ServingRole.decode)
      return refuse(
        `a decode-role worker takes requests only with their prefilled KV (importKv)`,
        RefusalCode.wrongRole,
      );
    const invalid = this.validate(request) ?? this.admissible(request.promptTokens + request.maxOutputTokens);
    if (invalid) return invalid;
    this.advance(atMs, false);
    this.enqueue(new Sequence({ priority: 0, ...request }, sink, atMs));
    return { accepted: true };
  }

  /** Decode worker: takes a request prefilled elsewhere, allocating blocks for its KV (no prefill runs). */
  importKv(handoff: KvHandoff, sink: RequestSink, atMs: number): Admission {
    if (this.config.role !== ServingRole.decode)
      return refuse(`only a decode-role worker imports KV (this one is ${this.config.role})`, RefusalCode.wrongRole);
    if (handoff.model !== this.config.modelName)
      return refuse(
        `KV of model ${handoff.model} cannot be imported by a ${this.config.modelName} worker`,
        RefusalCode.incompatibleKv,
      );
    if (handoff.blockSizeTokens !== this.config.blockSizeTokens)
      return refuse(
        `block size ${handoff.blockSizeTokens} differs from this worker's ${this.config.blockSizeTokens}`,
        RefusalCode.incompatibleKv,
      );
    const request = {
      requestId: handoff.requestId,
      promptTokens: handoff.promptTokens,
      maxOutputTokens: handoff.maxOutputTokens,
      priority: handoff.priority,
    };
    const invalid = this.validate(request) ?? this.admissible(request.promptTokens + request.maxOutputTokens);
    if (invalid) return invalid;
    if (!(handoff.outputTokens >= 1 && handoff.outputTokens < handoff.maxOutputTokens))
      return refuse(
        `a hand-off needs 1 <= outputTokens < maxOutputTokens, got ${handoff.outputTokens} of ${handoff.maxOutputTokens}`,
        RefusalCode.invalid,
      );
    this.advance(atMs, false);
    const seq = new Sequence(request, sink, atMs, handoff.outputTokens);
    seq.firstTokenAtMs = atMs;
    this.enqueue(seq);
    return { accepted: true };
  }

  /** Prefill worker: the block-level description of a held request's KV (its blocks stay held until releaseKv). */
  exportKv(requestId: string): KvHandoff {
    const seq = this.sequences.get(requestId);
    if (!seq || seq.status !== RequestStatus.holdingKv)
      throw new KvHandoffError(requestId, `is not holding KV here (status ${seq?.status ?? "unknown"})`);
    return {
      requestId,
      promptTokens: seq.request.promptTokens,
      outputTokens: seq.outputTokens,
      maxOutputTokens: seq.request.maxOutputTokens,
      priority: seq.request.priority,
      blocks: this.blocks.blocksOf(requestId),
      blockSizeTokens: this.config.blockSizeTokens,
      kvBytes: seq.kvTokens * this.config.kvBytesPerToken,
      model: this.config.modelName,
    };
  }

  /** Prefill worker: the decode side has the KV (or gave up on it); frees the blocks. Returns how many. */
  releaseKv(requestId: string): number {
    const seq = this.sequences.get(requestId);
    if (!seq || seq.status !== RequestStatus.holdingKv)
      throw new KvHandoffError(requestId, `is not holding KV here (status ${seq?.status ?? "unknown"})`);
    this.sequences.delete(requestId);
    seq.status = RequestStatus.finished;
    return this.blocks.free(requestId);
  }

  /** Cancels a waiting or running request (its sink gets `cancelled`); false when there is none by that id. */
  cancel(requestId: string, atMs: number, reason = "cancelled by the client"): boolean {
    this.advance(atMs);
    const seq = this.sequences.get(requestId);
    if (!seq) return false;
    if (seq.status === RequestStatus.holdingKv) this.blocks.free(seq.id);
    this.finish(seq, Outcome.cancelled, Math.max(atMs, this.nowMs), reason);
    return true;
  }

  /** Stops admitting requests; the queue and the batch run to completion. */
  drain(): void {
    this.accepting = false;
  }

  /** Ends every request here (queued, running, holding KV) with `aborted`; returns their ids. */
  abortAll(reason: string, atMs: number): string[] {
    this.advance(atMs);
    const ids = [...this.sequences.keys()];
    for (const id of ids) {
      const seq = this.sequences.get(id)!;
      if (seq.status === RequestStatus.holdingKv) this.blocks.free(id);
      this.finish(seq, Outcome.aborted, Math.max(atMs, this.nowMs), reason);
    }
    return ids;
  }

  /**
   * Runs the engine up to `toMs`: completes the steps that end by then and starts the next ones. With
   * startAtEnd false no step starts at `toMs` itself: an arrival at that instant joins the step that starts then.
   */
  advance(toMs: number, startAtEnd = true): void {
    for (;;) {
      const expiryMs = this.nextLeaseExpiryMs();
      if (expiryMs !== undefined && expiryMs <= toMs && (!this.inFlight || expiryMs <= this.inFlight.endMs)) {
        if (!this.inFlight) this.nowMs = Math.max(this.nowMs, expiryMs);
        this.expireLeases(expiryMs);
        continue;
      }
      if (this.inFlight) {
        if (this.inFlight.endMs > toMs) return;
        const done = this.inFlight;
        this.inFlight = undefined;
        this.nowMs = done.endMs;
        this.complete(done);
        continue;
      }
      if (this.nowMs > toMs || (!startAtEnd && this.nowMs === toMs)) return;
      const step = this.scheduler.schedule();
      if (!step) {
        this.nowMs = Math.max(this.nowMs, toMs);
        return;
      }
      this.inFlight = { step, startMs: this.nowMs, endMs: this.nowMs + this.stepMs(step) };
    }
  }

  /** Step time from the common latency model: what the planner predicts for exactly this batch. */
  stepMs(step: ScheduledStep): number {
    const batch: ForwardBatch =
      step.kind === "prefill"
        ? prefillBatch(step.sequences.map((s) => s.prefillTokens))
        : decodeBatch(
            step.sequences.length,
            step.sequences.reduce((sum, s) => sum + s.kvTokens, 0),
          );
    return this.config.latency.forward(batch).totalMs;
  }

  /** The worker died: every request here ends `aborted`, every pre-allocation is freed, nothing is admitted again. */
  kill(reason: string, atMs: number): string[] {
    const ended = this.abortAll(reason, atMs);
    for (const id of [...this.incoming.keys()]) this.releaseIncoming(id);
    this.accepting = false;
    this.alive = false;
    return ended;
  }

  // ---- live migration, source side ----

  migrationCandidates(limit = MAX_MIGRATION_CANDIDATES): MigrationCandidate[] {
    if (this.config.role === ServingRole.prefill) return [];
    return this.scheduler.running
      .filter((s) => s.status === RequestStatus.running && !s.migratingOut && s.outputTokens >= 1 && !s.done)
      .map((s) => ({
        requestId: s.id,
        blocks: this.blocks.blocksOf(s.id),
        priority: s.request.priority,
        outputTokens: s.outputTokens,
      }))
      .sort((a, b) => a.blocks - b.blocks || a.requestId.localeCompare(b.requestId))
      .slice(0, limit);
  }

  get migrating(): MigrationDirection | undefined {
    if ([...this.sequences.values()].some((s) => s.migratingOut)) return MigrationDirection.out;
    return this.incoming.size > 0 ? MigrationDirection.in : undefined;
  }

  sourceView(requestId: string): MigrationSourceView | undefined {
    const seq = this.sequences.get(requestId);
    if (!seq) return undefined;
    return {
      status: seq.status,
      preemptions: seq.preemptions,
      outputTokens: seq.outputTokens,
      kvTokens: seq.kvTokens,
      migratingOut: seq.migratingOut,
    };
  }

  /** Marks a running request as migrating out (it keeps decoding until suspendForMigration). */
  beginMigrationOut(requestId: string, atMs: number): Admission {
    this.advance(atMs, false);
    if (!this.alive) return refuse(`the worker is dead`, RefusalCode.dead);
    if (this.config.role === ServingRole.prefill)
      return refuse(
        `a prefill-role worker decodes nothing: its requests leave by the KV hand-off`,
        RefusalCode.wrongRole,
      );
    const seq = this.sequences.get(requestId);
    if (!seq) return refuse(`request ${requestId} is not here`, RefusalCode.notMigratable);
    if (seq.migratingOut) return refuse(`request ${requestId} is already migrating`, RefusalCode.notMigratable);
    if (seq.status !== RequestStatus.running || seq.outputTokens < 1 || seq.done)
      return refuse(
        `request ${requestId} is ${seq.status} with ${seq.outputTokens} tokens: only a decoding request migrates`,
        RefusalCode.notMigratable,
      );
    const busy = this.migrationBusy();
    if (busy) return busy;
    seq.migratingOut = true;
    return { accepted: true };
  }

  /** Source side, on an abort: the request is no longer migrating (and decodes again if it was paused). */
  endMigrationOut(requestId: string): void {
    const seq = this.sequences.get(requestId);
    if (!seq) return;
    seq.migratingOut = false;
    if (seq.status === RequestStatus.migrating) seq.status = RequestStatus.running;
  }

  /**
   * Stop-and-copy: the request keeps its slot and blocks but decodes no more here (a step in flight gives it no token).
   */
  suspendForMigration(requestId: string): boolean {
    const seq = this.sequences.get(requestId);
    if (!seq || !seq.migratingOut || seq.status !== RequestStatus.running) return false;
    seq.status = RequestStatus.migrating;
    return true;
  }

  /** What the destination adopts at the commit (the request stays here until handOver). */
  peekMigrating(requestId: string): MigratingRequest | undefined {
    const seq = this.sequences.get(requestId);
    if (!seq) return undefined;
    return {
      request: seq.request,
      outputTokens: seq.outputTokens,
      arrivalMs: seq.arrivalMs,
      firstTokenAtMs: seq.firstTokenAtMs,
      sink: seq.sink,
    };
  }

  /** Commit, source side: the request leaves (blocks freed) and its sink learns where it went. */
  handOver(requestId: string, to: MigratedTo): MigratingRequest {
    const seq = this.sequences.get(requestId);
    if (!seq || seq.status !== RequestStatus.migrating)
      throw new MigrationStateError(requestId, `is not paused for migration here (status ${seq?.status ?? "unknown"})`);
    this.scheduler.remove(seq);
    this.sequences.delete(requestId);
    seq.status = RequestStatus.finished;
    seq.sink.migrated?.(requestId, to);
    return {
      request: seq.request,
      outputTokens: seq.outputTokens,
      arrivalMs: seq.arrivalMs,
      firstTokenAtMs: seq.firstTokenAtMs,
      sink: seq.sink,
    };
  }

  // ---- live migration, destination side ----

  hasIncoming(requestId: string): boolean {
    return this.incoming.has(requestId);
  }

  /** Pre-allocation: blocks for `spec.tokens` positions and a batch slot, held for `leaseMs` unless renewed. */
  reserveIncoming(spec: IncomingMigration, atMs: number, leaseMs: number): Admission {
    this.advance(atMs, false);
    if (!this.alive) return refuse(`the worker is dead`, RefusalCode.dead);
    if (this.config.role === ServingRole.prefill)
      return refuse(`a prefill-role worker does not decode: it takes no migrations`, RefusalCode.wrongRole);
    if (spec.model !== this.config.modelName)
      return refuse(
        `KV of model ${spec.model} cannot migrate to a ${this.config.modelName} worker`,
        RefusalCode.incompatibleKv,
      );
    if (spec.blockSizeTokens !== this.config.blockSizeTokens)
      return refuse(
        `block size ${spec.blockSizeTokens} differs from this worker's ${this.config.blockSizeTokens}`,
        RefusalCode.incompatibleKv,
      );
    const request = {
      requestId: spec.requestId,
      promptTokens: spec.promptTokens,
      maxOutputTokens: spec.maxOutputTokens,
    };
    const invalid = this.validate(request) ?? this.admissible(spec.promptTokens + spec.maxOutputTokens);
    if (invalid) return invalid;
    if (this.incoming.has(spec.requestId))
      return refuse(`request ${spec.requestId} is already being migrated here`, RefusalCode.duplicate);
    const busy = this.migrationBusy();
    if (busy) return busy;
    if (this.scheduler.running.length + this.scheduler.reservedSlots >= this.config.maxNumSeqs)
      return refuse(
        `no batch slot: ${this.scheduler.running.length} running and ${this.scheduler.reservedSlots} reserved of max_num_seqs ${this.config.maxNumSeqs}`,
        RefusalCode.outOfMemory,
      );
    if (!this.blocks.canAllocate(spec.tokens))
      return refuse(
        `out of KV memory: ${blocksForTokens(spec.tokens, this.config.blockSizeTokens)} blocks needed, ${this.blocks.freeBlocks} free`,
        RefusalCode.outOfMemory,
      );
    this.blocks.allocate(spec.requestId, spec.tokens);
    this.scheduler.reservedSlots++;
    this.incoming.set(spec.requestId, { spec, expiresAtMs: atMs + leaseMs });
    return { accepted: true };
  }

  /** A later stage: grows the pre-allocation to `tokens` positions and renews its lease. */
  growIncoming(requestId: string, tokens: number, atMs: number, leaseMs: number): Admission {
    this.advance(atMs, false);
    const held = this.incoming.get(requestId);
    if (!held)
      return refuse(
        `no pre-allocation for ${requestId} here (never made, expired or released)`,
        RefusalCode.notMigratable,
      );
    const extra = blocksForTokens(tokens, this.config.blockSizeTokens) - this.blocks.blocksOf(requestId);
    if (extra > this.blocks.freeBlocks)
      return refuse(
        `out of KV memory: ${extra} more blocks needed, ${this.blocks.freeBlocks} free`,
        RefusalCode.outOfMemory,
      );
    this.blocks.grow(requestId, tokens);
    held.spec = { ...held.spec, tokens: Math.max(tokens, held.spec.tokens) };
    held.expiresAtMs = atMs + leaseMs;
    return { accepted: true };
  }

  /** Commit, destination side: the pre-allocation becomes the running request, decoding token `outputTokens` next. */
  commitIncoming(handed: MigratingRequest, sink: RequestSink, atMs: number): Admission {
    this.advance(atMs, false);
    const id = handed.request.requestId;
    const held = this.incoming.get(id);
    if (!held)
      return refuse(`no pre-allocation for ${id} here (never made, expired or released)`, RefusalCode.notMigratable);
    const seq = new Sequence(handed.request, sink, handed.arrivalMs, handed.outputTokens);
    seq.firstTokenAtMs = handed.firstTokenAtMs;
    if (blocksForTokens(seq.kvTokens, this.config.blockSizeTokens) > this.blocks.blocksOf(id))
      return refuse(
        `the pre-allocation of ${this.blocks.blocksOf(id)} blocks does not cover ${seq.kvTokens} KV positions`,
        RefusalCode.outOfMemory,
      );
    this.incoming.delete(id);
    this.scheduler.reservedSlots--;
    this.sequences.set(id, seq);
    this.scheduler.adopt(seq);
    return { accepted: true };
  }

  /** Frees an incoming migration's pre-allocation (abort); returns the blocks freed (0 when there was none). */
  releaseIncoming(requestId: string): number {
    if (!this.incoming.delete(requestId)) return 0;
    this.scheduler.reservedSlots--;
    return this.blocks.free(requestId);
  }

  private migrationBusy(): Admission | undefined {
    const limit = this.config.maxConcurrentMigrations ?? DEFAULT_MAX_CONCURRENT_MIGRATIONS;
    const out = [...this.sequences.values()].filter((s) => s.migratingOut).length;
    if (out + this.incoming.size >= limit)
      return refuse(
        `already ${out} migration(s) out and ${this.incoming.size} in of at most ${limit}`,
        RefusalCode.migrationBusy,
      );
    return undefined;
  }

  private nextLeaseExpiryMs(): number | undefined {
    let min: number | undefined;
    for (const r of this.incoming.values()) if (min === undefined || r.expiresAtMs < min) min = r.expiresAtMs;
    return min;
  }

  /** A pre-allocation whose lease ran out is stale (its source vanished or gave up): free it. */
  private expireLeases(atMs: number): void {
    for (const [id, r] of [...this.incoming]) if (r.expiresAtMs <= atMs) this.releaseIncoming(id);
  }

  load(atMs: number): EngineLoad {
    const windowS = Math.max(1e-3, (atMs - this.lastReportMs) / 1000);
    const tokensPerSecond = this.tokensSinceReport / windowS;
    this.tokensSinceReport = 0;
    this.lastReportMs = atMs;
    const used = this.blocks.usedBlocks;
    const held = [...this.sequences.values()].filter((s) => s.status === RequestStatus.holdingKv);
    const kvCacheUsedBytes =
      [...this.sequences.values()].reduce((sum, s) => sum + (this.blocks.blocksOf(s.id) > 0 ? s.kvTokens : 0), 0) *
      this.config.kvBytesPerToken;
    return {
      queueLength: this.scheduler.waiting.length,
      runningRequests: this.scheduler.running.length,
      kvCacheUsedFraction: this.blocks.totalBlocks > 0 ? used / this.blocks.totalBlocks : 0,
      kvCacheUsedBytes,
      ttftMs: this.lastTtftMs,
      tpotMs: this.lastTpotMs,
      tokensPerSecond,
      kvBlocksTotal: this.blocks.totalBlocks,
      kvBlocksUsed: used,
      blockSizeTokens: this.config.blockSizeTokens,
      waitingDemandBlocks: this.scheduler.waitingDemandBlocks(),
      headOfLineDemandBlocks: this.scheduler.headOfLineDemandBlocks(),
      heldKvRequests: held.length,
      heldKvBlocks: held.reduce((sum, s) => sum + this.blocks.blocksOf(s.id), 0),
      outstandingPromptTokens: this.scheduler.waiting.reduce(
        (sum, s) => sum + (s.needsPrefill ? s.prefillTokens : 0),
        0,
      ),
      preemptionsTotal: this.scheduler.preemptions,
      highPriorityRunning: this.scheduler.running.filter((s) => s.request.priority > 0).length,
      draining: this.draining,
      migrationCandidates: this.migrationCandidates(),
      ...(this.migrating ? { migrating: this.migrating } : {}),
    };
  }

  private validate(r: ServingRequest): Admission | undefined {
    if (typeof r.requestId !== "string" || r.requestId === "")
      return refuse("requestId is required", RefusalCode.invalid);
    if (this.sequences.has(r.requestId)) return refuse(`request ${r.requestId} is already here`, RefusalCode.duplicate);
    for (const [field, value] of [
      ["promptTokens", r.promptTokens],
      ["maxOutputTokens", r.maxOutputTokens],
    ] as const) {
      if (!Number.isInteger(value) || value <= 0)
        return refuse(`${field} must be a positive integer, got ${value}`, RefusalCode.invalid);
    }
    if (r.priority !== undefined && !Number.isFinite(r.priority))
      return refuse(`priority must be a finite number, got ${r.priority}`, RefusalCode.invalid);
    return undefined;
  }

  private admissible(totalTokens: number): Admission | undefined {
    if (!this.alive) return refuse("the worker is dead", RefusalCode.dead);
    if (!this.accepting) return refuse("the worker is draining: it admits no new requests", RefusalCode.draining);
    const tooLarge = (reason: string) => refuse(reason, RefusalCode.tooLarge);
    if (totalTokens > this.config.maxContextTokens)
      return tooLarge(
        `prompt + output of ${totalTokens} tokens exceeds the model's context of ${this.config.maxContextTokens}`,
      );
    if (totalTokens > this.config.maxBatchedTokens)
      return tooLarge(
        `prompt + output of ${totalTokens} tokens exceeds the batch token budget of ${this.config.maxBatchedTokens}`,
      );
    const blocks = blocksForTokens(totalTokens, this.config.blockSizeTokens);
    if (blocks > this.blocks.totalBlocks)
      return tooLarge(
        `a request of ${totalTokens} tokens needs ${blocks} KV blocks, the instance has ${this.blocks.totalBlocks}`,
      );
    return undefined;
  }

  /**
   * Queues a request; the next advance() starts its step at the engine's present time (the arrival, when idle),
   * so requests that arrive at one instant are batched together.
   */
  private enqueue(seq: Sequence): void {
    this.sequences.set(seq.id, seq);
    this.scheduler.add(seq);
  }

  private complete({ step, startMs, endMs }: InFlight): void {
    const live = step.sequences.filter((s) => s.status === RequestStatus.running);
    if (step.kind === "decode") this.lastTpotMs = endMs - startMs;
    let ttftSum = 0;
    let firsts = 0;
    for (const seq of live) {
      seq.outputTokens++;
      this.tokensSinceReport++;
      if (seq.firstTokenAtMs === undefined) {
        seq.firstTokenAtMs = endMs;
        ttftSum += endMs - seq.arrivalMs;
        firsts++;
      }
      seq.sink.token(seq.id, seq.outputTokens - 1, endMs);
      if (seq.done) {
        this.finish(seq, Outcome.completed, endMs);
      } else if (step.kind === "prefill" && this.config.role === ServingRole.prefill) {
        this.scheduler.detachKeepingBlocks(seq);
        seq.status = RequestStatus.holdingKv;
        seq.sink.finish({
          requestId: seq.id,
          outcome: Outcome.prefilled,
          outputTokens: seq.outputTokens,
          firstTokenAtMs: seq.firstTokenAtMs,
          finishedAtMs: endMs,
        });
      }
    }
    if (firsts > 0) this.lastTtftMs = ttftSum / firsts;
  }

  private finish(seq: Sequence, outcome: Outcome, atMs: number, reason?: string): void {
    this.scheduler.remove(seq);
    this.sequences.delete(seq.id);
    seq.status = RequestStatus.finished;
    seq.sink.finish({
      requestId: seq.id,
      outcome,
      outputTokens: seq.outputTokens,
      firstTokenAtMs: seq.firstTokenAtMs,
      finishedAtMs: atMs,
      ...(reason ? { reason } : {}),
    });
  }
}

export class MigrationStateError extends Error {
  override name = "MigrationStateError";
  constructor(
    readonly requestId: string,
    message: string,
  ) {
    super(`request ${requestId} ${message}`);
  }
}

export class KvHandoffError extends Error {
  override name = "KvHandoffError";
  constructor(
    readonly requestId: string,
    message: string,
  ) {
    super(`request ${requestId} ${message}`);
  }
}

const refuse = (reason: string, code: RefusalCode): Admission => ({ accepted: false, reason, code });
