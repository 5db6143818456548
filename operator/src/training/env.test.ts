import { describe, expect, it } from "vitest";
import { cluster, makeTrainingJob } from "./builders.js";
import { GpufleetEnv, TrainingEnvError, trainingPodEnv, trainingRankEnv } from "./env.js";
import { planTrainingPlacement } from "./placement.js";
import type { CandidateNode, TrainingJobShape, TrainingPlacement } from "./types.js";

const opts = {
  masterAddr: "j-0.j.ns.svc",
  masterPort: 29500,
  checkpointPath: "s3://ckpt/j",
  checkpointIntervalSteps: 500,
  resumeStep: 1200,
};

function place(job: TrainingJobShape, nodes: CandidateNode[]): TrainingPlacement {
  const result = planTrainingPlacement({ job, nodes });
  if (!result.ok) throw new Error(result.message);
  return result;
}

const cases = [
  {
    name: "one island, tp=8 pp=2 dp=2",
    job: makeTrainingJob("a").parallel(8, 2, 2).obj(),
    nodes: cluster().island("ib", "infiniband", 4).build(),
  },
  {
    name: "IB + RoCE, tp=2 pp=4 dp=8",
    job: makeTrainingJob("b").parallel(2, 4, 8).obj(),
    nodes: cluster().island("ib", "infiniband", 4).island("roce", "roce", 4).build(),
  },
  {
    name: "tp=4 pp=3 dp=4 on 4-GPU nodes",
    job: makeTrainingJob("c").gpusPerNode(4).parallel(4, 3, 4).obj(),
    nodes: cluster().island("e", "ethernet", 12, { gpuCount: 4 }).build(),
  },
  {
    name: "tp=1 pp=2 dp=16",
    job: makeTrainingJob("d").parallel(1, 2, 16).obj(),
    nodes: cluster().island("ib", "infiniband", 2).island("roce", "roce", 2).build(),
  },
];

describe.each(cases)("rank env: $name", ({ job, nodes }) => {
  const p = place(job, nodes);
  const world = job.tp * job.pp * job.dp;
  const envs = Array.from({ length: world }, (_, r) => trainingRankEnv(p, r, opts));

  it("gives every rank 0..N−1 exactly once, consistent with torchrun's NODE_RANK × NPROC + LOCAL_RANK", () => {
    expect(envs.map((e) => Number(e.RANK)).sort((a, b) => a - b)).toEqual(Array.from({ length: world }, (_, i) => i));
    for (const e of envs) {
      expect(Number(e.RANK)).toBe(Number(e.NODE_RANK) * Number(e.NPROC_PER_NODE) + Number(e.LOCAL_RANK));
      expect(e.WORLD_SIZE).toBe(String(world));
      expect(e.MASTER_ADDR).toBe(opts.masterAddr);
      expect(e.MASTER_PORT).toBe("29500");
      expect(e[GpufleetEnv.resumeStep]).toBe("1200");
      expect(e[GpufleetEnv.checkpointIntervalSteps]).toBe("500");
      expect(e[GpufleetEnv.checkpointPath]).toBe("s3://ckpt/j");
      // The per-local-rank lists agree with the rank's own values.
      const local = Number(e.LOCAL_RANK);
      expect(e[GpufleetEnv.ranks]!.split(",")[local]).toBe(e.RANK);
      expect(e[GpufleetEnv.tpRanks]!.split(",")[local]).toBe(e[GpufleetEnv.tpRank]);
      expect(e[GpufleetEnv.dpRanks]!.split(",")[local]).toBe(e[GpufleetEnv.dpRank]);
    }
  });

  it("forms TP, DP and PP groups of the right sizes, each (pp, dp, tp) triple exactly once", () => {
    const triples = new Set(
      envs.map((e) => `${e[GpufleetEnv.ppRank]}/${e[GpufleetEnv.dpRank]}/${e[GpufleetEnv.tpRank]}`),
    );
    expect(triples.size).toBe(world);
    const sizeOf = (key: (e: Record<string, string>) => string) => {
      const m = new Map<string, number>();
      for (const e of envs) m.set(key(e), (m.get(key(e)) ?? 0) + 1);
      return [...new Set(m.values())];
    };
    expect(sizeOf((e) => `${e[GpufleetEnv.ppRank]}/${e[GpufleetEnv.dpRank]}`)).toEqual([job.tp]);
    expect(sizeOf((e) => `${e[GpufleetEnv.ppRank]}/${e[GpufleetEnv.tpRank]}`)).toEqual([job.dp]);
    expect(sizeOf((e) => `${e[GpufleetEnv.dpRank]}/${e[GpufleetEnv.tpRank]}`)).toEqual([job.pp]);
    for (const e of envs) {
      expect(Number(e[GpufleetEnv.tpRank])).toBeLessThan(job.tp);
      expect(Number(e[GpufleetEnv.dpRank])).toBeLessThan(job.dp);
      expect(Number(e[GpufleetEnv.ppRank])).toBeLessThan(job.pp);
    }
  });

  it("gives each PP rank one contiguous layer range, covering every layer once", () => {
    const ranges = new Map<number, [number, number]>();
    for (const e of envs) {
      const range: [number, number] = [Number(e[GpufleetEnv.layerStart]), Number(e[GpufleetEnv.layerEndExclusive])];
      const pp = Number(e[GpufleetEnv.ppRank]);
      expect(ranges.get(pp) ?? range).toEqual(range);
      ranges.set(pp, range);
    }
    let next = 0;
    for (let s = 0; s < job.pp; s++) {
      const [start, end] = ranges.get(s)!;
      expect(start).toBe(next);
      expect(end).toBeGreaterThan(start);
      next = end;
    }
    expect(next).toBe(job.model.layers);
  });
});

