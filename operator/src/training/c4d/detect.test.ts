import { describe, expect, it } from "vitest";
import { seededRandom } from "../../../../common/src/random.js";
import { c4dConfigFor } from "./config.js";
import { detectFaults } from "./detect.js";
import { syntheticTelemetry, type SyntheticJob, type SyntheticTelemetry } from "./synthetic.js";
import type { C4dReport } from "./types.js";

// 8 nodes x 4 ranks; about 54 ms per collective (50 ms compute, 4 ms network), so the relative hang timeout is
// 20 x 54 = 1,080 ms and a slowdown must persist 5 s (about 93 collectives) before it is blamed.
const NODES = 8;
const G = 4;
const nodeOf = (r: number): number => Math.floor(r / G);
const config = c4dConfigFor({});

/** Jitter every job here has: compute +-2 %, transfers +-5 %, seeded. */
function jittered(job: Omit<SyntheticJob, "nodes" | "ranksPerNode">, seed = 7): SyntheticJob {
  const random = seededRandom(seed);
  const compute = job.computeUs ?? (() => 50_000);
  const transfer = job.transferUs ?? ((_s: number, _d: number, _k: number, same: boolean) => (same ? 1_000 : 4_000));
  return {
    nodes: NODES,
    ranksPerNode: G,
    ...job,
    computeUs: (r, k) => compute(r, k) * (0.98 + 0.04 * random()),
    transferUs: (s, d, k, same) => transfer(s, d, k, same) * (0.95 + 0.1 * random()),
  };
}

const interNode = (s: number, d: number): boolean => nodeOf(s) !== nodeOf(d);
const slowTransfers =
  (pred: (s: number, d: number, k: number) => boolean, factor: number) =>
  (s: number, d: number, k: number, same: boolean): number =>
    (same ? 1_000 : 4_000) * (pred(s, d, k) ? factor : 1);

function run(t: SyntheticTelemetry, afterMs = 200, cfg = config, rankNics?: (string | undefined)[]): C4dReport {
  return detectFaults(
    { job: "ns/job-a", communicators: t.communicators, rankNodes: t.rankNodes, ...(rankNics ? { rankNics } : {}) },
    cfg,
    t.lastUnixMs + afterMs,
  );
}

const summary = (r: C4dReport) =>
  r.verdicts.map((v) => ({
    faultClass: v.faultClass,
    node: v.blame.node,
    peerNode: v.blame.peerNode,
    nic: v.blame.nic,
    action: v.action,
  }));

describe("c4dConfigFor", () => {
  it("derives thresholds from the job's faultPolicy and the documented defaults", () => {
    expect(config).toMatchObject({
      slowFactor: 1.3,
      hangTimeoutMaxMs: 60_000,
      hangTimeoutMinMs: 1_000,
      hangPeriodMultiple: 20,
      slowPersistMinMs: 5_000,
    });
    expect(c4dConfigFor({ slowRankTolerancePercent: 50, hangTimeoutSeconds: 10 })).toMatchObject({
      slowFactor: 1.5,
      hangTimeoutMaxMs: 10_000,
    });
  });
  it("rejects a policy that could never decide", () => {
    expect(() => c4dConfigFor({ slowRankTolerancePercent: 0 })).toThrow(/slowRankTolerancePercent/);
    expect(() => c4dConfigFor({ hangTimeoutSeconds: 0 })).toThrow(/hangTimeoutSeconds/);
  });
});

describe("fault-free jobs blame nobody", () => {
  it.each([1, 2, 3])("jittered job, seed %i", (seed) => {
    const report = run(syntheticTelemetry(jittered({ sequences: 240 }, seed)));
    expect(report).toEqual({ verdicts: [], ambiguous: [] });
  });
  it("a straggler of a few percent is within tolerance", () => {
    const report = run(syntheticTelemetry(jittered({ sequences: 240, computeUs: (r) => (r === 9 ? 54_000 : 50_000) })));
    expect(report.verdicts).toEqual([]);
  });
});

