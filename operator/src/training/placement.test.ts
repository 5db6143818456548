import { describe, expect, it } from "vitest";
import type { NicType } from "../../../crds/src/topology.js";
import { cluster, GptShape, makeTrainingJob } from "./builders.js";
import { planObliviousPlacement, planTrainingPlacement } from "./placement.js";
import {
  Transport,
  type CandidateNode,
  type TrainingJobShape,
  type TrainingPlacement,
  type TrainingPlacementResult,
} from "./types.js";
import { seededRandom as rng } from "../../../common/src/random.js";

function placed(result: TrainingPlacementResult): TrainingPlacement {
  if (!result.ok) throw new Error(`expected a placement, got ${result.reason}: ${result.message}`);
  return result;
}

/** Members of each group kind, keyed by the ranks the group shares (Megatron: DP groups share pp and tp). */
function groups(p: TrainingPlacement, kind: "tp" | "dp" | "pp"): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const r of p.ranks) {
    const key =
      kind === "tp" ? `${r.ppRank}/${r.dpRank}` : kind === "dp" ? `${r.ppRank}/${r.tpRank}` : `${r.dpRank}/${r.tpRank}`;
    out.set(key, [...(out.get(key) ?? []), r.rank]);
  }
  return out;
}

/** Invariants every placement must satisfy, whatever the algorithm. */
function expectConsistent(p: TrainingPlacement, job: TrainingJobShape, candidates: readonly CandidateNode[]): void {
  const world = job.nodes * job.gpusPerNode;
  expect(p.worldSize).toBe(world);
  expect(p.ranks.map((r) => r.rank)).toEqual(Array.from({ length: world }, (_, i) => i));
  for (const r of p.ranks) {
    expect(r.rank).toBe((r.ppRank * job.dp + r.dpRank) * job.tp + r.tpRank);
    expect(r.rank).toBe(r.nodeRank * job.gpusPerNode + r.localRank);
    expect(p.nodes[r.nodeRank]!.nodeName).toBe(r.nodeName);
    expect(p.nodes[r.nodeRank]!.stage).toBe(r.ppRank);
  }
  const nodeNames = p.nodes.map((n) => n.nodeName);
  expect(new Set(nodeNames).size).toBe(job.nodes);
  const byName = new Map(candidates.map((n) => [n.nodeName, n]));
  for (const name of nodeNames) {
    const n = byName.get(name)!;
    expect(n.isolated || !n.schedulable || n.gpusFree < job.gpusPerNode).toBe(false);
  }
  const sizes = {
    tp: [job.pp * job.dp, job.tp],
    dp: [job.pp * job.tp, job.dp],
    pp: [job.dp * job.tp, job.pp],
  } as const;
  for (const kind of ["tp", "dp", "pp"] as const) {
    const g = groups(p, kind);
    expect(g.size).toBe(sizes[kind][0]);
    for (const members of g.values()) expect(members).toHaveLength(sizes[kind][1]);
  }
  for (const members of groups(p, "tp").values())
    expect(new Set(members.map((r) => p.ranks[r]!.nodeName)).size).toBe(1);
  const covered = p.stages.flatMap((s) =>
    Array.from({ length: s.layerEndExclusive - s.layerStart }, (_, i) => s.layerStart + i),
  );
  expect(covered).toEqual(Array.from({ length: job.model.layers }, (_, i) => i));
}

function dpGroupNicTypes(p: TrainingPlacement): Set<NicType>[] {
  return [...groups(p, "dp").values()].map(
    (members) => new Set(members.map((r) => p.nodes[p.ranks[r]!.nodeRank]!.nicType)),
  );
}

