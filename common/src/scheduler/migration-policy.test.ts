import { describe, expect, it } from "vitest";
import { idleLoad, migrationFreeness, type InstanceLoad } from "./freeness.js";
import {
  DEFAULT_MIGRATION_POLICY,
  InvalidMigrationPolicyError,
  planMigrations,
  type MigrationCandidate,
  type MigrationInstance,
  type MigrationPolicyConfig,
} from "./migration-policy.js";

// M = 100 blocks per instance throughout, so F reads as "free blocks per request".
const load = (over: Partial<InstanceLoad>): InstanceLoad => ({ ...idleLoad(100), ...over });
const req = (requestId: string, blocks: number, priority = 0): MigrationCandidate => ({
  requestId,
  blocks,
  priority,
  outputTokens: 10,
});
const inst = (
  id: string,
  over: Partial<InstanceLoad>,
  candidates: MigrationCandidate[] = [],
  migrating = false,
): MigrationInstance => ({ id, load: load(over), candidates, migrating });
const config = (over: Partial<MigrationPolicyConfig> = {}): MigrationPolicyConfig => ({
  ...DEFAULT_MIGRATION_POLICY,
  ...over,
});

/** A loaded source: 95 of 100 blocks over 5 requests, F = 1 (below the artifact's 3). */
const busy = (id: string, candidates = [req(`${id}-a`, 10), req(`${id}-b`, 20), req(`${id}-c`, 30)]) =>
  inst(id, { kvBlocksUsed: 95, runningRequests: 5 }, candidates);
/** A light destination: 20 blocks over 2 requests, F = 40. */
const light = (id: string, over: Partial<InstanceLoad> = {}) =>
  inst(id, { kvBlocksUsed: 20, runningRequests: 2, ...over });

describe("migrationFreeness (the artifact's migrate-side F)", () => {
  const opts = { defragmentation: true, priority: true, freeness: { highPriorityHeadroomFraction: 0.1 } };
  it.each([
    { name: "nothing running or waiting: +∞ (the best destination)", l: load({}), f: Infinity },
    {
      name: "running requests only: free blocks per request",
      l: load({ kvBlocksUsed: 40, runningRequests: 4 }),
      f: 15,
    },
    {
      name: "de-fragmentation: the head of the queue counts its demand and one more request",
      l: load({ kvBlocksUsed: 40, runningRequests: 4, queuedRequests: 3, headOfLineDemandBlocks: 50 }),
      f: 2,
    },
    {
      name: "priority: headroom of 10% of M per high-priority request",
      l: load({ kvBlocksUsed: 40, runningRequests: 4, highPriorityRunning: 1 }),
      f: 12.5,
    },
    { name: "draining: −∞", l: load({ draining: true, runningRequests: 3 }), f: -Infinity },
  ])("$name", ({ l, f }) => {
    expect(migrationFreeness(l, opts)).toBe(f);
  });

  it("without the modes, neither the queue nor the headroom counts", () => {
    const l = load({
      kvBlocksUsed: 40,
      runningRequests: 4,
      queuedRequests: 1,
      headOfLineDemandBlocks: 50,
      highPriorityRunning: 1,
    });
    expect(migrationFreeness(l, { ...opts, defragmentation: false, priority: false })).toBe(15);
  });
});

