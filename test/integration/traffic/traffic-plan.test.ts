/**
 * C4P execution on the local cluster, with the parts a user runs: the operator in-process (its traffic plan
 * controller and mTLS client pool), the agent as its own process in simulation mode (its simulated fabric follows
 * the cluster's FabricTopology objects), a TrainingJob applied with kubectl-equivalent API calls. Nothing writes
 * plans or status by hand:
 * - the job's inter-leaf connections are planned, each sending node's agent applies its plan (per-QP UDP source
 *   ports) and reports what its fabric's hashes made of them; status.traffic, the TrafficPlanned condition and the
 *   metrics show it;
 * - a spine cable the plan uses is marked down in the FabricTopology: the plan is recomputed around it, the
 *   agents apply the new one, and no QP uses the cable;
 * - the job's pods, created at placement before any plan, restart as a gang with the plan's
 *   NCCL_IB_QPS_PER_CONNECTION in their env.
 */
import { tmpdir } from "node:os";
import type { V1Pod } from "@kubernetes/client-node";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { AGENT_ENDPOINT_ANNOTATION, AGENT_SERVER_NAME } from "../../../common/src/agents/endpoint.js";
import { readSecret, secretNames, tlsFilesOf } from "../../../operator/src/agents/certificates.js";
import { agentEndpointOf } from "../../../operator/src/agents/directory.js";
import { AgentClientPool, AgentMethod } from "../../../operator/src/agents/pool.js";
import type { ApplyTrafficPlanRequest } from "../../../agent/src/grpc/generated/gpufleet/agent/v1/ApplyTrafficPlanRequest.js";
import { OperatorMetrics } from "../../../operator/src/metrics.js";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { FabricTopology } from "../../../crds/src/fabric-topology.js";
import { TopologyLabel } from "../../../crds/src/topology.js";
import type { TrafficStatus, TrainingJob } from "../../../crds/src/training-job.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { trainingJob } from "../../support/builders.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import {
  metricValue,
  startInProcessOperator,
  startSimulatedAgent,
  type ComponentProcess,
} from "../../support/operator.js";
import { writeOperatorIssuedAgentCerts } from "../../support/agent-certs.js";

let cluster: TestCluster;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
let namespace: string;
let originalFabric: FabricTopology | undefined;
const FABRIC = "ib-a";
const tlsDir = join(tmpdir(), `gpufleet-traffic-tls-${process.pid}`);
const tjGroup = { group: API_GROUP, version: API_VERSION, plural: "trainingjobs" };
const fabricGroup = { group: API_GROUP, version: API_VERSION, plural: "fabrictopologies" };

const getJob = async (name: string) =>
  (await cluster.customObjects.getNamespacedCustomObject({ ...tjGroup, namespace, name })) as TrainingJob;
const getFabric = async () =>
  (await cluster.customObjects.getClusterCustomObject({ ...fabricGroup, name: FABRIC })) as FabricTopology;
const planned = (j: TrainingJob) => j.status?.conditions?.find((c) => c.type === "TrafficPlanned");
/** "spine#up>#down@port" → its parts. */
const parsePath = (p: string) => {
  const m = /^(.+)#(\d+)>#(\d+)@(\d+)$/.exec(p)!;
  return { spine: m[1]!, uplinkPort: Number(m[2]), downlinkPort: Number(m[3]), port: Number(m[4]) };
};

beforeAll(async () => {
  cluster = testCluster();
  namespace = await cluster.freshNamespace("traffic");
  operator = await startInProcessOperator(cluster, "traffic-it", {
    natsUrl: cluster.natsUrl,
    durablePrefix: `traffic-${process.pid}`,
  });
  // The agent serves its operator port with the certificate the operator issued (the mTLS client pool's peer).
  await writeOperatorIssuedAgentCerts(cluster, tlsDir);
  agent = (
    await startSimulatedAgent({
      kubeconfigPath: cluster.kubeconfigPath,
      natsUrl: cluster.natsUrl,
      name: "agent-traffic",
      env: {
        GPUFLEET_AGENT_TLS_DIR: tlsDir,
        GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
        GPUFLEET_AGENT_ENGINE_PORT: "0",
      },
    })
  ).agent;
  originalFabric = await getFabric();
});