describe("planTrainingPlacement: invalid input", () => {
  const nodes = cluster().island("ib", "infiniband", 8).build();
  it.each([
    {
      name: "tp·pp·dp ≠ nodes·gpusPerNode",
      job: makeTrainingJob("j").parallel(8, 2, 2).with({ nodes: 5 }).obj(),
      match: /must equal nodes × gpusPerNode/,
    },
    {
      name: "tp does not divide gpusPerNode",
      job: makeTrainingJob("j").parallel(3, 1, 8).with({ nodes: 3 }).obj(),
      match: /must divide gpusPerNode/,
    },
    {
      name: "a node would hold two stages",
      job: makeTrainingJob("j").parallel(2, 4, 2).obj(),
      match: /each node serves one pipeline stage/,
    },
    {
      name: "more stages than layers",
      job: makeTrainingJob("j").parallel(8, 4, 1).model({ paramsBillions: 1, layers: 3, hiddenSize: 1024 }).obj(),
      match: /cannot exceed model.layers/,
    },
    {
      name: "unknown GPU model asked for",
      job: makeTrainingJob("j").parallel(8, 1, 1).with({ gpuModel: "B300" }).obj(),
      match: /unknown GPU model "B300"/,
    },
    {
      name: "zero hidden size",
      job: makeTrainingJob("j").parallel(8, 1, 1).model({ paramsBillions: 1, layers: 4, hiddenSize: 0 }).obj(),
      match: /hiddenSize must be a positive integer/,
    },
  ])("$name", ({ job, match }) => {
    const result = planTrainingPlacement({ job, nodes });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe("InvalidInput");
    expect(result.message).toMatch(match);
    expect(result.message).toContain("TrainingJob j");
  });

  it("refuses a node listed twice", () => {
    const result = planTrainingPlacement({
      job: makeTrainingJob("j").parallel(8, 1, 1).obj(),
      nodes: [...nodes, nodes[0]!],
    });
    expect(result.ok || result.message).toMatch(/ib-n000 listed twice/);
  });
});

describe("planTrainingPlacement: gang, all or nothing", () => {
  const job = makeTrainingJob("j").parallel(8, 4, 2).obj(); // 8 nodes
  const base = cluster().island("ib", "infiniband", 10);

  it.each([
    {
      name: "two isolated, one cordoned, one busy: 6 usable of 10",
      nodes: cluster()
        .island("ib", "infiniband", 10)
        .isolate("ib-n000", "ib-n001")
        .cordon("ib-n002")
        .gpusFree(4, "ib-n003")
        .build(),
      missing: { nodesUsable: 6, isolated: 2, unschedulable: 1, insufficientFreeGpus: 1 },
      message:
        "needs 8 nodes with 8 free GPUs; 6 usable, 2 isolated, 1 unschedulable, 1 with fewer than 8 free GPUs (short by 2)",
    },
    {
      name: "only 5 nodes exist",
      nodes: cluster().island("ib", "infiniband", 5).build(),
      missing: { nodesUsable: 5, isolated: 0 },
      message: "needs 8 nodes with 8 free GPUs; 5 usable (short by 3)",
    },
    {
      name: "wrong GPU model for the job",
      nodes: cluster().island("ib", "infiniband", 4).island("a", "infiniband", 6, { gpuModel: "A100-80GB" }).build(),
      missing: { nodesUsable: 4, otherGpuModel: 6 },
      message: "needs 8 nodes with 8 free GPUs; 4 usable, 6 with another GPU model (short by 4)",
      gpuModel: "H100-80GB",
    },
    {
      name: "GPU model not in the catalog",
      nodes: cluster().island("x", "infiniband", 9, { gpuModel: "MI300X" }).build(),
      missing: { nodesUsable: 0, unknownGpuModel: 9 },
      message: "needs 8 nodes with 8 free GPUs; 0 usable, 9 with a GPU model not in the catalog (short by 8)",
    },
  ])("$name → Unschedulable, nothing placed", ({ nodes, missing, message, gpuModel }) => {
    const result = planTrainingPlacement({ job: { ...job, ...(gpuModel ? { gpuModel } : {}) }, nodes });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe("Unschedulable");
    expect(result.message).toBe(message);
    expect(result.missing).toMatchObject({ nodesNeeded: 8, gpusPerNode: 8, ...missing });
    expect(result).not.toHaveProperty("ranks");
  });

  it("places every rank once it fits, never on isolated, cordoned or busy nodes", () => {
    const nodes = base.isolate("ib-n004").cordon("ib-n007").build();
    const p = placed(planTrainingPlacement({ job, nodes }));
    expectConsistent(p, job, nodes);
    expect(p.nodes.map((n) => n.nodeName)).not.toContain("ib-n004");
    expect(p.nodes.map((n) => n.nodeName)).not.toContain("ib-n007");
  });
});

