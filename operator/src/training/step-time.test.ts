import { describe, expect, it } from "vitest";
import { cluster, makeTrainingJob } from "./builders.js";
import { DEFAULT_LINK_MODEL, estimateStep, groupLink, linkModelWith, stageCosts, stepShape } from "./step-time.js";
import { Transport } from "./types.js";

const nodes = cluster()
  .island("ib", "infiniband", 4, { nicCount: 8, nicBandwidthGbps: 400 })
  .island("roce", "roce", 4, { nicCount: 8, nicBandwidthGbps: 200 })
  .island("eth", "ethernet", 4, { nicCount: 2, nicBandwidthGbps: 100 })
  .island("ib2", "infiniband", 2, { nicCount: 8, nicBandwidthGbps: 400 })
  .build();
const byName = (name: string) => nodes.find((n) => n.nodeName === name)!;
const model = DEFAULT_LINK_MODEL;

describe("groupLink", () => {
  it.each([
    { name: "one node → NVLink", group: ["ib-n000"], transport: Transport.nvlink, GBps: Number.POSITIVE_INFINITY },
    {
      name: "IB island → InfiniBand at 8×400 Gb/s × efficiency",
      group: ["ib-n000", "ib-n001"],
      transport: Transport.infiniband,
      GBps: (8 * 400 * model.efficiency.infiniband) / 8,
    },
    {
      name: "RoCE island → RoCE",
      group: ["roce-n000", "roce-n003"],
      transport: Transport.roce,
      GBps: (8 * 200 * model.efficiency.roce) / 8,
    },
    {
      name: "Ethernet island → sockets on its NICs",
      group: ["eth-n000", "eth-n001"],
      transport: Transport.socket,
      GBps: (2 * 100 * model.efficiency.ethernet) / 8,
    },
    {
      name: "two IB islands (two fabrics) → sockets capped by the inter-island path",
      group: ["ib-n000", "ib2-n000"],
      transport: Transport.socket,
      GBps: (model.crossIslandGbpsPerNode * model.crossIslandSocketEfficiency) / 8,
    },
    {
      name: "IB + RoCE → sockets",
      group: ["ib-n000", "roce-n000"],
      transport: Transport.socket,
      GBps: (model.crossIslandGbpsPerNode * model.crossIslandSocketEfficiency) / 8,
    },
  ])("$name", ({ group, transport, GBps }) => {
    const link = groupLink(group.map(byName), model);
    expect(link.transport).toBe(transport);
    expect(link.nodeGBps).toBeCloseTo(GBps, 9);
  });
});

describe("stepShape", () => {
  it.each([
    { global: 512, micro: 1, dp: 8, want: 64 },
    { global: 512, micro: 2, dp: 8, want: 32 },
    { global: 100, micro: 1, dp: 8, want: 13 }, // a partial micro-batch still costs a whole one
    { global: 4, micro: 1, dp: 8, want: 1 },
  ])("global $global, micro $micro, dp $dp → $want micro-batches", ({ global, micro, dp, want }) => {
    const job = makeTrainingJob("j")
      .parallel(8, 1, dp)
      .model({
        paramsBillions: 7.5,
        layers: 36,
        hiddenSize: 4096,
        globalBatchSequences: global,
        microBatchSequences: micro,
      })
      .obj();
    expect(stepShape(job).microBatches).toBe(want);
  });
});

describe("stageCosts and estimateStep", () => {
  const job = makeTrainingJob("j").parallel(8, 2, 2).obj(); // 2 stages × 2 nodes

  it("charges DP sync on the stage's island NIC: RDMA islands sync faster than sockets", () => {
    const [ib] = stageCosts(job, [[byName("ib-n000"), byName("ib-n001")]], model);
    const [roce] = stageCosts(job, [[byName("roce-n000"), byName("roce-n001")]], model);
    const [eth] = stageCosts(job, [[byName("eth-n000"), byName("eth-n001")]], model);
    const [straddle] = stageCosts(job, [[byName("ib-n000"), byName("roce-n001")]], model);
    expect(ib!.dpSyncPerLayerMs).toBeLessThan(roce!.dpSyncPerLayerMs);
    expect(roce!.dpSyncPerLayerMs).toBeLessThan(eth!.dpSyncPerLayerMs);
    expect(roce!.dpSyncPerLayerMs).toBeLessThan(straddle!.dpSyncPerLayerMs);
    // Compute does not depend on the NIC.
    expect(ib!.microPerLayerMs).toBeCloseTo(eth!.microPerLayerMs, 9);
  });

  it("charges the slower GPU model's compute", () => {
    const a100 = cluster().island("a", "infiniband", 2, { gpuModel: "A100-80GB" }).build();
    const h100 = cluster().island("h", "infiniband", 2, { gpuModel: "H100-80GB" }).build();
    const [slow] = stageCosts(job, [a100], model);
    const [fast] = stageCosts(job, [h100], model);
    expect(slow!.microPerLayerMs / fast!.microPerLayerMs).toBeGreaterThan(2.5);
  });

  it("uses sockets for pipeline sends between islands and RDMA inside one", () => {
    const within = stageCosts(
      job,
      [
        [byName("ib-n000"), byName("ib-n001")],
        [byName("ib-n002"), byName("ib-n003")],
      ],
      model,
    );
    const across = stageCosts(
      job,
      [
        [byName("ib-n000"), byName("ib-n001")],
        [byName("roce-n000"), byName("roce-n001")],
      ],
      model,
    );
    expect(within[0]!.nextLink!.transport).toBe(Transport.infiniband);
    expect(across[0]!.nextLink!.transport).toBe(Transport.socket);
    expect(across[0]!.fixedMs).toBeGreaterThan(within[0]!.fixedMs);
    expect(within[1]!.nextLink).toBeNull();
  });

  it("step = slowest stage's busy time + (pp − 1) × slowest micro-batch", () => {
    const costs = stageCosts(
      job,
      [
        [byName("ib-n000"), byName("ib-n001")],
        [byName("eth-n000"), byName("eth-n001")],
      ],
      model,
    );
    const est = estimateStep(costs, [20, 16]);
    const busy = costs.map((c, s) => c.perLayerMs * [20, 16][s]! + c.fixedMs);
    const micro = costs.map((c, s) => c.microPerLayerMs * [20, 16][s]! + c.microFixedMs);
    expect(est.stepMs).toBeCloseTo(Math.max(...busy) + Math.max(...micro), 6);
    expect(est.bottleneckStage).toBe(busy[0]! >= busy[1]! ? 0 : 1);
  });

  it("refuses a layer vector of the wrong length", () => {
    const costs = stageCosts(job, [[byName("ib-n000"), byName("ib-n001")]], model);
    expect(() => estimateStep(costs, [18, 18])).toThrow(/1 stages but 2/);
  });

  it("lets callers override part of the link model", () => {
    const m = linkModelWith({ efficiency: { infiniband: 0.5, roce: 0.7, ethernet: 0.4 } });
    expect(m.efficiency.infiniband).toBe(0.5);
    expect(m.mfu).toBe(DEFAULT_LINK_MODEL.mfu);
  });
});
