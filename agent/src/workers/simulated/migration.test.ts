import { describe, expect, it } from "vitest";
import { MODEL_SHAPES } from "../../../../common/src/models/model-shapes.js";
import { ServingEngine, ServingRole, type EngineConfig } from "./engine.js";
import { servingEngineConfig } from "./engine-config.js";
import {
  advanceAll,
  LiveMigration,
  MigrationAbortCode,
  MigrationConfigError,
  MigrationPhase,
  stageMs,
  type MigrationLink,
} from "./migration.js";
import { Outcome, type MigratedTo, type RequestResult, type RequestSink } from "./sequence.js";

class Recorder implements RequestSink {
  readonly tokens: { id: string; index: number; atMs: number }[] = [];
  readonly results: RequestResult[] = [];
  readonly migrations: { id: string; to: MigratedTo }[] = [];
  token(id: string, index: number, atMs: number): void {
    this.tokens.push({ id, index, atMs });
  }
  finish(result: RequestResult): void {
    this.results.push(result);
  }
  migrated(id: string, to: MigratedTo): void {
    this.migrations.push({ id, to });
  }
  indices(id: string): number[] {
    return this.tokens.filter((t) => t.id === id).map((t) => t.index);
  }
}

const BASE: EngineConfig = servingEngineConfig({
  role: ServingRole.colocated,
  shape: MODEL_SHAPES["Llama-3-8B"],
  parallelism: { tp: 1, pp: 1 },
  gpuModel: "H100-80GB",
});
const engine = (overrides: Partial<EngineConfig> = {}) => new ServingEngine({ ...BASE, ...overrides }, 0);
/** 100 Gbit/s NIC-class link. */
const LINK: MigrationLink = { bytesPerSecond: 12.5e9, latencyMs: 0.1 };
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Runs a request on `src` to `tokensBefore` tokens; returns the time of that token. */
function runUntilTokens(src: ServingEngine, sink: Recorder, id: string, tokensBefore: number): number {
  for (;;) {
    const at = src.nextEventMs() ?? 0;
    src.advance(at);
    if (sink.indices(id).length >= tokensBefore) return at;
  }
}

