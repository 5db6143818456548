import { describe, expect, it } from "vitest";
import { applyFaultCommand, FaultSpecError, NO_FAULTS, parseFaultAnnotation } from "./faults.js";
import {
  CheckpointCadence,
  checkpointPathFor,
  ringAllReduceUs,
  simulateStep,
  type TrainingPlacement,
} from "./training.js";

describe("parseFaultAnnotation", () => {
  it.each([
    { value: "", hung: [], slowRanks: [], slowLinks: [] },
    { value: "hang-rank=3", hung: [3], slowRanks: [], slowLinks: [] },
    { value: "slow-rank=5:x2.5; slow-link=3-2:x0.25", hung: [], slowRanks: [[5, 2.5]], slowLinks: [["2-3", 0.25]] },
  ])("'$value'", ({ value, hung, slowRanks, slowLinks }) => {
    const f = parseFaultAnnotation(value);
    expect([...f.hungRanks]).toEqual(hung);
    expect([...f.slowRanks]).toEqual(slowRanks);
    expect([...f.slowLinks]).toEqual(slowLinks);
  });

  it.each([
    ["unknown kind", "melt-rank=1", /unknown fault/],
    ["missing factor", "slow-rank=1", /factor/],
    ["speed-up as slow rank", "slow-rank=1:x0.5", />= 1/],
    ["link factor above 1", "slow-link=1-2:x3", /\(0, 1\]/],
    ["bad rank", "hang-rank=abc", /not a rank/],
  ])("rejects %s", (_n, value, error) => {
    expect(() => parseFaultAnnotation(value)).toThrow(FaultSpecError);
    expect(() => parseFaultAnnotation(value)).toThrow(error);
  });

  it("applies and clears fault commands", () => {
    const f = applyFaultCommand(NO_FAULTS, { kind: "slow-link", rank: 4, peerRank: 1, factor: 0.5 });
    expect([...f.slowLinks]).toEqual([["1-4", 0.5]]);
    expect(applyFaultCommand(f, { kind: "clear", rank: 0, peerRank: 0, factor: 0 })).toBe(NO_FAULTS);
  });
});

// Two 4-GPU nodes, 8 ranks; NVLink 450 GB/s inside, 400 Gb/s = 50 GB/s NIC between.
const placement: TrainingPlacement = {
  communicator: "job-a",
  rankNodes: ["n0", "n0", "n0", "n0", "n1", "n1", "n1", "n1"],
  intraNodeGBps: 450,
  interNodeGBps: 50,
  latencyUs: 10,
  computeMs: 100,
  bucketBytes: 1e9,
  bucketsPerStep: 2,
};

