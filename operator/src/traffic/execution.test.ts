import { describe, expect, it } from "vitest";
import { hashedPath } from "../../../common/src/fabric/ecmp-hash.js";
import { nodeRequests, planIdOf, type AppliedReport, type NodePlanRequest } from "./execution.js";
import { buildFabric, uniformFabricSpec, withFailedCable } from "./fabric.js";
import { ConnectionKind, type Connection } from "./flows.js";
import { jobTrafficStatus } from "./job-status.js";
import { planTraffic } from "./plan.js";

// Two leaves of two nodes each (a0, a1 on leaf-0; b0, b1 on leaf-1), 2 spines x 2 ports of 400G.
const spec = uniformFabricSpec({ leaves: 2, spines: 2, portsPerSpine: 2, portGbps: 400 });
const nodeLeaf = new Map([
  ["a0", "leaf-0"],
  ["a1", "leaf-0"],
  ["b0", "leaf-1"],
  ["b1", "leaf-1"],
]);
const conn = (id: string, src: string, dst: string, nic: number, job = "ns/j"): Connection => ({
  id: `${job}/${id}`,
  job,
  kind: ConnectionKind.dpRing,
  communicator: "dp",
  srcRank: 0,
  dstRank: 8,
  srcNode: src,
  dstNode: dst,
  nic,
  demandGbps: 400,
});
const connections = [
  conn("c0", "a1", "b0", 0),
  conn("c1", "a1", "b0", 1),
  conn("c2", "b1", "a0", 0),
  conn("c3", "b1", "a0", 1),
  conn("c4", "a0", "a1", 0),
];
const nic = (_node: string, i: number) => `mlx5_${i}`;

function planned(s = spec) {
  const plan = planTraffic({ fabric: buildFabric(s), nodeLeaf, connections });
  return { plan, ...nodeRequests("fab", s, plan, connections, nodeLeaf, nic) };
}

/** What an agent whose fabric hashes as ecmp-hash.ts does would report for these requests. */
function reportsOf(byNode: ReadonlyMap<string, NodePlanRequest>, s = spec): Map<string, AppliedReport> {
  return new Map(
    [...byNode].map(([node, r]) => [
      node,
      {
        planId: r.planId,
        flows: r.flows.map((f) => ({
          connectionId: f.connectionId,
          job: f.job,
          qps: f.qps.map((q) => ({
            udpSourcePort: q.udpSourcePort,
            ...hashedPath(
              s,
              nodeLeaf.get(node)!,
              nodeLeaf.get(f.dstNode)!,
              { srcNode: node, dstNode: f.dstNode },
              q.udpSourcePort,
            )!,
          })),
        })),
      },
    ]),
  );
}

describe("node requests of a plan", () => {
  it("gives every QP of every inter-leaf connection a source port that hashes onto its planned path, per sending node", () => {
    const { plan, byNode, unmapped } = planned();
    expect(unmapped).toEqual([]);
    expect([...byNode.keys()]).toEqual(["a1", "b1"]); // a0 -> a1 stays under leaf-0
    for (const [node, r] of byNode) {
      const ports = new Set<number>();
      for (const f of r.flows) {
        const paths = plan.connections.find((c) => c.id === f.connectionId)!.paths;
        expect(f.qps.map(({ spine, uplinkPort, downlinkPort }) => ({ spine, uplinkPort, downlinkPort }))).toEqual(
          paths,
        );
        for (const q of f.qps) {
          expect(
            hashedPath(
              spec,
              nodeLeaf.get(node)!,
              nodeLeaf.get(f.dstNode)!,
              { srcNode: node, dstNode: f.dstNode },
              q.udpSourcePort,
            ),
          ).toEqual({ spine: q.spine, uplinkPort: q.uplinkPort, downlinkPort: q.downlinkPort });
          expect(ports.has(q.udpSourcePort)).toBe(false);
          ports.add(q.udpSourcePort);
        }
        expect(f.nic).toMatch(/^mlx5_[01]$/);
      }
    }
  });

  it("names a node's plan by its content: the same plan gets the same id, a changed one a new id", () => {
    const a = planned();
    const b = planned();
    expect(b.byNode.get("a1")!.planId).toBe(a.byNode.get("a1")!.planId);
    expect(planIdOf("fab", [])).not.toBe(a.byNode.get("a1")!.planId);
    const down = withFailedCable(spec, {
      leaf: "leaf-0",
      spine: a.byNode.get("a1")!.flows[0]!.qps[0]!.spine,
      port: a.byNode.get("a1")!.flows[0]!.qps[0]!.uplinkPort,
    });
    expect(planned(down).byNode.get("a1")!.planId).not.toBe(a.byNode.get("a1")!.planId);
  });
});

describe("a job's traffic status", () => {
  const input = (over: Partial<Parameters<typeof jobTrafficStatus>[0]> = {}) => {
    const { plan, byNode } = planned();
    return {
      job: "ns/j",
      fabric: "fab",
      plan,
      connections,
      requests: byNode,
      reports: reportsOf(byNode),
      nodeErrors: new Map<string, string>(),
      ecmpMaxLinkLoad: 1.5,
      plannedUnixMs: 0,
      ...over,
    };
  };

  it("Applied when every sending node reports the plan and every QP hashes onto its path", () => {
    const { traffic, condition } = jobTrafficStatus(input());
    expect(traffic).toMatchObject({
      fabric: "fab",
      connections: 4,
      intraLeafConnections: 1,
      unroutable: 0,
      nodes: 2,
      nodesApplied: 2,
    });
    expect(traffic.qpsOnPlannedPath).toBe(traffic.qpsPlanned);
    expect(traffic.loadRatioToEcmp).toBeCloseTo(traffic.maxLinkLoad / 1.5, 3);
    expect(condition).toMatchObject({ status: "True", reason: "Applied" });
  });

  it("Applying, naming the node and why, while an agent has not taken its plan", () => {
    const base = input();
    const reports = new Map(base.reports);
    reports.delete("b1");
    const { traffic, condition } = jobTrafficStatus({
      ...base,
      reports,
      nodeErrors: new Map([["b1", "UNIMPLEMENTED: no executor"]]),
    });
    expect(traffic.nodesApplied).toBe(1);
    expect(condition).toMatchObject({
      status: "False",
      reason: "Applying",
      message: expect.stringMatching(/applied on 1 of 2 nodes, waiting for b1 \(UNIMPLEMENTED: no executor\)/),
    });
  });

  it("PathMismatch when the agents' fabric hashes a QP elsewhere than planned (cables changed since)", () => {
    const base = input();
    const moved = withFailedCable(spec, { leaf: "leaf-0", spine: "spine-0", port: 0 });
    const { condition } = jobTrafficStatus({ ...base, reports: reportsOf(base.requests, moved) });
    // Only if some QP of leaf-0 was on spine-0 port 0 or is now hashed elsewhere; with 2 spines x 2 ports it is.
    expect(condition).toMatchObject({ status: "False", reason: "PathMismatch" });
  });

  it("NoInterLeafTraffic for a job whose connections stay under one leaf", () => {
    const { condition, traffic } = jobTrafficStatus(
      input({ job: "ns/other", connections: [...connections, conn("x", "a0", "a1", 0, "ns/other")] }),
    );
    expect(traffic.connections).toBe(0);
    expect(condition).toMatchObject({ status: "True", reason: "NoInterLeafTraffic" });
  });
});
