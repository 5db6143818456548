import { describe, expect, it } from "vitest";
import { hashedPath, sourcePortFor, uplinkChoices } from "../../../common/src/fabric/ecmp-hash.js";
import { NO_FAULTS } from "../workers/simulated/faults.js";
import { simulateStep, type TrainingPlacement } from "../workers/simulated/training.js";
import {
  SimulatedFabric,
  TrafficPlanError,
  UnknownFabricError,
  type FlowRequest,
  type SimFabricSpec,
} from "./fabric.js";

// Two leaves, two spines, one 400G cable from each leaf to each spine; n0, n1 on leaf a, n2, n3 on leaf b.
const spec = (failed: Record<string, number[]> = {}): SimFabricSpec => ({
  island: "ib",
  spines: ["s0", "s1"],
  leaves: ["a", "b"].map((name) => ({
    name,
    uplinks: ["s0", "s1"].map((spine) => ({
      spine,
      ports: 1,
      portGbps: 400,
      ...(failed[`${name}>${spine}`] ? { failedPorts: failed[`${name}>${spine}`] } : {}),
    })),
  })),
});
const leafOf: Record<string, string> = { n0: "a", n1: "a", n2: "b", n3: "b" };
const nodes = {
  placeOf: (n: string) => (leafOf[n] ? { leaf: leafOf[n], island: "ib" } : undefined),
  nicsOf: (n: string) => (leafOf[n] ? ["mlx5_0", "mlx5_1"] : undefined),
};

function flow(src: string, dst: string, spine: string, over: Partial<FlowRequest> = {}, s = spec()): FlowRequest {
  const port = sourcePortFor(
    s,
    leafOf[src]!,
    leafOf[dst]!,
    { srcNode: src, dstNode: dst },
    { spine, uplinkPort: 0, downlinkPort: 0 },
    `${src}>${dst}`,
  )!;
  return {
    connectionId: `j/${src}>${dst}`,
    job: "ns/j",
    communicator: "dp",
    srcRank: 0,
    dstRank: 8,
    dstNode: dst,
    nic: "mlx5_0",
    demandGbps: 400,
    qps: [{ udpSourcePort: port, spine, uplinkPort: 0, downlinkPort: 0 }],
    ...over,
  };
}

function fabric(s = spec()): SimulatedFabric {
  const f = new SimulatedFabric(nodes, () => 1000);
  f.setTopology("fab", s);
  return f;
}

