/**
 * The plan controller against fake agents that route like the simulated fabric (the ports' hashed paths) and a
 * fake status writer: what it sends, when it sends nothing, and when it re-plans.
 */
import type { V1Node } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ApplyTrafficPlanRequest } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/ApplyTrafficPlanRequest.js";
import { hashedPath } from "../../../common/src/fabric/ecmp-hash.js";
import type { ConditionUpdate } from "../../../crds/src/conditions.js";
import type { FabricTopology } from "../../../crds/src/fabric-topology.js";
import type { TrafficStatus, TrainingJob } from "../../../crds/src/training-job.js";
import { OperatorMetrics } from "../metrics.js";
import { uniformFabricSpec } from "./fabric.js";
import { TrafficPlanController } from "./plan-controller.js";

const leafOf: Record<string, string> = { a0: "leaf-0", a1: "leaf-0", b0: "leaf-1", b1: "leaf-1" };
const node = (name: string): V1Node => ({
  metadata: {
    name,
    labels: {
      "gpufleet.io/gpu-model": "H100-80GB",
      "gpufleet.io/gpu-count": "8",
      "gpufleet.io/nic-type": "infiniband",
      "gpufleet.io/nic-count": "8",
      "gpufleet.io/nic-bandwidth-gbps": "400",
      "gpufleet.io/leaf": leafOf[name]!,
      "gpufleet.io/island": "ib",
    },
  },
});
const fabric = (failedPorts?: number[]): FabricTopology => {
  const spec = uniformFabricSpec({ leaves: 2, spines: 2, portsPerSpine: 8, portGbps: 400 });
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "FabricTopology",
    metadata: { name: "fab" },
    spec: {
      island: "ib",
      spines: [...spec.spines],
      leaves: spec.leaves.map((l, i) => ({
        name: l.name,
        uplinks: l.uplinks.map((u, j) => ({
          spine: u.spine,
          ports: u.ports,
          portGbps: u.portGbps,
          ...(i === 0 && j === 0 && failedPorts ? { failedPorts } : {}),
        })),
      })),
    },
  };
};
const job: TrainingJob = {
  apiVersion: "gpufleet.io/v1alpha1",
  kind: "TrainingJob",
  metadata: { name: "ring", namespace: "ns", uid: "u1" },
  spec: { nodes: 4, gpusPerNode: 8, parallelism: { tp: 8, pp: 1, dp: 4 } } as TrainingJob["spec"],
  status: {
    phase: "Running",
    placement: {
      nodes: ["a0", "a1", "b0", "b1"],
      islands: ["ib"],
      ranksPerIsland: {},
      layersPerStage: [],
      predictedStepMs: 1,
    },
  },
};

function setup() {
  let topology = fabric();
  const applied = new Map<string, ApplyTrafficPlanRequest>();
  const sent: string[] = [];
  const writes: { traffic: TrafficStatus | null; condition: ConditionUpdate }[] = [];
  let current = job;
  const report = (n: string) => {
    const r = applied.get(n);
    if (!r) return null;
    return {
      planId: r.planId!,
      fabric: r.fabric!,
      appliedUnixMs: 1,
      qpsApplied: 0,
      qpsOnPlannedPath: 0,
      flows: (r.flows ?? []).map((f) => ({
        connectionId: f.connectionId!,
        job: f.job!,
        communicator: "",
        srcRank: 0,
        dstRank: 0,
        dstNode: f.dstNode!,
        nic: f.nic!,
        demandGbps: 0,
        qps: (f.qps ?? []).map((q) => ({
          udpSourcePort: q.udpSourcePort!,
          ...hashedPath(
            topology.spec,
            leafOf[n]!,
            leafOf[f.dstNode!]!,
            { srcNode: n, dstNode: f.dstNode! },
            q.udpSourcePort!,
          )!,
        })),
      })),
    };
  };
  const controller = new TrafficPlanController({
    trainingJobs: { list: () => [current] },
    nodes: { list: () => Object.keys(leafOf).map(node) },
    fabricTopologies: { list: () => [topology] },
    agents: {
      nodeInfo: async (n) => ({ nodeName: n, simulated: true, gpus: [], nics: [], labels: {}, trafficPlan: report(n) }),
      apply: async (n, request) => {
        sent.push(`${n} ${request.planId} ${request.flows?.length ?? 0}`);
        applied.set(n, request);
        return { planId: request.planId!, applied: report(n) };
      },
    },
    writer: {
      write: async (_ns, _name, traffic, condition) => {
        writes.push({ traffic, condition });
        current = {
          ...current,
          status: {
            ...current.status,
            traffic: traffic ?? undefined,
            conditions: [{ ...condition, lastTransitionTime: "", observedGeneration: 0 }],
          },
        } as TrainingJob;
        return current;
      },
    },
    events: { record: async () => {} },
    clock: { now: () => 1_800_000_000_000, setTimeout: () => undefined, clearTimeout: () => undefined },
    metrics: new OperatorMetrics({ defaultMetrics: false }),
    logger: { info: () => {}, warn: () => {}, debug: () => {} },
  });
  return { controller, sent, writes, setFabric: (f: FabricTopology) => (topology = f) };
}

describe("traffic plan controller", () => {
  it("sends each sending node its plan once, writes status once, and then does nothing while nothing changes", async () => {
    const { controller, sent, writes } = setup();
    await controller.checkAll();
    expect(sent.map((s) => s.split(" ")[0]).sort()).toEqual(["a1", "b1"]); // a0 -> a1 and b0 -> b1 stay under a leaf
    expect(writes).toHaveLength(1);
    expect(writes[0]!.condition).toMatchObject({ type: "TrafficPlanned", status: "True", reason: "Applied" });
    expect(writes[0]!.traffic).toMatchObject({ connections: 16, nodes: 2, nodesApplied: 2 });
    await controller.checkAll();
    await controller.checkAll();
    expect(sent).toHaveLength(2);
    expect(writes).toHaveLength(1);
  });

  it("re-plans when a cable goes down, re-sends only what changed, and no QP uses the cable", async () => {
    const { controller, sent, writes, setFabric } = setup();
    await controller.checkAll();
    setFabric(fabric([0, 1, 2, 3]));
    await controller.checkAll();
    expect(sent.length).toBeGreaterThan(2);
    const t = writes[writes.length - 1]!.traffic!;
    expect(writes[writes.length - 1]!.condition.reason).toBe("Applied");
    for (const f of t.flows.filter((x) => x.from === "a1"))
      for (const p of f.paths) expect(p).not.toMatch(/^spine-0#[0-3]>/);
  });

  it("clears a node's plan when the job is gone", async () => {
    const { controller, sent } = setup();
    await controller.checkAll();
    (controller as unknown as { deps: { trainingJobs: { list: () => TrainingJob[] } } }).deps.trainingJobs.list =
      () => [];
    await controller.checkAll();
    expect(sent.slice(2).sort()).toEqual(["a1 c4p-none 0", "b1 c4p-none 0"]);
  });
});