describe("simulated training", () => {
  it("ring all-reduce time follows 2(n-1)/n * bytes / slowest link + per-step latency", () => {
    // slowest link is inter-node 50 GB/s: 2*7/8 * 1e9 / 50e9 s = 35 ms, + 14 * 10 us
    expect(ringAllReduceUs(placement, NO_FAULTS)).toBeCloseTo(35_000 + 140, 6);
    // on one node the NVLink bound applies
    expect(ringAllReduceUs({ ...placement, rankNodes: Array(8).fill("n0") }, NO_FAULTS)).toBeCloseTo(
      (1.75e9 / 450e9) * 1e6 + 140,
      6,
    );
  });

  it("produces one record per rank per bucket with consistent sequences, bytes and peer transfers", () => {
    const step = simulateStep(placement, NO_FAULTS, 1_000_000, 10);
    expect(step.records).toHaveLength(16);
    expect(step.sequenceAfter).toBe(12);
    expect(new Set(step.records.map((r) => r.sequence))).toEqual(new Set([10, 11]));
    const first = step.records.filter((r) => r.sequence === 10);
    expect(first.every((r) => r.startUnixUs === 1_000_000 + 50_000 && r.endUnixUs === 1_050_000 + 35_140)).toBe(true);
    expect(first[3]!.peers).toEqual([
      { peerRank: 4, bytes: 1.75e9, startUnixUs: 1_050_000, endUnixUs: 1_050_000 + 35_000 },
    ]);
    expect(step.endUnixUs).toBe(1_000_000 + 2 * (50_000 + 35_140));
  });

  it("a slow rank delays everyone's collective end; a slow link slows the ring and shows on its peer transfer", () => {
    const normal = simulateStep(placement, NO_FAULTS, 0, 0);
    const slowRank = simulateStep(placement, parseFaultAnnotation("slow-rank=2:x3"), 0, 0);
    const r0 = (s: typeof normal) => s.records.find((r) => r.rank === 0 && r.sequence === 0)!;
    expect(r0(slowRank).startUnixUs).toBe(r0(normal).startUnixUs); // rank 0 itself is on time...
    expect(r0(slowRank).endUnixUs - r0(slowRank).startUnixUs).toBe(
      r0(normal).endUnixUs - r0(normal).startUnixUs + 100_000,
    ); // ...and waits 2 x 50 ms
    const slowLink = simulateStep(placement, parseFaultAnnotation("slow-link=1-2:x0.01"), 0, 0);
    const peer = (s: typeof normal, rank: number) =>
      s.records.find((r) => r.rank === rank && r.sequence === 0)!.peers[0]!;
    expect(peer(slowLink, 1).endUnixUs - peer(slowLink, 1).startUnixUs).toBeCloseTo((1.75e9 / 4.5e9) * 1e6, -1);
    expect(peer(slowLink, 5).endUnixUs - peer(slowLink, 5).startUnixUs).toBe(
      peer(normal, 5).endUnixUs - peer(normal, 5).startUnixUs,
    );
  });

  it("a hung rank reports nothing and its peers never finish", () => {
    const step = simulateStep(placement, parseFaultAnnotation("hang-rank=6"), 0, 3);
    expect(step.endUnixUs).toBeUndefined();
    expect(step.records.map((r) => r.rank)).toEqual([0, 1, 2, 3, 4, 5, 7]);
    expect(step.records.every((r) => r.endUnixUs === 0 && r.sequence === 3)).toBe(true);
  });
});

describe("checkpoint cadence", () => {
  it.each([
    { name: "fresh job, every 3 steps", resume: 0, interval: 3, steps: 7, next: 8, due: [3, 6] },
    {
      name: "resumed at a checkpoint: the next is one interval on",
      resume: 6,
      interval: 3,
      steps: 4,
      next: 11,
      due: [9],
    },
    {
      name: "resumed off the grid (interval changed): next multiple of the interval",
      resume: 5,
      interval: 4,
      steps: 4,
      next: 10,
      due: [8],
    },
    { name: "no interval in the pod: no checkpoints", resume: 0, interval: undefined, steps: 5, next: 6, due: [] },
  ])("$name", ({ resume, interval, steps, next, due }) => {
    const c = new CheckpointCadence(2, resume, interval);
    expect(c.nextStep).toBe(resume + 1);
    const got: number[] = [];
    for (let i = 0; i < steps; i++) {
      const step = c.nextStep;
      c.rankCompleted(0, step);
      c.rankCompleted(1, step);
      got.push(...c.takeDue());
    }
    expect(c.nextStep).toBe(next);
    expect(got).toEqual(due);
    expect(c.takeDue()).toEqual([]); // each checkpoint is reported once
  });

  it("a checkpoint is due only once every rank has finished its step", () => {
    const c = new CheckpointCadence(3, 0, 2);
    for (const step of [1, 2]) {
      c.rankCompleted(0, step);
      c.rankCompleted(1, step);
    }
    expect(c.step).toBe(0);
    expect(c.takeDue()).toEqual([]);
    c.rankCompleted(2, 1);
    expect(c.takeDue()).toEqual([]);
    c.rankCompleted(2, 2);
    expect(c.takeDue()).toEqual([2]);
  });

  it("rejects a bad resume step or interval and names the checkpoint path by step", () => {
    expect(() => new CheckpointCadence(1, -1, 5)).toThrow(/resume step/);
    expect(() => new CheckpointCadence(1, 0, 0)).toThrow(/interval/);
    expect(checkpointPathFor("s3://ckpt/job/", 1200)).toBe("s3://ckpt/job/step-00001200");
  });
});