describe("communication hang: a rank never enters", () => {
  const t = syntheticTelemetry(jittered({ sequences: 200, missing: (r, k) => r === 13 && k === 150 }));
  it("blames the missing rank's node once the collective is open past 20 periods", () => {
    const report = run(t, 2_000);
    expect(summary(report)).toEqual([
      { faultClass: "hang", node: "node-3", peerNode: undefined, nic: undefined, action: "isolate-node" },
    ]);
    const v = report.verdicts[0]!;
    expect(v.blame.ranks).toEqual([13]);
    expect(v.evidence).toMatchObject({ sequence: 150, collective: "AllReduce", ranks: [13] });
    expect(v.evidence.timesMs.timeoutMs).toBeGreaterThan(1_000);
    expect(v.evidence.timesMs.timeoutMs).toBeLessThan(1_200);
    expect(v.firstAffectedUnixMs).toBe(t.sequenceStartUnixMs[150]);
    expect(v.detectedUnixMs).toBe(t.lastUnixMs + 2_000);
  });
  it("says nothing before the timeout", () => {
    expect(run(t, 500)).toEqual({ verdicts: [], ambiguous: [] });
  });
  it("without a known period the job's hangTimeoutSeconds applies", () => {
    const early = syntheticTelemetry(jittered({ sequences: 3, missing: (r, k) => r === 13 && k === 1 }));
    expect(run(early, 30_000).verdicts).toEqual([]);
    expect(summary(run(early, 61_000))[0]).toMatchObject({ faultClass: "hang", node: "node-3" });
  });
  it("ranks on many nodes missing at once is ambiguous (a partition or lost telemetry), nobody blamed", () => {
    const many = syntheticTelemetry(
      jittered({ sequences: 200, missing: (r, k) => k === 150 && [1, 13, 22].includes(r) }),
    );
    const report = run(many, 2_000);
    expect(report.verdicts).toEqual([]);
    expect(report.ambiguous).toHaveLength(1);
    expect(report.ambiguous[0]).toMatchObject({ suspected: "hang", nodes: ["node-0", "node-3", "node-5"] });
  });
  it("a record lost from a completed collective is not a hang", () => {
    const lost = syntheticTelemetry(jittered({ sequences: 200, lost: (r, k) => r === 13 && k === 150 }));
    expect(run(lost, 2_000)).toEqual({ verdicts: [], ambiguous: [] });
  });
});

describe("unfinished: every rank entered, transfers never finished", () => {
  it("all network sends of one node stalled: that node's NIC (the node when the NIC is unknown)", () => {
    const t = syntheticTelemetry(
      jittered({ sequences: 200, unfinished: (s, d, k) => k === 150 && nodeOf(s) === 2 && interNode(s, d) }),
    );
    expect(summary(run(t, 2_000))).toEqual([
      { faultClass: "unfinished", node: "node-2", peerNode: undefined, nic: undefined, action: "isolate-node" },
    ]);
    const nics = t.rankNodes.map(() => "mlx5_0");
    expect(summary(run(t, 2_000, config, nics))).toEqual([
      { faultClass: "unfinished", node: "node-2", peerNode: undefined, nic: "mlx5_0", action: "mark-nic" },
    ]);
  });
  it("only the transfers between two nodes stalled: the path between them, nobody isolated", () => {
    const t = syntheticTelemetry(
      jittered({ sequences: 200, unfinished: (s, d, k) => k === 150 && nodeOf(s) === 2 && nodeOf(d) === 3 }),
    );
    const report = run(t, 2_000);
    expect(summary(report)).toEqual([
      { faultClass: "unfinished", node: "node-2", peerNode: "node-3", nic: undefined, action: "restart-only" },
    ]);
  });
  it("every transfer stalled: ambiguous", () => {
    const t = syntheticTelemetry(jittered({ sequences: 200, unfinished: (_s, _d, k) => k === 150 }));
    const report = run(t, 2_000);
    expect(report.verdicts).toEqual([]);
    expect(report.ambiguous[0]).toMatchObject({ suspected: "unfinished", sequence: 150 });
  });
  it("a stalled transfer on a ring (no other connection to compare) is ambiguous", () => {
    const t = syntheticTelemetry(
      jittered({ sequences: 200, ringOnly: true, unfinished: (s, _d, k) => k === 150 && s === 11 }),
    );
    const report = run(t, 2_000);
    expect(report.verdicts).toEqual([]);
    expect(report.ambiguous[0]).toMatchObject({ suspected: "unfinished", nodes: ["node-2", "node-3"] });
  });
});

