import { describe, expect, it } from "vitest";
import { MODEL_SHAPES } from "../../../../common/src/models/model-shapes.js";
import { ServingEngine, ServingRole, type EngineConfig, type IncomingMigration } from "./engine.js";
import { servingEngineConfig } from "./engine-config.js";
import {
  DEFAULT_MIGRATION_CONFIG,
  MigrationAbortCode,
  MigrationPhase,
  stageMs,
  type MigrationLink,
} from "./migration.js";
import {
  describeMigration,
  migrateOut,
  type HandedRequest,
  type MigrationDestination,
  type RemoteAnswer,
} from "./migration-out.js";
import { Outcome, type MigratedTo, type RequestResult, type RequestSink } from "./sequence.js";

class Recorder implements RequestSink {
  readonly indices: number[] = [];
  readonly results: RequestResult[] = [];
  readonly migrations: MigratedTo[] = [];
  token(_id: string, index: number): void {
    this.indices.push(index);
  }
  finish(result: RequestResult): void {
    this.results.push(result);
  }
  migrated(_id: string, to: MigratedTo): void {
    this.migrations.push(to);
  }
}

const BASE: EngineConfig = servingEngineConfig({
  role: ServingRole.colocated,
  shape: MODEL_SHAPES["Llama-3-8B"],
  parallelism: { tp: 1, pp: 1 },
  gpuModel: "H100-80GB",
});
/** 10 Gbit/s: a 2,000-token stage of Llama-3-8B KV (262 MB) takes ~210 ms. */
const LINK: MigrationLink = { bytesPerSecond: 1.25e9, latencyMs: 0 };
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

/** A virtual clock that moves both engines along when the migration sleeps (the agent's wall clock in production). */
class World {
  nowMs = 0;
  constructor(readonly engines: ServingEngine[]) {}
  now = () => this.nowMs;
  sleep = (ms: number): Promise<void> => {
    this.to(this.nowMs + ms);
    return Promise.resolve();
  };
  to(ms: number): void {
    this.nowMs = ms;
    for (const e of this.engines) e.advance(ms);
  }
  /** Runs until `sink` has `n` tokens. */
  until(sink: Recorder, n: number): void {
    while (sink.indices.length < n) {
      const next = Math.min(...this.engines.map((e) => e.nextEventMs() ?? Infinity));
      // Nothing in flight yet: advancing to now starts the first step.
      this.to(Number.isFinite(next) ? next : this.nowMs);
    }
  }
}

/**
 * The destination over a function call instead of HTTP: the engine's pre-allocation with the lease the engine API
 * grants (the stage over the link plus the grace), what agent/src/simulation/instances/server.ts does per message.
 */
class InProcessDestination implements MigrationDestination {
  readonly sink = new Recorder();
  held = 0;
  calls: string[] = [];
  /** Answer "unreachable" from this call on (the destination's pod is gone). */
  deadFrom: string | undefined;
  constructor(
    private readonly engine: ServingEngine,
    private readonly world: World,
  ) {}
  private lease(tokens: number) {
    return (
      stageMs(Math.max(0, tokens - this.held), BASE.kvBytesPerToken, LINK) +
      DEFAULT_MIGRATION_CONFIG.preallocationLeaseMs
    );
  }
  private dead(call: string): boolean {
    this.calls.push(call);
    return this.deadFrom !== undefined && this.calls.includes(this.deadFrom);
  }
  reserve(spec: IncomingMigration): Promise<RemoteAnswer<{ link: MigrationLink }>> {
    if (this.dead("reserve")) return Promise.resolve({ accepted: false, reason: "gone", code: "unreachable" });
    const lease = this.lease(spec.tokens);
    const a = this.engine.reserveIncoming(spec, this.world.nowMs, lease);
    if (a.accepted) this.held = spec.tokens;
    return Promise.resolve(a.accepted ? { accepted: true, link: LINK } : a);
  }
  grow(requestId: string, tokens: number): Promise<RemoteAnswer> {
    if (this.dead("grow")) return Promise.resolve({ accepted: false, reason: "gone", code: "unreachable" });
    const a = this.engine.growIncoming(requestId, tokens, this.world.nowMs, this.lease(tokens));
    if (a.accepted) this.held = Math.max(this.held, tokens);
    return Promise.resolve(a);
  }
  commit(h: HandedRequest): Promise<RemoteAnswer> {
    if (this.dead("commit")) return Promise.resolve({ accepted: false, reason: "gone", code: "unreachable" });
    return Promise.resolve(
      this.engine.commitIncoming(
        {
          request: {
            requestId: h.requestId,
            promptTokens: h.promptTokens,
            maxOutputTokens: h.maxOutputTokens,
            priority: h.priority,
          },
          outputTokens: h.outputTokens,
          arrivalMs: h.arrivalMs,
          firstTokenAtMs: h.firstTokenAtMs,
          sink: this.sink,
        },
        this.sink,
        this.world.nowMs,
      ),
    );
  }
  release(requestId: string): Promise<void> {
    this.calls.push("release");
    this.engine.releaseIncoming(requestId);
    return Promise.resolve();
  }
}