describe("planTrainingPlacement: Holmes NIC-aware placement", () => {
  it("prefers a single island when the job fits in one", () => {
    const nodes = cluster().island("roce", "roce", 8).island("ib", "infiniband", 8).build();
    const job = makeTrainingJob("j").parallel(8, 2, 2).obj();
    const p = placed(planTrainingPlacement({ job, nodes }));
    expectConsistent(p, job, nodes);
    expect(p.islandsUsed).toEqual(["ib"]);
    expect(p.stages.every((s) => s.nextTransport === null || s.nextTransport === Transport.infiniband)).toBe(true);
  });

  it("Holmes paper mix (IB + RoCE islands, GPT-7.5B): DP groups stay in islands, the slower island gets fewer layers", () => {
    const nodes = cluster()
      .island("ib", "infiniband", 4, { nicBandwidthGbps: 200 })
      .island("roce", "roce", 4, { nicBandwidthGbps: 100 })
      .build();
    const job = makeTrainingJob("gpt")
      .parallel(2, 4, 8)
      .model({ ...GptShape["gpt-7.5b"], globalBatchSequences: 64 })
      .obj(); // 8 nodes, 2 per stage
    const p = placed(planTrainingPlacement({ job, nodes }));
    expectConsistent(p, job, nodes);
    for (const types of dpGroupNicTypes(p)) expect(types.size).toBe(1);
    expect(p.stages.every((s) => !s.island.includes("+"))).toBe(true);
    // Stages at the same distance from the IB↔RoCE boundary pay the same pipeline sends; the RoCE one gets fewer
    // layers.
    const layers = p.stages.map((s) => s.layerEndExclusive - s.layerStart);
    expect(p.stages.map((s) => s.island)).toEqual(["ib", "ib", "roce", "roce"]);
    expect(layers[3]!).toBeLessThan(layers[0]!);
    expect(layers[2]!).toBeLessThan(layers[1]!);
    expect(p.predictedStepMs).toBeLessThan(p.obliviousStepMs);
    // Stages of one island are consecutive: one fabric crossing, on sockets.
    expect(p.stages.filter((s) => s.nextTransport === Transport.socket)).toHaveLength(1);
  });

  it("beats a NIC-oblivious order that interleaves islands", () => {
    const nodes = cluster()
      .island("ib", "infiniband", 8, { prefix: "gpu-a" })
      .island("eth", "ethernet", 8, { prefix: "gpu-b", nicCount: 2 })
      .build();
    // Rack-interleaved names: kube-scheduler's order mixes the fabrics inside every DP group.
    const interleaved = nodes.map((_, i) => nodes[(i % 2) * 8 + Math.floor(i / 2)]!);
    const job = makeTrainingJob("j").parallel(8, 4, 2).obj();
    const holmes = placed(planTrainingPlacement({ job, nodes }));
    const oblivious = placed(planObliviousPlacement({ job, nodes: interleaved }));
    expectConsistent(oblivious, job, nodes);
    expect(oblivious.stages.some((s) => s.nicType === "mixed")).toBe(true);
    expect(holmes.stages.every((s) => s.nicType !== "mixed")).toBe(true);
    expect(holmes.predictedStepMs).toBeLessThan(oblivious.predictedStepMs);
  });

  it("matches the oblivious step time on one homogeneous IB island", () => {
    const nodes = cluster().island("ib", "infiniband", 16).build();
    const job = makeTrainingJob("j").parallel(8, 4, 4).obj();
    const p = placed(planTrainingPlacement({ job, nodes }));
    expect(p.predictedStepMs / p.obliviousStepMs).toBeCloseTo(1, 6);
  });

  it("keeps DP groups within one NIC type when no island holds a stage but a type does", () => {
    // Stages need 3 nodes; every island has 2, so stages must span islands — but never NIC types.
    const nodes = cluster()
      .island("ib-a", "infiniband", 2)
      .island("roce-a", "roce", 2)
      .island("ib-b", "infiniband", 2)
      .island("roce-b", "roce", 2)
      .island("ib-c", "infiniband", 2)
      .island("roce-c", "roce", 2)
      .build();
    const job = makeTrainingJob("j").parallel(8, 2, 3).obj();
    const p = placed(planTrainingPlacement({ job, nodes }));
    expectConsistent(p, job, nodes);
    for (const types of dpGroupNicTypes(p)) expect(types.size).toBe(1);
    expect(p.stages.every((s) => s.dpTransport === Transport.socket)).toBe(true);
    expect(p.summary).toMatch(/fall back to sockets/);
  });

  it("uses the NIC-oblivious order when nicAware is off", () => {
    const nodes = cluster().island("roce", "roce", 4).island("ib", "infiniband", 4).build();
    const job = makeTrainingJob("j").parallel(8, 2, 2).nicAware(false).obj();
    const p = placed(planTrainingPlacement({ job, nodes }));
    expect(p.strategy).toBe("oblivious");
    expect(p.nodes.map((n) => n.nodeName)).toEqual(["ib-n000", "ib-n001", "ib-n002", "ib-n003"]);
    expect(p.predictedStepMs).toBe(p.obliviousStepMs);
  });

  it("orders a stage's nodes by leaf so its ring stays on few leaves", () => {
    const nodes = cluster().island("ib", "infiniband", 8, { nodesPerLeaf: 2 }).build().reverse();
    const job = makeTrainingJob("j").parallel(8, 2, 2).obj();
    const p = placed(planTrainingPlacement({ job, nodes }));
    for (const s of p.stages)
      expect(new Set(s.nodeNames.map((n) => nodes.find((x) => x.nodeName === n)!.leaf)).size).toBe(1);
  });
});