describe("a live migration that commits", () => {
  it("copies in stages while the request decodes, stops and copies the rest, and the destination continues from the next token", () => {
    const src = engine();
    const dst = engine();
    const sink = new Recorder();
    src.submit({ requestId: "r", promptTokens: 2000, maxOutputTokens: 300 }, sink, 0);
    const t0 = runUntilTokens(src, sink, "r", 50);
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "r",
      link: LINK,
      atMs: t0,
      sourceName: "a",
      destinationName: "b",
    });
    expect(src.load(t0).migrating).toBe("out");
    expect(dst.load(t0).migrating).toBe("in");
    advanceAll([m, src, dst], 1e9);

    const report = m.report();
    expect(report.phase).toBe(MigrationPhase.committed);
    expect(sink.indices("r")).toEqual(range(300));
    expect(sink.results).toMatchObject([{ requestId: "r", outcome: Outcome.completed, outputTokens: 300 }]);
    expect(sink.migrations).toEqual([
      { id: "r", to: { destination: "b", nextTokenIndex: report.nextTokenIndex, atMs: report.endedAtMs } },
    ]);
    // Tokens before the commit came from the source, the rest from the destination after it.
    const firstOnDestination = sink.tokens.find((t) => t.index === report.nextTokenIndex)!;
    expect(firstOnDestination.atMs).toBeGreaterThan(report.endedAtMs!);

    const [first, ...rest] = report.stages;
    const last = report.stages.at(-1)!;
    expect(first).toMatchObject({ kind: "pre-copy", fromTokens: 0, toTokens: Math.floor((2000 + 49) / 16) * 16 });
    expect(last.kind).toBe("stop-and-copy");
    // each stage copies what the last did not
    for (const [i, s] of rest.entries()) expect(s.fromTokens).toBe(report.stages[i]!.toTokens);
    // never the block being written
    for (const s of report.stages.filter((x) => x.kind === "pre-copy")) expect(s.toTokens % 16).toBe(0);
    expect(last.toTokens).toBe(2000 + report.nextTokenIndex! - 1); // all KV positions, the partial block included
    expect(report.downtimeMs).toBeCloseTo(stageMs(last.toTokens - last.fromTokens, BASE.kvBytesPerToken, LINK), 9);
    expect(report.copiedBytes).toBe(last.toTokens * BASE.kvBytesPerToken);
    // After the request finished on the destination, no block is held anywhere.
    expect(src.load(1e9)).toMatchObject({ kvBlocksUsed: 0, runningRequests: 0 });
    expect(dst.load(1e9)).toMatchObject({ kvBlocksUsed: 0, runningRequests: 0 });
    expect(dst.load(1e9).migrating).toBeUndefined();
  });

  it("a request of at most stopAndCopyMaxBlocks blocks goes straight to the stop-and-copy", () => {
    const src = engine();
    const dst = engine();
    const sink = new Recorder();
    src.submit({ requestId: "r", promptTokens: 20, maxOutputTokens: 40 }, sink, 0);
    const t0 = runUntilTokens(src, sink, "r", 3);
    const m = new LiveMigration({ source: src, destination: dst, requestId: "r", link: LINK, atMs: t0 });
    advanceAll([m, src, dst], 1e9);
    expect(m.report().stages.map((s) => s.kind)).toEqual(["stop-and-copy"]);
    expect(sink.indices("r")).toEqual(range(40));
  });

  it("stops and copies after maxPreCopyStages however many blocks remain", () => {
    const src = engine();
    const dst = engine();
    const sink = new Recorder();
    src.submit({ requestId: "r", promptTokens: 100, maxOutputTokens: 8000 }, sink, 0);
    const t0 = runUntilTokens(src, sink, "r", 10);
    // A link slower than the request writes KV: the stages never shrink to a few blocks.
    const slow = { bytesPerSecond: 10e6, latencyMs: 1 };
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "r",
      link: slow,
      atMs: t0,
      config: { maxPreCopyStages: 3, timeoutMs: 1e9 },
    });
    advanceAll([m, src, dst], 1e9);
    expect(m.report().stages.map((s) => s.kind)).toEqual(["pre-copy", "pre-copy", "pre-copy", "stop-and-copy"]);
    expect(m.report().stages.at(-1)!.blocks).toBeGreaterThan(2);
    expect(sink.indices("r")).toEqual(range(8000));
  });

  it("rejects a link or configuration that cannot be modelled", () => {
    const src = engine();
    expect(
      () =>
        new LiveMigration({
          source: src,
          destination: engine(),
          requestId: "r",
          link: { bytesPerSecond: 0, latencyMs: 0 },
          atMs: 0,
        }),
    ).toThrow(MigrationConfigError);
    expect(
      () =>
        new LiveMigration({
          source: src,
          destination: engine(),
          requestId: "r",
          link: LINK,
          atMs: 0,
          config: { maxPreCopyStages: 0 },
        }),
    ).toThrow(/maxPreCopyStages/);
  });
});

