import { describe, expect, it } from "vitest";
import { applyFaultCommand, FaultSpecError, NO_FAULTS, parseFaultAnnotation } from "./faults.js";
import { DEFAULT_SERVED_MODEL, RooflineLatencyModel } from "./latency.js";
import { ServingSim } from "./serving.js";
import { ringAllReduceUs, simulateStep, type TrainingPlacement } from "./training.js";

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
  communicator: "job-a", rankNodes: ["n0", "n0", "n0", "n0", "n1", "n1", "n1", "n1"],
  intraNodeGBps: 450, interNodeGBps: 50, latencyUs: 10, computeMs: 100, bucketBytes: 1e9, bucketsPerStep: 2,
};

describe("simulated training", () => {
  it("ring all-reduce time follows 2(n-1)/n * bytes / slowest link + per-step latency", () => {
    // slowest link is inter-node 50 GB/s: 2*7/8 * 1e9 / 50e9 s = 35 ms, + 14 * 10 us
    expect(ringAllReduceUs(placement, NO_FAULTS)).toBeCloseTo(35_000 + 140, 6);
    // on one node the NVLink bound applies
    expect(ringAllReduceUs({ ...placement, rankNodes: Array(8).fill("n0") }, NO_FAULTS)).toBeCloseTo((1.75e9 / 450e9) * 1e6 + 140, 6);
  });

  it("produces one record per rank per bucket with consistent sequences, bytes and peer transfers", () => {
    const step = simulateStep(placement, NO_FAULTS, 1_000_000, 10);
    expect(step.records).toHaveLength(16);
    expect(step.sequenceAfter).toBe(12);
    expect(new Set(step.records.map((r) => r.sequence))).toEqual(new Set([10, 11]));
    const first = step.records.filter((r) => r.sequence === 10);
    expect(first.every((r) => r.startUnixUs === 1_000_000 + 50_000 && r.endUnixUs === 1_050_000 + 35_140)).toBe(true);
    expect(first[3]!.peers).toEqual([{ peerRank: 4, bytes: 1.75e9, startUnixUs: 1_050_000, endUnixUs: 1_050_000 + 35_000 }]);
    expect(step.endUnixUs).toBe(1_000_000 + 2 * (50_000 + 35_140));
  });

  it("a slow rank delays everyone's collective end; a slow link slows the ring and shows on its peer transfer", () => {
    const normal = simulateStep(placement, NO_FAULTS, 0, 0);
    const slowRank = simulateStep(placement, parseFaultAnnotation("slow-rank=2:x3"), 0, 0);
    const r0 = (s: typeof normal) => s.records.find((r) => r.rank === 0 && r.sequence === 0)!;
    expect(r0(slowRank).startUnixUs).toBe(r0(normal).startUnixUs); // rank 0 itself is on time...
    expect(r0(slowRank).endUnixUs - r0(slowRank).startUnixUs).toBe(r0(normal).endUnixUs - r0(normal).startUnixUs + 100_000); // ...and waits 2 x 50 ms
    const slowLink = simulateStep(placement, parseFaultAnnotation("slow-link=1-2:x0.01"), 0, 0);
    const peer = (s: typeof normal, rank: number) => s.records.find((r) => r.rank === rank && r.sequence === 0)!.peers[0]!;
    expect(peer(slowLink, 1).endUnixUs - peer(slowLink, 1).startUnixUs).toBeCloseTo(1.75e9 / 4.5e9 * 1e6, -1);
    expect(peer(slowLink, 5).endUnixUs - peer(slowLink, 5).startUnixUs).toBe(peer(normal, 5).endUnixUs - peer(normal, 5).startUnixUs);
  });

  it("a hung rank reports nothing and its peers never finish", () => {
    const step = simulateStep(placement, parseFaultAnnotation("hang-rank=6"), 0, 3);
    expect(step.endUnixUs).toBeUndefined();
    expect(step.records.map((r) => r.rank)).toEqual([0, 1, 2, 3, 4, 5, 7]);
    expect(step.records.every((r) => r.endUnixUs === 0 && r.sequence === 3)).toBe(true);
  });
});

describe("simulated serving", () => {
  it("roofline decode step is memory-bound: H100 reads 16 GB of weights at 80% of 3.35 TB/s", () => {
    const m = new RooflineLatencyModel("H100-80GB", DEFAULT_SERVED_MODEL);
    expect(m.decodeStepMs(1, 0)).toBeCloseTo((16e9 / (3350e9 * 0.8)) * 1000, 6);
    expect(new RooflineLatencyModel("H200-141GB", DEFAULT_SERVED_MODEL).decodeStepMs(1, 0)).toBeLessThan(m.decodeStepMs(1, 0));
    // prefill of 4096 tokens is compute-bound: 2 * 8e9 * 4096 / (989e12 * 0.6)
    expect(m.prefillBatchMs([4096])).toBeCloseTo(((2 * 8e9 * 4096) / (989e12 * 0.6)) * 1000, 6);
  });

  it.each([
    { name: "light load keeps the queue empty", rate: 2, queueEmpty: true },
    { name: "overload builds a queue and fills the KV cache", rate: 400, queueEmpty: false },
  ])("$name", ({ rate, queueEmpty }) => {
    const model = new RooflineLatencyModel("H100-80GB", DEFAULT_SERVED_MODEL);
    const sim = new ServingSim(model, { requestRatePerSec: rate, promptTokens: 1024, outputTokens: 256, maxBatchSequences: 256, seed: 7 }, 0);
    sim.advance(20_000);
    const load = sim.report(20_000);
    expect(load.queueLength === 0).toBe(queueEmpty);
    expect(load.tokensPerSecond).toBeGreaterThan(0);
    expect(load.tpotMs).toBeGreaterThan(model.decodeStepMs(1, 0) - 1e-9);
    if (!queueEmpty) {
      expect(load.runningRequests).toBeGreaterThan(100);
      expect(load.ttftMs).toBeGreaterThan(1000); // requests wait in the queue
    }
  });
});