const nicTypes: NicType[] = ["infiniband", "roce", "ethernet"];
const randomClusters = Array.from({ length: 80 }, (_, i) => {
  const next = rng(7 + i);
  const b = cluster();
  const islands = 1 + Math.floor(next() * 5);
  for (let k = 0; k < islands; k++)
    b.island(`is${k}`, nicTypes[Math.floor(next() * 3)]!, Math.floor(next() * 7), {
      nicBandwidthGbps: 100 * (1 + Math.floor(next() * 4)),
    });
  const nodes = b.build().map((n) => (next() < 0.1 ? { ...n, isolated: true } : n));
  const nodesPerStage = 1 + Math.floor(next() * 3);
  const pp = 1 + Math.floor(next() * 4);
  const job = makeTrainingJob(`r${i}`).parallel(8, pp, nodesPerStage).obj();
  return {
    name: `random cluster #${i}: ${islands} islands, ${pp} stages × ${nodesPerStage} nodes`,
    nodes,
    job,
    nodesPerStage,
  };
});

describe.each(randomClusters)("planTrainingPlacement property: $name", ({ nodes, job, nodesPerStage }) => {
  const usable = nodes.filter((n) => !n.isolated);
  const count = (key: (n: CandidateNode) => string) => {
    const m = new Map<string, number>();
    for (const n of usable) m.set(key(n), (m.get(key(n)) ?? 0) + 1);
    return [...m.values()].reduce((sum, c) => sum + Math.floor(c / nodesPerStage), 0);
  };
  const result = planTrainingPlacement({ job, nodes });

  it("places the whole gang exactly when enough usable nodes exist", () => {
    expect(result.ok).toBe(usable.length >= job.nodes);
    if (result.ok) expectConsistent(result, job, nodes);
    else expect(result.reason).toBe("Unschedulable");
  });

  it("never lets a DP group straddle NIC types when a placement avoiding it exists", () => {
    if (!result.ok || count((n) => n.nicType) < job.pp) return;
    for (const types of dpGroupNicTypes(result)) expect(types.size).toBe(1);
  });

  it("keeps every stage inside one island when islands can hold all stages", () => {
    if (!result.ok || count((n) => `${n.island}/${n.nicType}`) < job.pp) return;
    expect(
      result.stages.every(
        (s) => !s.island.includes("+") && (s.dpTransport !== Transport.socket || s.nicType === "ethernet"),
      ),
    ).toBe(true);
  });

  it("predicts no worse than the NIC-oblivious placement", () => {
    if (!result.ok) return;
    expect(result.predictedStepMs).toBeLessThanOrEqual(result.obliviousStepMs * (1 + 1e-9));
  });
});