describe("aborts leave the request with exactly one owner", () => {
  const setUp = (promptTokens = 2000, maxOutputTokens = 300, dstOverrides: Partial<EngineConfig> = {}) => {
    const src = engine();
    const dst = engine(dstOverrides);
    const sink = new Recorder();
    src.submit({ requestId: "r", promptTokens, maxOutputTokens }, sink, 0);
    const t0 = runUntilTokens(src, sink, "r", 20);
    return { src, dst, sink, t0 };
  };

  it("a destination out of memory refuses the pre-allocation and nothing changes", () => {
    const { src, dst, sink, t0 } = setUp(2000, 300, { kvCapacityTokens: 16 * 400 });
    dst.submit({ requestId: "resident", promptTokens: 5000, maxOutputTokens: 1000 }, new Recorder(), 0);
    advanceAll([dst], t0);
    const usedBefore = dst.load(t0).kvBlocksUsed;
    const reference = new Recorder();
    const alone = engine();
    alone.submit({ requestId: "r", promptTokens: 2000, maxOutputTokens: 300 }, reference, 0);
    advanceAll([alone], 1e9);

    const m = new LiveMigration({ source: src, destination: dst, requestId: "r", link: LINK, atMs: t0 });
    expect(m.report()).toMatchObject({ phase: "aborted", abort: { code: MigrationAbortCode.destinationOutOfMemory } });
    expect(m.report().abort!.reason).toMatch(/out of KV memory/);
    expect(dst.load(t0).kvBlocksUsed).toBe(usedBefore);
    expect(dst.load(t0).migrating).toBeUndefined();
    advanceAll([m, src, dst], 1e9);
    expect(sink.tokens).toEqual(reference.tokens); // same tokens at the same times as without the attempt
    expect(sink.migrations).toEqual([]);
  });

  it("a destination that runs out of memory at a later stage aborts it; the source keeps decoding", () => {
    const { src, dst, sink, t0 } = setUp(2000, 300, { kvCapacityTokens: 16 * 300, maxConcurrentMigrations: 2 });
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "r",
      link: { bytesPerSecond: 0.5e9, latencyMs: 1 },
      atMs: t0,
    });
    expect(m.state).toBe("pre-copy");
    // While stage 0 is in flight another incoming migration takes every free block of the destination.
    const other = {
      requestId: "other",
      model: BASE.modelName,
      blockSizeTokens: 16,
      promptTokens: dst.freeBlocks * 16,
      maxOutputTokens: 10,
      tokens: dst.freeBlocks * 16,
    };
    expect(dst.reserveIncoming(other, t0, 1e6)).toEqual({ accepted: true });
    expect(dst.freeBlocks).toBe(0);
    advanceAll([m, src, dst], 1e6);
    expect(m.report()).toMatchObject({ phase: "aborted", abort: { code: MigrationAbortCode.destinationOutOfMemory } });
    expect(m.report().stages).toHaveLength(1);
    expect(sink.indices("r")).toEqual(range(300));
    expect(sink.results).toMatchObject([{ outcome: Outcome.completed }]);
    dst.releaseIncoming("other");
    expect(src.load(1e6).kvBlocksUsed + dst.load(1e6).kvBlocksUsed).toBe(0);
  });

  it.each([
    {
      name: "the request is cancelled during the pre-copy",
      when: "pre-copy",
      act: "cancel",
      code: MigrationAbortCode.sourceFinished,
      outcome: Outcome.cancelled,
    },
    {
      name: "the request is cancelled during the stop-and-copy",
      when: "stop-and-copy",
      act: "cancel",
      code: MigrationAbortCode.sourceFinished,
      outcome: Outcome.cancelled,
    },
    {
      name: "the source dies during the stop-and-copy",
      when: "stop-and-copy",
      act: "kill-source",
      code: MigrationAbortCode.sourceDied,
      outcome: Outcome.aborted,
    },
    {
      name: "the destination dies during the pre-copy",
      when: "pre-copy",
      act: "kill-destination",
      code: MigrationAbortCode.destinationDied,
      outcome: Outcome.completed,
    },
    {
      name: "the destination dies during the stop-and-copy",
      when: "stop-and-copy",
      act: "kill-destination",
      code: MigrationAbortCode.destinationDied,
      outcome: Outcome.completed,
    },
    {
      name: "the caller aborts during the stop-and-copy",
      when: "stop-and-copy",
      act: "abort",
      code: MigrationAbortCode.aborted,
      outcome: Outcome.completed,
    },
  ] as const)("$name", ({ when, act, code, outcome }) => {
    const { src, dst, sink, t0 } = setUp();
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "r",
      link: { bytesPerSecond: 1e9, latencyMs: 1 },
      atMs: t0,
      config: { stopAndCopyMaxBlocks: 4 },
    });
    expect(m.state).toBe("pre-copy");
    // Step the simulation until the migration is in the phase asked for, then act in the middle of that phase.
    while (m.state !== when && !m.done)
      advanceAll([m, src, dst], Math.min(...[m, src, dst].map((p) => p.nextEventMs() ?? Infinity)));
    expect(m.state).toBe(when);
    const stage = m.report().stages.at(-1)!;
    const mid = (stage.startMs + stage.endMs) / 2;
    advanceAll([m, src, dst], mid);
    if (act === "cancel") src.cancel("r", mid);
    if (act === "kill-source") src.kill("pod deleted", mid);
    if (act === "kill-destination") dst.kill("pod deleted", mid);
    if (act === "abort") m.abort("operator gave up", mid);
    advanceAll([m, src, dst], 1e9);
    expect(m.report()).toMatchObject({ phase: "aborted", abort: { code } });
    expect(sink.results).toMatchObject([{ requestId: "r", outcome }]);
    expect(sink.indices("r")).toEqual(range(sink.results[0]!.outputTokens));
    expect(sink.migrations).toEqual([]);
    expect(src.load(1e9).kvBlocksUsed).toBe(0);
    expect(dst.load(1e9).kvBlocksUsed).toBe(0);
  });

  it("the source finishing the request before the stop-and-copy aborts the migration", () => {
    const { src, dst, sink, t0 } = setUp(2000, 24);
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "r",
      link: { bytesPerSecond: 0.05e9, latencyMs: 1 },
      atMs: t0,
    });
    advanceAll([m, src, dst], 1e9);
    expect(m.report()).toMatchObject({ phase: "aborted", abort: { code: MigrationAbortCode.sourceFinished } });
    expect(sink.results).toMatchObject([{ outcome: Outcome.completed, outputTokens: 24 }]);
    expect(dst.load(1e9).kvBlocksUsed).toBe(0);
  });

  it("a preemption on the source during the pre-copy aborts (the KV to copy is gone)", () => {
    const src = engine({ kvCapacityTokens: 16 * 300 });
    const dst = engine();
    const sink = new Recorder();
    src.submit({ requestId: "r", promptTokens: 2000, maxOutputTokens: 2000 }, sink, 0);
    src.submit({ requestId: "s", promptTokens: 2000, maxOutputTokens: 2000 }, sink, 0);
    const t0 = runUntilTokens(src, sink, "s", 5);
    // "s" is the newest running sequence: the tail the scheduler preempts when blocks run out.
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "s",
      link: { bytesPerSecond: 1e6, latencyMs: 1 },
      atMs: t0,
      config: { timeoutMs: 1e9 },
    });
    advanceAll([m, src, dst], 1e9);
    expect(m.report()).toMatchObject({ phase: "aborted", abort: { code: MigrationAbortCode.sourcePreempted } });
    expect(sink.indices("s")).toEqual(range(2000));
    expect(sink.results.filter((r) => r.requestId === "s")).toHaveLength(1);
    expect(dst.load(1e9).kvBlocksUsed).toBe(0);
  });

  it("a migration not committed within timeoutMs aborts", () => {
    const { src, dst, sink, t0 } = setUp();
    const m = new LiveMigration({
      source: src,
      destination: dst,
      requestId: "r",
      link: { bytesPerSecond: 1e6, latencyMs: 1 },
      atMs: t0,
      config: { timeoutMs: 50 },
    });
    advanceAll([m, src, dst], t0 + 49);
    expect(m.state).toBe("pre-copy");
    advanceAll([m, src, dst], 1e9);
    expect(m.report()).toMatchObject({
      phase: "aborted",
      endedAtMs: t0 + 50,
      abort: { code: MigrationAbortCode.timeout },
    });
    expect(sink.indices("r")).toEqual(range(300));
  });
});