describe("communication slow: the connection matrix", () => {
  const from80 = (pred: (s: number, d: number) => boolean) => (s: number, d: number, k: number) =>
    k >= 80 && pred(s, d);
  it("a slow row blames the sender", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers(
          from80((s, d) => nodeOf(s) === 5 && interNode(s, d)),
          3,
        ),
      }),
    );
    const report = run(t);
    expect(summary(report)).toEqual([
      { faultClass: "slow-sender", node: "node-5", peerNode: undefined, nic: undefined, action: "isolate-node" },
    ]);
    expect(
      report.verdicts[0]!.evidence.timesMs.observedTransferMs! /
        report.verdicts[0]!.evidence.timesMs.baselineTransferMs!,
    ).toBeGreaterThan(2.5);
  });
  it("a slow column blames the receiver; with its NIC known, the NIC is marked", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers(
          from80((s, d) => nodeOf(d) === 5 && interNode(s, d)),
          3,
        ),
      }),
    );
    const nics = t.rankNodes.map((_, r) => `mlx5_${r % G}`);
    expect(summary(run(t))).toEqual([
      { faultClass: "slow-receiver", node: "node-5", peerNode: undefined, nic: undefined, action: "isolate-node" },
    ]);
    const withNics = run(t, 200, config, nics);
    expect(
      withNics.verdicts.every(
        (v) => v.faultClass === "slow-receiver" && v.blame.node === "node-5" && v.action === "mark-nic",
      ),
    ).toBe(true);
    expect(withNics.verdicts.length).toBeGreaterThan(0);
  });
  it("an isolated slow cell blames the path between two nodes and isolates nobody", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers(
          from80((s, d) => nodeOf(s) === 2 && nodeOf(d) === 3),
          3,
        ),
      }),
    );
    const report = run(t);
    expect(summary(report)).toEqual([
      { faultClass: "slow-link", node: "node-2", peerNode: "node-3", nic: undefined, action: "restart-only" },
    ]);
    expect(report.verdicts[0]!.firstAffectedUnixMs).toBeGreaterThanOrEqual(t.sequenceStartUnixMs[80]!);
  });
  it("a slow NVLink connection between two GPUs of one node is a link inside that node", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers(
          from80((s, d) => s === 9 && d === 10),
          3,
        ),
      }),
    );
    expect(summary(run(t))).toEqual([
      { faultClass: "slow-link", node: "node-2", peerNode: "node-2", nic: undefined, action: "restart-only" },
    ]);
  });
  it("a slow cell on a ring cannot be told from a slow sender or receiver: ambiguous, nobody blamed", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        ringOnly: true,
        transferUs: slowTransfers(
          from80((s) => s === 11),
          3,
        ),
      }),
    );
    const report = run(t);
    expect(report.verdicts).toEqual([]);
    expect(report.ambiguous).toHaveLength(1);
    expect(report.ambiguous[0]).toMatchObject({ suspected: "slow-link", nodes: ["node-2", "node-3"] });
  });
  it("slowness below the tolerance is not acted on", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers(
          from80((s, d) => nodeOf(s) === 5 && interNode(s, d)),
          1.2,
        ),
      }),
    );
    expect(run(t).verdicts).toEqual([]);
  });
  it("a slowdown that has not persisted yet is not acted on", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers((s, d, k) => k >= 200 && nodeOf(s) === 5 && interNode(s, d), 3),
      }),
    );
    expect(run(t).verdicts).toEqual([]);
  });
  it("many senders slow at once is a shared cause: ambiguous", () => {
    const t = syntheticTelemetry(
      jittered({
        sequences: 240,
        transferUs: slowTransfers(
          from80((s, d) => [1, 3, 5].includes(nodeOf(s)) && interNode(s, d)),
          3,
        ),
      }),
    );
    const report = run(t);
    expect(report.verdicts).toEqual([]);
    expect(report.ambiguous.length).toBeGreaterThan(0);
  });
  it("a flapping NIC (slow on all its connections in a few collectives) is blamed; a single flap is not", () => {
    const flaps = [120, 140, 160, 180, 200, 220]; // inside the 128-collective window, spanning more than 5 s
    const nic5 = (s: number, d: number) => interNode(s, d) && (nodeOf(s) === 5 || nodeOf(d) === 5);
    const t = syntheticTelemetry(
      jittered({ sequences: 240, transferUs: slowTransfers((s, d, k) => flaps.includes(k) && nic5(s, d), 10) }),
    );
    const report = run(t);
    expect(report.verdicts.map((v) => [v.faultClass, v.blame.node])).toEqual([["slow-sender", "node-5"]]);
    expect(report.verdicts[0]!.evidence.detail).toMatch(/intermittently/);
    const once = syntheticTelemetry(
      jittered({ sequences: 240, transferUs: slowTransfers((s, d, k) => k === 100 && nic5(s, d), 10) }),
    );
    expect(run(once).verdicts).toEqual([]);
  });
  it("a few flaps of one endpoint are coincidence when the job's other endpoints flap at that rate too", () => {
    // Four slow-at-once collectives of node 5's NIC, as in a flap, but every other node's NIC also has one or two in
    // the window: at that rate four on one NIC happen by chance within the job's false-alarm budget, so no blame.
    const own = [120, 150, 180, 210];
    const others = (node: number) => [125 + 9 * node, 170 + 7 * node];
    const flapAt = (s: number, d: number, k: number) =>
      interNode(s, d) && ((nodeOf(s) === 5 && own.includes(k)) || (nodeOf(s) !== 5 && others(nodeOf(s)).includes(k)));
    const t = syntheticTelemetry(jittered({ sequences: 240, transferUs: slowTransfers(flapAt, 10) }));
    expect(run(t).verdicts).toEqual([]);
  });
});