describe("simulated fabric", () => {
  it("reports the path the hash puts each QP's port on, not the path the plan claims", () => {
    const f = fabric();
    const good = flow("n0", "n2", "s0");
    const port = good.qps[0]!.udpSourcePort;
    const lying = {
      ...good,
      connectionId: "j/lie",
      dstRank: 9,
      qps: [
        {
          udpSourcePort: port + 1,
          spine: hashedPath(spec(), "a", "b", { srcNode: "n0", dstNode: "n2" }, port + 1)!.spine === "s0" ? "s1" : "s0",
          uplinkPort: 0,
          downlinkPort: 0,
        },
      ],
    };
    const applied = f.apply("n0", "p1", "fab", [good, lying]);
    expect(applied).toMatchObject({
      planId: "p1",
      fabric: "fab",
      qpsApplied: 2,
      qpsOnPlannedPath: 1,
      appliedUnixMs: 1000,
    });
    expect(applied.flows[0]!.qps[0]).toEqual({
      udpSourcePort: port,
      path: { spine: "s0", uplinkPort: 0, downlinkPort: 0 },
      planned: true,
    });
    expect(applied.flows[1]!.qps[0]!.planned).toBe(false);
    expect(f.applied("n0")).toEqual(applied);
    expect(f.apply("n0", "p2", "fab", []).flows).toEqual([]);
    expect(f.applied("n0")).toBeUndefined();
  });

  it("two connections hashed onto one 400G uplink each get half the bandwidth; planned apart, all of it", () => {
    const f = fabric();
    f.apply("n0", "p1", "fab", [flow("n0", "n2", "s0")]);
    f.apply("n1", "p1", "fab", [flow("n1", "n3", "s0")]);
    expect(f.linkLoads().get("a>s0#0")).toBe(2);
    expect(f.shareOf("ns/j", "n0", "n2")).toBe(0.5);
    f.apply("n1", "p2", "fab", [flow("n1", "n3", "s1")]);
    expect(f.shareOf("ns/j", "n0", "n2")).toBe(1);
    expect(f.shareOf("ns/j", "n1", "n3")).toBe(1);
    expect(f.shareOf("ns/j", "n0", "n1")).toBe(1); // same leaf: no fabric link
  });

  it("a failed cable moves the QPs hashed onto it (routing withdraws it) and the report shows where they went", () => {
    const f = fabric();
    f.apply("n0", "p1", "fab", [flow("n0", "n2", "s0")]);
    f.apply("n1", "p1", "fab", [flow("n1", "n3", "s1")]);
    f.setTopology("fab", spec({ "a>s1": [0] }));
    expect(uplinkChoices(spec({ "a>s1": [0] }), "a", "b")).toEqual([{ spine: "s0", port: 0 }]);
    expect(f.applied("n1")!.flows[0]!.qps[0]).toMatchObject({ path: { spine: "s0" }, planned: false });
    expect(f.shareOf("ns/j", "n0", "n2")).toBe(0.5);
  });

  it("refuses bad plans with what is wrong", () => {
    const f = fabric();
    const ok = flow("n0", "n2", "s0");
    const cases: [FlowRequest[], RegExp][] = [
      [[{ ...ok, nic: "mlx5_9" }], /nic "mlx5_9" is not a NIC of node n0/],
      [[{ ...ok, dstNode: "n1" }], /share leaf a; no spine path/],
      [[{ ...ok, dstNode: "zz" }], /dst_node zz is not a node this fabric knows/],
      [[{ ...ok, qps: [] }], /0 QPs; a connection has 1\.\.16/],
      [[{ ...ok, qps: [{ udpSourcePort: 80 }] }], /udp_source_port 80 is outside 49152\.\.65535/],
      [[ok, { ...ok }], /connection_id appears twice/],
      [[ok, { ...ok, connectionId: "other" }], /already used by another QP to n2/],
      [[{ ...ok, qps: [{ ...ok.qps[0]!, spine: "s9" }] }], /spine s9 is not a spine of this fabric/],
      [[{ ...ok, demandGbps: Number.NaN }], /demand_gbps must be a non-negative number/],
    ];
    for (const [flows, message] of cases) expect(() => f.apply("n0", "p", "fab", flows)).toThrow(message);
    expect(() => f.apply("n0", "", "fab", [ok])).toThrow(TrafficPlanError);
    expect(() => f.apply("n0", "p", "nope", [ok])).toThrow(UnknownFabricError);
    expect(f.applied("n0")).toBeUndefined(); // nothing half-applied
  });

  it("the simulated ranks' collectives run slower when their connections are hashed onto one uplink, as planned apart they do not", () => {
    // Job ns/j: ranks 0-7 on n0 (leaf a), 8-15 on n2 (leaf b), a single ring: 7 -> 8 and 15 -> 0 cross the fabric.
    const f = fabric();
    const rankNodes = Array.from({ length: 16 }, (_, r) => (r < 8 ? "n0" : "n2"));
    const p: TrainingPlacement = {
      communicator: "c",
      rankNodes,
      intraNodeGBps: 450,
      interNodeGBps: 50,
      latencyUs: 10,
      computeMs: 100,
      bucketBytes: 256 * 2 ** 20,
      bucketsPerStep: 1,
      fabricShare: (a, b) => f.shareOf("ns/j", rankNodes[a]!, rankNodes[b]!),
    };
    const collectiveMs = (): number => {
      const step = simulateStep(p, NO_FAULTS, 1e15, 0);
      const r = step.records.find((x) => x.rank === 7)!;
      return (r.peers[0]!.endUnixUs - r.peers[0]!.startUnixUs) / 1000;
    };
    f.apply("n0", "p", "fab", [flow("n0", "n2", "s0")]);
    f.apply("n1", "p", "fab", [flow("n1", "n3", "s0", { job: "ns/other" })]);
    const collided = collectiveMs();
    f.apply("n1", "p2", "fab", [flow("n1", "n3", "s1", { job: "ns/other" })]);
    const apart = collectiveMs();
    expect(collided / apart).toBeCloseTo(2, 3); // rounded to whole µs
  });
});
