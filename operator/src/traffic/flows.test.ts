import { describe, expect, it } from "vitest";
import { ConnectionKind, jobConnections, type FabricNode, type TrafficJob } from "./flows.js";

const nodes = new Map<string, FabricNode>(
  ["a", "b", "c", "d"].map((n, i) => [n, { leaf: `leaf-${Math.floor(i / 2)}`, nicCount: 8, nicBandwidthGbps: 400 }]),
);

/** Ranks in Megatron order on nodes a, b, c, d (8 GPUs each). */
function job(overrides: Partial<TrafficJob> & Pick<TrafficJob, "tp" | "pp" | "dp">): TrafficJob {
  const world = overrides.tp * overrides.pp * overrides.dp;
  return {
    name: "j",
    gpusPerNode: 8,
    dpAlgorithm: "ring",
    rankNodes: Array.from({ length: world }, (_, r) => ["a", "b", "c", "d"][Math.floor(r / 8)]!),
    ...overrides,
  };
}

describe("jobConnections", () => {
  it("tp=8 ring: one ring per rail, each rank's NIC is its rail, line rate", () => {
    const conns = jobConnections(job({ tp: 8, pp: 1, dp: 4 }), nodes);
    expect(conns).toHaveLength(8 * 4);
    const rail3 = conns.filter((c) => c.communicator === "dp-pp0-tp3");
    expect(rail3.map((c) => `${c.srcNode}>${c.dstNode}`)).toEqual(["a>b", "b>c", "c>d", "d>a"]);
    expect(new Set(rail3.map((c) => c.nic))).toEqual(new Set([3]));
    expect(rail3.every((c) => c.demandGbps === 400 && c.kind === ConnectionKind.dpRing)).toBe(true);
  });

  it("tp=1 ring: one group per node, a channel per NIC", () => {
    const conns = jobConnections(job({ tp: 1, pp: 1, dp: 32 }), nodes);
    expect(conns).toHaveLength(8 * 4);
    expect(new Set(conns.filter((c) => c.srcNode === "a").map((c) => c.nic))).toEqual(
      new Set([0, 1, 2, 3, 4, 5, 6, 7]),
    );
    expect(new Set(conns.map((c) => c.id)).size).toBe(conns.length);
  });

  it("tree: two complementary binary trees, an edge each way, half the NIC when one channel carries both", () => {
    const conns = jobConnections(job({ tp: 8, pp: 1, dp: 4, dpAlgorithm: "tree" }), nodes);
    const rail0 = conns.filter((c) => c.communicator === "dp-pp0-tp0");
    // Tree 1 over a,b,c,d: b→a, c→a, d→b; tree 2 over d,c,b,a: c→d, b→d, a→c; each edge both ways.
    expect(rail0).toHaveLength(12);
    expect(rail0.every((c) => c.demandGbps === 200)).toBe(true);
    expect(new Set(rail0.map((c) => c.id)).size).toBe(12);
  });

  it("pp=2: stage boundary connections each way, at the PP load fraction", () => {
    const conns = jobConnections(job({ tp: 8, pp: 2, dp: 2, ppLoadFraction: 0.25 }), nodes);
    const pp = conns.filter((c) => c.kind === ConnectionKind.pp);
    // Stage 0 on a,b; stage 1 on c,d: a↔c and b↔d for each of 8 tp ranks.
    expect(pp).toHaveLength(2 * 2 * 8);
    expect(new Set(pp.map((c) => `${c.srcNode}>${c.dstNode}`))).toEqual(new Set(["a>c", "c>a", "b>d", "d>b"]));
    expect(pp.every((c) => c.demandGbps === 100)).toBe(true);
  });

  it("names the problem with a bad shape or an unknown node", () => {
    expect(() => jobConnections({ ...job({ tp: 8, pp: 1, dp: 4 }), dp: 3 }, nodes)).toThrow(
      /32 ranks but tp × pp × dp = 24/,
    );
    expect(() => jobConnections({ ...job({ tp: 8, pp: 1, dp: 4 }), rankNodes: Array(32).fill("z") }, nodes)).toThrow(
      /node z, which is not in the fabric/,
    );
  });
});