describe("non-communication slow: compute stragglers", () => {
  const straggler =
    (factor: number, from = 80) =>
    (r: number, k: number) =>
      r === 9 && k >= from ? 50_000 * factor : 50_000;
  it.each([1.5, 2, 5])("a rank x%f slower is consistently last: its node", (factor) => {
    const t = syntheticTelemetry(jittered({ sequences: 240, computeUs: straggler(factor) }));
    const report = run(t);
    expect(summary(report)).toEqual([
      { faultClass: "straggler", node: "node-2", peerNode: undefined, nic: undefined, action: "isolate-node" },
    ]);
    expect(report.verdicts[0]!.blame.ranks).toEqual([9]);
    expect(report.verdicts[0]!.evidence.timesMs.computeGapMs).toBeCloseTo(50 * factor, -1);
  });
  it("x1.2 is within the default 30 % tolerance, and blamed at a 10 % tolerance", () => {
    const t = syntheticTelemetry(jittered({ sequences: 240, computeUs: straggler(1.2) }));
    expect(run(t).verdicts).toEqual([]);
    expect(summary(run(t, 200, c4dConfigFor({ slowRankTolerancePercent: 10 })))[0]).toMatchObject({
      faultClass: "straggler",
      node: "node-2",
    });
  });
  it("a straggler that has not persisted yet is not acted on", () => {
    const t = syntheticTelemetry(jittered({ sequences: 240, computeUs: straggler(3, 225) }));
    expect(run(t).verdicts).toEqual([]);
  });
});

describe("non-communication hang: nothing open, nothing progresses", () => {
  const t = syntheticTelemetry(jittered({ sequences: 150 }));
  it("after the job's hangTimeoutSeconds with no collective: job-hang, nobody blamed, restart only", () => {
    const report = run(t, 61_000);
    expect(summary(report)).toEqual([
      { faultClass: "job-hang", node: "", peerNode: undefined, nic: undefined, action: "restart-only" },
    ]);
    expect(report.verdicts[0]!.evidence.sequence).toBe(149);
    expect(report.verdicts[0]!.firstAffectedUnixMs).toBe(t.lastUnixMs);
  });
  it("a pause shorter than that (a checkpoint write) is not a hang", () => {
    expect(run(t, 30_000).verdicts).toEqual([]);
  });
});