afterAll(async () => {
  // The cluster is shared with later files: put the fabric's cables back as the profile had them.
  if (originalFabric) {
    const current = await getFabric();
    await cluster.customObjects.replaceClusterCustomObject({
      ...fabricGroup,
      name: FABRIC,
      body: { ...current, spec: originalFabric.spec },
    });
  }
  const problems = (agent?.logs ?? []).filter((l) => typeof l.level === "number" && l.level >= 40).slice(-10);
  if (problems.length > 0) console.log(`agent warnings: ${problems.map((l) => JSON.stringify(l)).join("\n")}`);
  await agent?.stop();
  await operator?.stop();
});

describe("C4P traffic plans applied by the agents", () => {
  let before: TrafficStatus;

  it("a TrainingJob across both leaves of the IB fabric: its flows are pinned, the agents apply them, status and metrics show it", async () => {
    // Four H100 nodes, one DP ring of 4 per TP rank: the IB island (two leaves of two nodes) is the fastest place.
    await cluster.objects.create(
      trainingJob("ring", namespace, {
        nodes: 4,
        gpusPerNode: 8,
        parallelism: { tp: 8, pp: 1, dp: 4 },
        placement: { nicAware: true, gpuModel: "H100-80GB" },
        faultPolicy: { maxRestarts: 3, restartBackoffSeconds: 1 },
      } as Partial<TrainingJob["spec"]>),
    );
    const job = await waitFor(
      async () => {
        const j = await getJob("ring");
        return j.status?.phase === "Running" ? j : undefined;
      },
      { description: "ring Running", timeoutMs: 60_000 },
    );
    expect(
      job.status!.placement!.islands,
      "the job must be placed on the two-leaf IB island for inter-leaf traffic",
    ).toEqual(["ib-a"]);

    const applied = await waitFor(
      async () => {
        const j = await getJob("ring");
        return planned(j)?.status === "True" && planned(j)?.reason === "Applied" ? j : undefined;
      },
      { description: "TrafficPlanned True (Applied)", timeoutMs: 60_000 },
    );
    const t = applied.status!.traffic!;
    before = t;
    // 8 DP rings (one per TP rank, each on its own NIC) over 2 nodes per leaf: each ring crosses between the leaves
    // twice (node 1 -> 2 and 3 -> 0), so 16 inter-leaf connections; the other 16 hops stay under a leaf.
    expect(t).toMatchObject({
      fabric: FABRIC,
      connections: 16,
      intraLeafConnections: 16,
      unroutable: 0,
      nodes: 2,
      nodesApplied: 2,
    });
    expect(t.qpsPlanned).toBe(16 * t.qpsPerConnection);
    // What the agents report is what the fabric's hashes made of the ports they were given: all on plan.
    expect(t.qpsApplied).toBe(t.qpsPlanned);
    expect(t.qpsOnPlannedPath).toBe(t.qpsPlanned);
    expect(t.maxLinkLoad).toBeLessThan(t.ecmpMaxLinkLoad);
    expect(t.loadRatioToEcmp).toBeLessThan(1);
    expect(t.flows).toHaveLength(16);
    for (const f of t.flows) {
      expect(f.nic).toMatch(/^mlx5_[0-7]$/);
      expect(f.paths).toHaveLength(t.qpsPerConnection);
      for (const p of f.paths) expect(parsePath(p).port).toBeGreaterThanOrEqual(49152);
    }
    expect(planned(applied)!.message).toMatch(
      /^16 inter-leaf connections \(\d+ QPs, \d+ per connection\) on fabric ib-a; predicted max link load .* vs .* under ECMP .*; applied by all 2 sending nodes/,
    );

    const metrics = await (await fetch(`http://127.0.0.1:${operator!.httpPort}/metrics`)).text();
    expect(
      metricValue(metrics, "gpufleet_operator_traffic_plans_applied_total", { result: "applied" }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      metricValue(metrics, "gpufleet_operator_traffic_flows_pinned", { fabric: FABRIC, kind: "connections" }),
    ).toBe(16);
    expect(
      metricValue(metrics, "gpufleet_operator_traffic_flows_pinned", { fabric: FABRIC, kind: "qps_on_path" }),
    ).toBe(t.qpsPlanned);
    expect(
      metricValue(metrics, "gpufleet_operator_traffic_predicted_max_link_utilization", { fabric: FABRIC, plan: "c4p" }),
    ).toBeCloseTo(t.maxLinkLoad, 2);
    expect(
      metricValue(metrics, "gpufleet_operator_traffic_predicted_max_link_utilization", {
        fabric: FABRIC,
        plan: "ecmp",
      }),
    ).toBeCloseTo(t.ecmpMaxLinkLoad, 2);
    expect(
      metricValue(metrics, "gpufleet_operator_agent_calls_total", { method: "ApplyTrafficPlan", code: "OK" }),
    ).toBeGreaterThanOrEqual(2);
  });

  it("a spine cable the plan uses goes down: the plan is recomputed around it and the agents apply the new one", async () => {
    expect(before, "the first test planned the job").toBeDefined();
    // A cable some QP of the plan leaves by: (leaf of its sending node, spine, uplink port).
    const flow = before.flows[0]!;
    const path = parsePath(flow.paths[0]!);
    const leaf = (await cluster.core.readNode({ name: flow.from })).metadata!.labels![TopologyLabel.leaf]!;
    const fabric = await getFabric();
    const spec = structuredClone(fabric.spec);
    const uplink = spec.leaves.find((l) => l.name === leaf)!.uplinks.find((u) => u.spine === path.spine)!;
    uplink.failedPorts = [...new Set([...(uplink.failedPorts ?? []), path.uplinkPort])];
    await cluster.customObjects.replaceClusterCustomObject({ ...fabricGroup, name: FABRIC, body: { ...fabric, spec } });

    const replanned = await waitFor(
      async () => {
        const j = await getJob("ring");
        const t = j.status?.traffic;
        return t && t.plannedTime !== before.plannedTime && planned(j)?.reason === "Applied" ? j : undefined;
      },
      { description: "a new plan applied after the cable went down", timeoutMs: 60_000 },
    );
    const t = replanned.status!.traffic!;
    expect(t).toMatchObject({ connections: 16, unroutable: 0, nodes: 2, nodesApplied: 2 });
    expect(t.qpsOnPlannedPath).toBe(t.qpsPlanned);
    const leafOf = new Map<string, string>();
    for (const f of t.flows) {
      if (!leafOf.has(f.from))
        leafOf.set(f.from, (await cluster.core.readNode({ name: f.from })).metadata!.labels![TopologyLabel.leaf]!);
      if (leafOf.get(f.from) !== leaf) continue;
      for (const p of f.paths) {
        const q = parsePath(p);
        expect(`${q.spine}#${q.uplinkPort}`, `${f.connection} must avoid the failed cable`).not.toBe(
          `${path.spine}#${path.uplinkPort}`,
        );
      }
    }
    // The QP that used the cable moved. With 15 live uplinks for 8 connections the planner may give each more QPs
    // (16 over 15 ports leaves one port with two): the busiest link cannot be less loaded than before.
    const route = (paths: readonly string[]) => paths.map((p) => p.replace(/@\d+$/, ""));
    expect(route(t.flows.find((f) => f.connection === flow.connection)!.paths)).not.toContain(
      `${path.spine}#${path.uplinkPort}>#${path.downlinkPort}`,
    );
    expect(t.maxLinkLoad).toBeGreaterThanOrEqual(before.maxLinkLoad);
    expect(t.maxLinkLoad).toBeLessThan(t.ecmpMaxLinkLoad);
    console.log(
      `traffic plan: before ${JSON.stringify({ qpsPerConnection: before.qpsPerConnection, maxLinkLoad: before.maxLinkLoad, ecmpMaxLinkLoad: before.ecmpMaxLinkLoad })}; after ${leaf}>${path.spine}#${path.uplinkPort} down ${JSON.stringify({ qpsPerConnection: t.qpsPerConnection, maxLinkLoad: t.maxLinkLoad, ecmpMaxLinkLoad: t.ecmpMaxLinkLoad })}`,
    );
  });

  it("the agent refuses bad plans with INVALID_ARGUMENT or FAILED_PRECONDITION, saying what is wrong, and reports what it applies", async () => {
    expect(before, "the first test planned the job").toBeDefined();
    const sender = before.flows[0]!.from;
    const node = await cluster.core.readNode({ name: sender });
    expect(node.metadata?.annotations?.[AGENT_ENDPOINT_ANNOTATION]).toBeTruthy();
    // The operator's own client certificate, as its pool uses it.
    const operatorSecret = (await readSecret(cluster.core, "default", secretNames("gpufleet").operator))!;
    const pool = new AgentClientPool({
      lookup: (n) => agentEndpointOf(n, n === sender ? node : undefined),
      serverName: AGENT_SERVER_NAME,
      insecure: false,
      callTimeoutMs: 20_000,
      maxAttempts: 4,
      backoff: { baseMs: 50, maxMs: 500 },
      circuit: { failureThreshold: 5, openMs: 60_000 },
      metrics: new OperatorMetrics({ defaultMetrics: false }),
    });
    pool.setCredentials(tlsFilesOf(operatorSecret));
    try {
      const info = await pool.getNodeInfo(sender);
      expect(info.trafficPlan?.planId).toMatch(/^c4p-[0-9a-f]{16}$/);
      expect(info.trafficPlan!.qpsOnPlannedPath).toBe(info.trafficPlan!.qpsApplied);
      const flow = info.trafficPlan!.flows[0]!;
      const call = (request: ApplyTrafficPlanRequest) =>
        pool.call(sender, AgentMethod.applyTrafficPlan, (c, ms) => c.applyTrafficPlan(request, ms));
      const codeOf = async (p: Promise<unknown>) =>
        p.then(
          () => [grpc.status.OK, ""] as const,
          (e: grpc.ServiceError) => [e.code, e.details] as const,
        );
      const bad = { nodeName: sender, planId: "bad", fabric: FABRIC, flows: [{ ...flow, nic: "mlx5_99" }] };
      expect(await codeOf(call(bad))).toEqual([
        grpc.status.INVALID_ARGUMENT,
        expect.stringMatching(/nic "mlx5_99" is not a NIC of node/),
      ]);
      expect(
        await codeOf(call({ ...bad, flows: [{ ...flow, qps: [{ ...flow.qps[0]!, udpSourcePort: 80 }] }] })),
      ).toEqual([grpc.status.INVALID_ARGUMENT, expect.stringMatching(/udp_source_port 80 is outside 49152\.\.65535/)]);
      expect(await codeOf(call({ ...bad, fabric: "no-such-fabric", flows: [flow] }))).toEqual([
        grpc.status.FAILED_PRECONDITION,
        expect.stringMatching(/FabricTopology no-such-fabric is not known/),
      ]);
      // A refused plan changes nothing: the node still applies the controller's plan.
      expect((await pool.getNodeInfo(sender)).trafficPlan?.planId).toBe(info.trafficPlan!.planId);
    } finally {
      pool.close();
    }
  });

  it("the pods carry the plan's NCCL_IB_QPS_PER_CONNECTION from the gang's next start (the first pods predate any plan)", async () => {
    const pods = async () =>
      (await cluster.core.listNamespacedPod({ namespace, labelSelector: "gpufleet.io/training-job=ring" })).items;
    const envOf = (pod: V1Pod) =>
      Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? ""]));
    const first = await pods();
    expect(first).toHaveLength(4);
    // Created at placement, before the plan controller saw the job: NCCL's default of 1 QP.
    for (const pod of first) expect(envOf(pod)).not.toHaveProperty("NCCL_IB_QPS_PER_CONNECTION");
    const plannedQps = (await getJob("ring")).status!.traffic!.qpsPerConnection;
    expect(plannedQps).toBeGreaterThan(1);

    await cluster.core.deleteNamespacedPod({ namespace, name: first[1]!.metadata!.name! });
    const oldUids = new Set(first.map((p) => p.metadata?.uid));
    const restarted = await waitFor(
      async () => {
        const j = await getJob("ring");
        if ((j.status?.restarts ?? 0) < 1 || j.status?.phase !== "Running") return undefined;
        const now = await pods();
        return now.length === 4 && now.every((p) => !oldUids.has(p.metadata?.uid)) ? now : undefined;
      },
      { description: "ring restarted as a whole gang and Running again", timeoutMs: 90_000 },
    );
    // Every member of the new gang starts with the QP count of the plan in force when it was created.
    for (const pod of restarted) {
      const env = envOf(pod);
      expect(env.NCCL_IB_DISABLE, `${pod.metadata?.name} runs RDMA`).toBeUndefined();
      expect(env.NCCL_IB_QPS_PER_CONNECTION, pod.metadata?.name).toBe(String(plannedQps));
    }
  });
});
