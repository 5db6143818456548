/**
 * The agent's simulated jobs (rail layout, 8 channels, one NIC per GPU) through the real read model and detector:
 * what the end-to-end test sees, without the cluster. A slow link between two nodes is blamed on that link, a slow
 * NIC on that NIC; on two nodes every NIC has one peer and the same slow link stays ambiguous.
 */
import { describe, expect, it } from "vitest";
import type { CollectiveRecord } from "../../common/src/telemetry/records.js";
import { NO_FAULTS, type Faults } from "../../agent/src/workers/simulated/faults.js";
import { railRingOrder, simulateStep, type TrainingPlacement } from "../../agent/src/workers/simulated/training.js";
import { c4dConfigFor, type C4dAmbiguity, type C4dVerdict } from "../../operator/src/training/c4d/index.js";
import { DetectorDriver, visibleAt } from "./drive.js";

const GPUS = 8;

function placement(nodes: number): TrainingPlacement {
  const rankNodes = Array.from({ length: nodes * GPUS }, (_, r) => `node-${Math.floor(r / GPUS)}`);
  return {
    communicator: "rails",
    rankNodes,
    intraNodeGBps: 450,
    interNodeGBps: 50,
    latencyUs: 10,
    computeMs: 200,
    bucketBytes: 64 * 2 ** 20,
    bucketsPerStep: 4,
    channels: 8,
    layout: "rails",
    rankNics: rankNodes.map((_, r) => r % GPUS),
  };
}

/** Runs 60 fault-free steps, then `faults` for 60 s of simulated time, ticking the detector every 500 ms. */
function run(nodes: number, faults: Faults): { verdicts: C4dVerdict[]; ambiguous: C4dAmbiguity[] } {
  const p = placement(nodes);
  const driver = new DetectorDriver(
    "ns/rails",
    p.rankNodes,
    p.rankNics!.map((i) => `mlx5_${i}`),
    c4dConfigFor({ slowRankTolerancePercent: 30, hangTimeoutSeconds: 60 }),
  );
  const t0 = 1_780_000_000_000;
  let startUs = t0 * 1000;
  let sequence = 0;
  let steps = 0;
  const pending: { at: number; record: CollectiveRecord }[] = [];
  for (let now = t0 + 500; now <= t0 + 80_000 && driver.verdicts.length === 0; now += 500) {
    while (startUs / 1000 <= now) {
      const step = simulateStep(p, steps++ < 60 ? NO_FAULTS : faults, startUs, sequence);
      sequence = step.sequenceAfter;
      for (const record of step.records) pending.push({ at: visibleAt(record), record });
      startUs = step.endUnixUs!;
    }
    const due = pending.filter((x) => x.at <= now);
    driver.deliver(
      due.map((x) => x.record),
      now,
    );
    pending.splice(0, pending.length, ...pending.filter((x) => x.at > now));
    driver.tick(now);
  }
  return { verdicts: driver.verdicts, ambiguous: driver.ambiguities };
}

describe("rail layout of the simulated jobs", () => {
  it("every leaving NIC sends to two nodes and every entering NIC receives from two (more than two nodes)", () => {
    const nodes = [0, 1, 2, 3].map((n) => Array.from({ length: GPUS }, (_, j) => n * GPUS + j));
    const peers = new Map<number, Set<number>>();
    for (let c = 0; c < 8; c++) {
      const order = railRingOrder(nodes, c);
      expect([...order].sort((a, b) => a - b)).toEqual(nodes.flat());
      order.forEach((r, i) => {
        const to = order[(i + 1) % order.length]!;
        if (Math.floor(r / GPUS) !== Math.floor(to / GPUS))
          peers.set(r, new Set([...(peers.get(r) ?? []), Math.floor(to / GPUS)]));
      });
    }
    expect(peers.size).toBe(16); // locals 7, 1, 3, 5 of each node leave it
    for (const s of peers.values()) expect(s.size).toBe(2);
    expect(railRingOrder(nodes, 0)).toEqual(nodes.flat());
  });

  it("a slow link between two nodes (ranks 7-8, x0.1) is blamed on that link", () => {
    const { verdicts } = run(4, { ...NO_FAULTS, slowLinks: new Map([["7-8", 0.1]]) });
    expect(verdicts).toEqual([
      expect.objectContaining({
        faultClass: "slow-link",
        action: "restart-only",
        blame: expect.objectContaining({ node: "node-0", peerNode: "node-1" }),
      }),
    ]);
  });

  it("a slow NIC (rank 9's, x0.1) is blamed on that NIC of its node, nothing else", () => {
    const { verdicts } = run(4, { ...NO_FAULTS, slowNics: new Map([[9, 0.1]]) });
    expect(verdicts).toEqual([
      expect.objectContaining({
        action: "mark-nic",
        blame: expect.objectContaining({ node: "node-1", nic: "mlx5_1" }),
      }),
    ]);
  });

  it("on two nodes each NIC has one peer: the slow link is ambiguous, nobody blamed", () => {
    const { verdicts, ambiguous } = run(2, { ...NO_FAULTS, slowLinks: new Map([["7-8", 0.1]]) });
    expect(verdicts).toEqual([]);
    expect(ambiguous.length).toBeGreaterThan(0);
  });
});