describe("NCCL settings by NIC type and by groups that cross fabrics", () => {
  const nodes = cluster()
    .island("ib", "infiniband", 4, { nicCount: 4 })
    .island("roce", "roce", 4, { nicCount: 2 })
    .island("eth", "ethernet", 4, { nicCount: 2 })
    .build();
  // 6 stages of two nodes each: pipeline ib, ib, roce, roce, eth, eth (fastest DP ring first).
  const p = place(makeTrainingJob("n").parallel(8, 6, 2).obj(), nodes);
  const podEnv = (name: string) => trainingPodEnv(p, p.nodes.find((n) => n.nodeName === name)!.nodeRank, opts);

  it("orders the islands fastest first", () => {
    expect(p.stages.map((s) => s.island)).toEqual(["ib", "ib", "roce", "roce", "eth", "eth"]);
  });

  it.each([
    {
      name: "IB node inside its island: HCAs only",
      node: "ib-n000",
      want: { NCCL_IB_HCA: "=mlx5_0,mlx5_1,mlx5_2,mlx5_3" },
      absent: ["NCCL_IB_GID_INDEX", "NCCL_IB_DISABLE", "NCCL_SOCKET_IFNAME", GpufleetEnv.ppPrevTransport],
    },
    {
      name: "IB node at the IB→RoCE boundary: HCAs plus a socket interface for that one PP link",
      node: "ib-n003",
      want: {
        NCCL_IB_HCA: "=mlx5_0,mlx5_1,mlx5_2,mlx5_3",
        NCCL_SOCKET_IFNAME: "=eth0",
        [GpufleetEnv.ppNextTransport]: "socket",
        [GpufleetEnv.ppPrevTransport]: "infiniband",
      },
      absent: ["NCCL_IB_DISABLE"],
    },
    {
      name: "RoCE node: HCAs and the RoCE v2 GID index",
      node: "roce-n000",
      want: { NCCL_IB_HCA: "=mlx5_0,mlx5_1", NCCL_IB_GID_INDEX: "3", [GpufleetEnv.ppNextTransport]: "roce" },
      absent: ["NCCL_IB_DISABLE"],
    },
    {
      name: "Ethernet node: RDMA off, sockets on",
      node: "eth-n003",
      want: { NCCL_IB_DISABLE: "1", NCCL_SOCKET_IFNAME: "=eth0", [GpufleetEnv.nicType]: "ethernet" },
      absent: ["NCCL_IB_HCA", "NCCL_IB_GID_INDEX", GpufleetEnv.ppNextTransport],
    },
  ])("$name", ({ node, want, absent }) => {
    const env = podEnv(node);
    expect(env).toMatchObject(want);
    for (const key of absent) expect(env).not.toHaveProperty(key);
  });

  it("falls back to sockets for a DP group that really spans fabrics", () => {
    const mixed = cluster().island("ib-a", "infiniband", 1).island("ib-b", "infiniband", 1).build();
    const q = place(makeTrainingJob("m").parallel(8, 1, 2).obj(), mixed);
    expect(q.stages[0]!.dpTransport).toBe("socket");
    for (const n of q.nodes)
      expect(trainingPodEnv(q, n.nodeRank, opts)).toMatchObject({
        NCCL_IB_DISABLE: "1",
        NCCL_SOCKET_IFNAME: "=eth0",
        [GpufleetEnv.dpTransport]: "socket",
      });
  });
});