describe("planMigrations: pairing", () => {
  it("no instance below the threshold: nothing moves", () => {
    expect(planMigrations([light("a"), light("b", { kvBlocksUsed: 90, runningRequests: 2 })], config())).toEqual([]);
  });

  it("pairs the lowest-F source with the highest-F destination, the next with the next", () => {
    const plan = planMigrations(
      [
        light("d-mid", { kvBlocksUsed: 40 }), // F 30
        inst("s-worst", { kvBlocksUsed: 99, runningRequests: 5 }, [req("w", 10)]), // F 0.2
        light("d-best", { kvBlocksUsed: 10 }), // F 45
        busy("s-less", [req("l", 10)]), // F 1
      ],
      config(),
    );
    expect(plan.map((m) => [m.sourceId, m.destinationId])).toEqual([
      ["s-worst", "d-best"],
      ["s-less", "d-mid"],
    ]);
  });

  it("the cheapest request (fewest blocks) goes first, whatever the order of the candidates", () => {
    const plan = planMigrations([busy("s", [req("big", 30), req("small", 10), req("mid", 20)]), light("d")], config());
    expect(plan).toEqual([
      { requestId: "small", sourceId: "s", destinationId: "d", blocks: 10, reason: "load-balance" },
    ]);
  });

  it("a move that narrows the gap is planned: F 1 vs 40 becomes 3.75 vs 23.3", () => {
    expect(planMigrations([busy("s"), light("d")], config())).toHaveLength(1);
  });

  it("a move that would reverse the imbalance is refused (the source would end freer than the destination)", () => {
    // Source: 98 blocks over 2 requests (F 1); destination: 10 blocks over 1 (F 90). Moving either 48- or 50-block
    // request leaves the source at F 50-52 and the destination at F 20-21.
    const plan = planMigrations(
      [
        inst("s", { kvBlocksUsed: 98, runningRequests: 2 }, [req("x", 48), req("y", 50)]),
        inst("d", { kvBlocksUsed: 10, runningRequests: 1 }),
      ],
      config(),
    );
    expect(plan).toEqual([]);
  });

  it("a move that would push the destination below the threshold is refused; a cheaper one that does not is taken", () => {
    // Destination: 60 blocks over 6 requests (F 6.67). With 30 more blocks F = 10/7 < 3; with 10 more, 30/7 = 4.3.
    const d = inst("d", { kvBlocksUsed: 60, runningRequests: 6 });
    expect(planMigrations([busy("s", [req("big", 30)]), d], config())).toEqual([]);
    expect(
      planMigrations([busy("s", [req("big", 30), req("small", 10)]), d], config()).map((m) => m.requestId),
    ).toEqual(["small"]);
  });

  it("an empty destination (F = +∞) takes a request that fits without the imbalance rule", () => {
    const plan = planMigrations(
      [inst("s", { kvBlocksUsed: 98, runningRequests: 2 }, [req("x", 48)]), inst("empty", {})],
      config(),
    );
    expect(plan.map((m) => m.destinationId)).toEqual(["empty"]);
  });

  it("a request that does not fit the destination's free blocks (beyond its queue head) is not planned", () => {
    const d = inst("d", { kvBlocksUsed: 20, runningRequests: 2, queuedRequests: 1, headOfLineDemandBlocks: 65 });
    expect(planMigrations([busy("s", [req("x", 20)]), d], config({ defragmentation: false }))).toEqual([]);
  });

  it("instances already migrating are neither sources nor destinations (one migration at a time)", () => {
    const s = busy("s");
    expect(planMigrations([{ ...s, migrating: true }, light("d")], config())).toEqual([]);
    expect(planMigrations([s, { ...light("d"), migrating: true }], config())).toEqual([]);
  });

  it("a source with no candidates is skipped, so the next source gets the freest destination", () => {
    const plan = planMigrations(
      [inst("s-none", { kvBlocksUsed: 99, runningRequests: 5 }), busy("s"), light("d")],
      config(),
    );
    expect(plan.map((m) => m.sourceId)).toEqual(["s"]);
  });

  it("the threshold is configurable: at 0.5 an instance at F 1 is not a source", () => {
    expect(planMigrations([busy("s"), light("d")], config({ migrateOutFreeness: 0.5 }))).toEqual([]);
  });
});