describe("the destination's side", () => {
  it("frees a pre-allocation whose lease was not renewed (its source vanished)", () => {
    const dst = engine();
    const spec = {
      requestId: "x",
      model: BASE.modelName,
      blockSizeTokens: 16,
      promptTokens: 1000,
      maxOutputTokens: 10,
      tokens: 1000,
    };
    expect(dst.reserveIncoming(spec, 5, 100)).toEqual({ accepted: true });
    expect(dst.load(5)).toMatchObject({ kvBlocksUsed: 63, migrating: "in" });
    expect(dst.nextEventMs()).toBe(105);
    dst.advance(104);
    expect(dst.hasIncoming("x")).toBe(true);
    dst.advance(105);
    expect(dst.hasIncoming("x")).toBe(false);
    expect(dst.load(105)).toMatchObject({ kvBlocksUsed: 0 });
    expect(dst.load(105).migrating).toBeUndefined();
  });

  it.each([
    { name: "another model", spec: { model: "OPT-13B" }, code: "incompatible-kv" },
    { name: "another block size", spec: { blockSizeTokens: 32 }, code: "incompatible-kv" },
    {
      name: "more KV than is free",
      spec: { tokens: 8000, promptTokens: 8000 },
      cfg: { kvCapacityTokens: 16 * 100 },
      code: "too-large",
    },
    {
      name: "more than the free blocks",
      spec: { tokens: 1500 },
      cfg: { kvCapacityTokens: 16 * 90 },
      code: "out-of-memory",
    },
    { name: "no free batch slot", spec: {}, cfg: { maxNumSeqs: 0 }, code: "out-of-memory" },
  ])("refuses a pre-allocation of $name", ({ spec, cfg, code }) => {
    const dst = engine(cfg ?? {});
    const base = {
      requestId: "x",
      model: BASE.modelName,
      blockSizeTokens: 16,
      promptTokens: 1000,
      maxOutputTokens: 10,
      tokens: 1000,
    };
    expect(dst.reserveIncoming({ ...base, ...spec }, 0, 100)).toMatchObject({ accepted: false, code });
    expect(dst.load(0).kvBlocksUsed).toBe(0);
  });

  it("takes at most maxConcurrentMigrations migrations in or out at a time", () => {
    const src = engine();
    const dst = engine();
    const sink = new Recorder();
    src.submit({ requestId: "a", promptTokens: 500, maxOutputTokens: 100 }, sink, 0);
    src.submit({ requestId: "b", promptTokens: 500, maxOutputTokens: 100 }, sink, 0);
    const t0 = runUntilTokens(src, sink, "a", 3);
    const first = new LiveMigration({ source: src, destination: dst, requestId: "a", link: LINK, atMs: t0 });
    const second = new LiveMigration({ source: src, destination: dst, requestId: "b", link: LINK, atMs: t0 });
    expect(first.state).toBe("pre-copy");
    expect(second.report()).toMatchObject({
      phase: "aborted",
      abort: { code: "source-refused", reason: expect.stringMatching(/at most 1/) },
    });
    const other = engine();
    other.submit({ requestId: "c", promptTokens: 500, maxOutputTokens: 100 }, sink, 0);
    advanceAll([other], t0);
    const third = new LiveMigration({ source: other, destination: dst, requestId: "c", link: LINK, atMs: t0 });
    expect(third.report()).toMatchObject({
      phase: "aborted",
      abort: { code: "destination-refused", reason: expect.stringMatching(/at most 1/) },
    });

    const both = engine({ maxConcurrentMigrations: 2 });
    const b2 = engine({ maxConcurrentMigrations: 2 });
    both.submit({ requestId: "p", promptTokens: 500, maxOutputTokens: 100 }, sink, 0);
    both.submit({ requestId: "q", promptTokens: 500, maxOutputTokens: 100 }, sink, 0);
    advanceAll([both], t0);
    expect(new LiveMigration({ source: both, destination: b2, requestId: "p", link: LINK, atMs: t0 }).state).toBe(
      "pre-copy",
    );
    expect(new LiveMigration({ source: both, destination: b2, requestId: "q", link: LINK, atMs: t0 }).state).not.toBe(
      "aborted",
    );
  });

  it("refuses to migrate a request that is not decoding", () => {
    const src = engine();
    const sink = new Recorder();
    src.submit({ requestId: "w", promptTokens: 500, maxOutputTokens: 10 }, sink, 0);
    expect(
      new LiveMigration({ source: src, destination: engine(), requestId: "w", link: LINK, atMs: 0 }).report().abort,
    ).toMatchObject({ code: "source-refused", reason: expect.stringMatching(/waiting/) });
    expect(
      new LiveMigration({ source: src, destination: engine(), requestId: "nope", link: LINK, atMs: 0 }).report().abort,
    ).toMatchObject({ code: "source-refused", reason: expect.stringMatching(/not here/) });
  });
});

describe("load report", () => {
  it("lists running requests as migration candidates, fewest blocks first, at most 16, none already migrating", () => {
    const src = engine();
    const sink = new Recorder();
    for (let i = 0; i < 20; i++)
      src.submit(
        { requestId: `r${i}`, promptTokens: 100 + 50 * ((i * 7) % 20), maxOutputTokens: 100, priority: i % 2 },
        sink,
        0,
      );
    const t0 = runUntilTokens(src, sink, "r0", 2);
    const candidates = src.load(t0).migrationCandidates;
    expect(candidates).toHaveLength(16);
    expect(candidates.map((c) => c.blocks)).toEqual([...candidates.map((c) => c.blocks)].sort((a, b) => a - b));
    expect(candidates[0]).toMatchObject({ requestId: "r0", blocks: Math.ceil(101 / 16), priority: 0, outputTokens: 2 });
    new LiveMigration({ source: src, destination: engine(), requestId: "r0", link: LINK, atMs: t0 });
    expect(src.load(t0).migrationCandidates.map((c) => c.requestId)).not.toContain("r0");
  });
});