describe("trainingPodEnv / trainingRankEnv errors", () => {
  const p = place(makeTrainingJob("e").parallel(8, 2, 1).obj(), cluster().island("ib", "infiniband", 2).build());
  it.each([
    { name: "node rank out of range", call: () => trainingPodEnv(p, 2, opts), match: /node rank 2 is not in 0..1/ },
    { name: "fractional node rank", call: () => trainingPodEnv(p, 0.5, opts), match: /node rank 0.5/ },
    { name: "rank out of range", call: () => trainingRankEnv(p, 16, opts), match: /rank 16 is not in 0..15/ },
    { name: "bad port", call: () => trainingPodEnv(p, 0, { ...opts, masterPort: 70000 }), match: /masterPort 70000/ },
    {
      name: "negative resume step",
      call: () => trainingPodEnv(p, 0, { ...opts, resumeStep: -1 }),
      match: /resumeStep -1/,
    },
    {
      name: "zero checkpoint interval",
      call: () => trainingPodEnv(p, 0, { ...opts, checkpointIntervalSteps: 0 }),
      match: /checkpointIntervalSteps 0/,
    },
    {
      name: "empty master address",
      call: () => trainingPodEnv(p, 0, { ...opts, masterAddr: "" }),
      match: /masterAddr is empty/,
    },
  ])("$name", ({ call, match }) => {
    expect(call).toThrow(TrainingEnvError);
    expect(call).toThrow(match);
  });
});

describe("trainingPodEnv: the job's C4P traffic plan", () => {
  const ib = place(makeTrainingJob("f").parallel(8, 1, 2).obj(), cluster().island("ib", "infiniband", 2).build());
  const eth = place(makeTrainingJob("g").parallel(8, 1, 2).obj(), cluster().island("e", "ethernet", 2).build());

  it("carries the plan's QPs per connection as NCCL_IB_QPS_PER_CONNECTION, beside the HCA list it keeps", () => {
    const env = trainingPodEnv(ib, 1, { ...opts, qpsPerConnection: 16 });
    expect(env.NCCL_IB_QPS_PER_CONNECTION).toBe("16");
    expect(env.NCCL_IB_HCA).toBe(trainingPodEnv(ib, 1, opts).NCCL_IB_HCA);
  });

  it("sets nothing without a plan, or where NCCL has no RDMA (no QPs at all)", () => {
    expect(trainingPodEnv(ib, 0, opts)).not.toHaveProperty("NCCL_IB_QPS_PER_CONNECTION");
    const plain = trainingPodEnv(eth, 0, { ...opts, qpsPerConnection: 4 });
    expect(plain.NCCL_IB_DISABLE).toBe("1");
    expect(plain).not.toHaveProperty("NCCL_IB_QPS_PER_CONNECTION");
  });

  it.each([0, 3.5, 129])("refuses %s QPs per connection (NCCL takes 1..128)", (q) => {
    const call = () => trainingPodEnv(ib, 0, { ...opts, qpsPerConnection: q });
    expect(call).toThrow(TrainingEnvError);
    expect(call).toThrow(new RegExp(`${q} QPs per connection is not in 1..128`));
  });
});