describe("planMigrations: modes", () => {
  // 40 blocks over 4 requests (F 15 without the queue) and a queue whose head needs 50 blocks: F = 10/5 = 2.
  const fragmented = inst(
    "frag",
    { kvBlocksUsed: 40, runningRequests: 4, queuedRequests: 2, headOfLineDemandBlocks: 50 },
    [req("f1", 10), req("f2", 10)],
  );

  it("de-fragmentation: a queue head that does not fit makes its instance a source", () => {
    expect(planMigrations([fragmented, light("d")], config())).toEqual([
      { requestId: "f1", sourceId: "frag", destinationId: "d", blocks: 10, reason: "defragmentation" },
    ]);
  });

  it("without de-fragmentation the same instance (F 15) is left alone", () => {
    expect(planMigrations([fragmented, light("d")], config({ defragmentation: false }))).toEqual([]);
  });

  // 50 blocks over 5 requests, one of them high priority; with a headroom of 60% of M, F = (100 - 50 - 60)/5 = -2.
  const hpConfig = config({ freeness: { highPriorityHeadroomFraction: 0.6 } });
  const withHigh = inst("hp", { kvBlocksUsed: 50, runningRequests: 5, highPriorityRunning: 1 }, [
    req("vip", 5, 1),
    req("n1", 10),
    req("n2", 15),
  ]);

  it("priority: normal requests leave an instance running a high-priority one; the high-priority one stays", () => {
    expect(planMigrations([withHigh, light("d")], hpConfig)).toEqual([
      { requestId: "n1", sourceId: "hp", destinationId: "d", blocks: 10, reason: "priority" },
    ]);
  });

  it("priority: no normal request is moved onto an instance running a high-priority request", () => {
    expect(planMigrations([busy("s", [req("n", 10)]), light("d", { highPriorityRunning: 1 })], config())).toEqual([]);
  });

  it("without priority mode the headroom does not count: the same instance (F 10) is not a source", () => {
    expect(planMigrations([withHigh, light("d")], { ...hpConfig, priority: false })).toEqual([]);
  });

  it("drain: a draining instance is a source of all its requests, cheapest first, even onto a busy destination", () => {
    const draining = inst("old", { kvBlocksUsed: 30, runningRequests: 2, draining: true }, [
      req("r2", 20),
      req("r1", 10),
    ]);
    // F 5 now, 20/7 = 2.86 after taking r1: below the threshold, which a drain does not need to respect.
    const nearlyBusy = inst("e", { kvBlocksUsed: 70, runningRequests: 6 });
    expect(planMigrations([draining, nearlyBusy], config())).toEqual([
      { requestId: "r1", sourceId: "old", destinationId: "e", blocks: 10, reason: "drain" },
    ]);
    // A destination must still be above the threshold to be one at all (F 20/8 = 2.5 is not).
    expect(planMigrations([draining, inst("d", { kvBlocksUsed: 80, runningRequests: 8 })], config())).toEqual([]);
  });

  it("drain: one request per period per draining instance, each to its own destination", () => {
    const a = inst("old-a", { kvBlocksUsed: 30, runningRequests: 2, draining: true }, [req("a1", 10)]);
    const b = inst("old-b", { kvBlocksUsed: 30, runningRequests: 2, draining: true }, [req("b1", 10)]);
    const plan = planMigrations([a, b, light("d1"), light("d2", { kvBlocksUsed: 10 })], config());
    expect(plan.map((m) => `${m.sourceId}->${m.destinationId}`).sort()).toEqual(["old-a->d2", "old-b->d1"]);
  });
});

describe("planMigrations: input errors", () => {
  it("a duplicated instance id is an error naming it", () => {
    expect(() => planMigrations([light("x"), light("x")], config())).toThrow(InvalidMigrationPolicyError);
    expect(() => planMigrations([light("x"), light("x")], config())).toThrow(/x appears twice/);
  });

  it("a non-finite threshold is an error", () => {
    expect(() => planMigrations([], config({ migrateOutFreeness: Number.NaN }))).toThrow(/migrateOutFreeness/);
  });
});