function setup(dstConfig: Partial<EngineConfig> = {}) {
  const src = new ServingEngine(BASE, 0);
  const dstEngine = new ServingEngine({ ...BASE, ...dstConfig }, 0);
  const world = new World([src, dstEngine]);
  const dst = new InProcessDestination(dstEngine, world);
  const sink = new Recorder();
  return { src, dstEngine, world, dst, sink };
}

const run = (s: ReturnType<typeof setup>, requestId = "r") =>
  migrateOut({
    source: s.src,
    requestId,
    destination: s.dst,
    sourceName: "a",
    destinationName: "b",
    destinationUrl: "http://h:1/instances/b",
    now: s.world.now,
    sleep: s.world.sleep,
  });

describe("migrateOut (source side, destination behind messages)", () => {
  it("commits: stages while decoding, a stop-and-copy, and the destination continues from exactly the next token", async () => {
    const s = setup();
    s.src.submit({ requestId: "r", promptTokens: 2000, maxOutputTokens: 400 }, s.sink, 0);
    s.world.until(s.sink, 50);
    const report = await run(s);

    expect(report.phase).toBe(MigrationPhase.committed);
    expect(report.stages.length).toBeGreaterThanOrEqual(2);
    expect(report.stages[0]).toMatchObject({
      kind: "pre-copy",
      fromTokens: 0,
      toTokens: Math.floor((2000 + 49) / 16) * 16,
    });
    expect(report.stages.at(-1)!.kind).toBe("stop-and-copy");
    for (const [i, st] of report.stages.slice(1).entries()) expect(st.fromTokens).toBe(report.stages[i]!.toTokens);
    expect(report.downtimeMs).toBeGreaterThan(0);
    expect(report.downtimeMs).toBeLessThan(report.stages[0]!.endMs - report.stages[0]!.startMs);
    const next = report.nextTokenIndex!;
    expect(s.sink.migrations).toEqual([
      { destination: "b", nextTokenIndex: next, atMs: report.endedAtMs, engineUrl: "http://h:1/instances/b" },
    ]);
    expect(s.sink.indices).toEqual(range(0, next));
    expect(s.src.statusOf("r")).toBeUndefined();
    expect(s.src.freeBlocks).toBe(s.src.load(s.world.nowMs).kvBlocksTotal);

    s.world.to(1e7);
    expect(s.dst.sink.indices).toEqual(range(next, 400));
    expect(s.dst.sink.results).toMatchObject([{ requestId: "r", outcome: Outcome.completed, outputTokens: 400 }]);
    expect(describeMigration(report)).toMatch(
      /^migrated request r to b: \d+ stage\(s\), \d+ blocks, \d+ bytes, downtime [0-9.]+ ms, next token \d+$/,
    );
  });

  it("aborts with destination-out-of-memory when the pre-allocation does not fit; the request stays and completes on the source", async () => {
    // The request would fit the destination's whole cache (4,096 positions), but a running one holds 3,000 of them.
    const s = setup({ kvCapacityTokens: 4_096 });
    const filler = new Recorder();
    s.dstEngine.submit({ requestId: "filler", promptTokens: 3000, maxOutputTokens: 1000 }, filler, 0);
    s.src.submit({ requestId: "r", promptTokens: 2000, maxOutputTokens: 100 }, s.sink, 0);
    s.world.until(s.sink, 10);
    const report = await run(s);
    expect(report).toMatchObject({
      phase: MigrationPhase.aborted,
      abort: { code: MigrationAbortCode.destinationOutOfMemory },
    });
    expect(report.abort!.reason).toMatch(/refused the pre-allocation: out of KV memory/);
    expect(s.dstEngine.hasIncoming("r")).toBe(false);
    s.world.to(1e7);
    expect(s.sink.indices).toEqual(range(0, 100));
    expect(s.sink.results).toMatchObject([{ outcome: Outcome.completed }]);
    expect(s.sink.migrations).toEqual([]);
  });

  it("aborts with destination-died when the destination stops answering mid-migration; the request decodes on at the source", async () => {
    const s = setup();
    s.dst.deadFrom = "grow";
    s.src.submit({ requestId: "r", promptTokens: 2000, maxOutputTokens: 300 }, s.sink, 0);
    s.world.until(s.sink, 50);
    const report = await run(s);
    expect(report).toMatchObject({
      phase: MigrationPhase.aborted,
      abort: { code: MigrationAbortCode.destinationDied },
    });
    expect(report.stages.length).toBe(1);
    expect(s.src.sourceView("r")).toMatchObject({ migratingOut: false, status: "running" });
    s.world.to(1e7);
    expect(s.sink.indices).toEqual(range(0, 300));
    expect(s.sink.migrations).toEqual([]);
  });

  it("a destination that dies at the commit leaves the request on the source (paused only for the stop-and-copy)", async () => {
    const s = setup();
    s.dst.deadFrom = "commit";
    s.src.submit({ requestId: "r", promptTokens: 500, maxOutputTokens: 300 }, s.sink, 0);
    s.world.until(s.sink, 20);
    const report = await run(s);
    expect(report.abort?.code).toBe(MigrationAbortCode.destinationDied);
    expect(s.dst.calls.at(-1)).toBe("release");
    s.world.to(1e7);
    expect(s.sink.indices).toEqual(range(0, 300));
    expect(s.sink.results).toMatchObject([{ outcome: Outcome.completed }]);
  });

  it("aborts with source-finished when the request ends during the copy, and frees the destination's pre-allocation", async () => {
    const s = setup();
    // 20 tokens left at ~6 ms a step end long before a 2,000-token stage over the slow link.
    s.src.submit({ requestId: "r", promptTokens: 6000, maxOutputTokens: 30 }, s.sink, 0);
    s.world.until(s.sink, 10);
    const report = await run(s);
    expect(report.abort?.code).toBe(MigrationAbortCode.sourceFinished);
    expect(s.dstEngine.hasIncoming("r")).toBe(false);
    expect(s.dstEngine.freeBlocks).toBe(s.dstEngine.load(s.world.nowMs).kvBlocksTotal);
    expect(s.sink.indices).toEqual(range(0, 30));
  });

  it("refuses at the source a request that is not decoding there, asking nothing of the destination", async () => {
    const s = setup();
    const report = await run(s, "nope");
    expect(report.abort?.code).toBe(MigrationAbortCode.sourceRefused);
    expect(s.dst.calls).toEqual([]);
    expect(describeMigration(report)).toMatch(/^request nope stays on a: source-refused: /);
  });
});
