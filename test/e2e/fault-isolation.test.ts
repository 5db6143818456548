/**
 * C4D fault isolation end to end, with the parts a user runs: the operator (in-process, telemetry on) with its fault
 * monitor, the agent as its own process in simulation mode serving every kwok node, the simulated training ranks it
 * starts for the gang's pods, and faults injected as a user would (kubectl annotate pod … gpufleet.io/inject-fault).
 * Nothing here writes telemetry or status by hand:
 * - a hung rank: its node is tainted gpufleet.io/isolated, the gang restarts elsewhere from its last checkpoint, and
 *   the Events on the job and the node tell the story;
 * - a slow rank (compute ×2): fail-slow, tainted once the slowdown persisted, restarted likewise;
 * - a slow link between two nodes: blamed on the path (the simulated ranks run 8 channels in rail pairs, so each
 *   NIC has two network peers), nothing tainted, the gang restarted avoiding both ends;
 * - a slow NIC: the node condition NicDegraded-<nic> (the operator names NICs from the node labels), no taint, the
 *   gang restarted avoiding the node;
 * - an admin removes the taint and the node is placeable again;
 * - a fault-free job runs for two minutes beside all this with no fault, no taint and no restart.
 * Times are measured and printed (detection latency, injection → taint, taint → gang Running again).
 */
import type { CoreV1Event, V1Node, V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../crds/src/common.js";
import { IsolatedTaintKey } from "../../crds/src/topology.js";
import type { FaultRecord, TrainingJob } from "../../crds/src/training-job.js";
import type { OperatorHandle } from "../../operator/src/operator.js";
import { waitFor } from "../harness/wait.js";
import { trainingJob } from "../support/builders.js";
import { testCluster, type TestCluster } from "../support/cluster.js";
import { kubectl } from "../support/kubectl.js";
import {
  metricValue,
  startInProcessOperator,
  startSimulatedAgent,
  type ComponentProcess,
} from "../support/operator.js";

let cluster: TestCluster;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
const trainingGroup = { group: API_GROUP, version: API_VERSION, plural: "trainingjobs" };
const STEADY_RUN_MS = 120_000;
let steady: { namespace: string; runningSinceMs: number } | undefined;
/** Measured numbers, printed at the end. */
const measured: Record<string, number> = {};

/** A 2-node H100 job (16 ranks, 8 channels) that checkpoints every 5 simulated steps and restarts after 1 s. */
function job(name: string, namespace: string, over: Partial<TrainingJob["spec"]> = {}): TrainingJob {
  return trainingJob(name, namespace, {
    nodes: 2,
    gpusPerNode: 8,
    parallelism: { tp: 8, pp: 1, dp: 2 },
    checkpoint: { path: `/ckpt/${name}`, intervalSteps: 5 },
    faultPolicy: { maxRestarts: 3, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 1 },
    placement: { nicAware: true, gpuModel: "H100-80GB" },
    ...over,
  });
}

const getJob = async (namespace: string, name: string) =>
  (await cluster.customObjects.getNamespacedCustomObject({ ...trainingGroup, namespace, name })) as TrainingJob;
const getNode = (name: string): Promise<V1Node> => cluster.core.readNode({ name });
const isolation = (node: V1Node) => node.spec?.taints?.find((t) => t.key === IsolatedTaintKey);
const jobEvents = async (namespace: string, name: string): Promise<CoreV1Event[]> =>
  (await cluster.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items.sort(
    // Event times have whole seconds; within one second the creation order is the resourceVersion's.
    (a, b) =>
      new Date(a.firstTimestamp ?? 0).getTime() - new Date(b.firstTimestamp ?? 0).getTime() ||
      Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion),
  );
const nodeEvents = async (node: string): Promise<CoreV1Event[]> =>
  (
    await cluster.core.listNamespacedEvent({
      namespace: "default",
      fieldSelector: `involvedObject.kind=Node,involvedObject.name=${node}`,
    })
  ).items;
const envOf = (pod: V1Pod) => Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));

async function runningWithCheckpoint(
  namespace: string,
  name: string,
  minStep: number,
  restarts = 0,
): Promise<TrainingJob> {
  try {
    return await waitFor(
      async () => {
        const j = await getJob(namespace, name);
        return j.status?.phase === "Running" &&
          (j.status.restarts ?? 0) === restarts &&
          (j.status.lastCheckpointStep ?? 0) >= minStep
          ? j
          : undefined;
      },
      {
        description: `${namespace}/${name} Running (restarts ${restarts}) with a checkpoint at step ≥ ${minStep}`,
        timeoutMs: 90_000,
      },
    );
  } catch (err) {
    // Say what the job was doing instead: its status and its story.
    const { status } = await getJob(namespace, name);
    const story = (await jobEvents(namespace, name)).map((e) => `${e.reason}: ${e.message}`);
    throw new Error(
      `${(err as Error).message}; status ${JSON.stringify({ ...status, faults: status?.faults?.map((f) => `${f.faultClass} ${f.node} ${f.detail}`) })}; events:\n${story.join("\n")}`,
      { cause: err },
    );
  }
}

async function deleteJob(namespace: string, name: string): Promise<void> {
  await cluster.customObjects.deleteNamespacedCustomObject({ ...trainingGroup, namespace, name });
  await waitFor(async () => (await cluster.core.listNamespacedPod({ namespace })).items.length === 0, {
    description: `pods of ${namespace}/${name} gone`,
    timeoutMs: 60_000,
  });
}

beforeAll(async () => {
  cluster = testCluster();
  operator = await startInProcessOperator(cluster, "e2e-faults", {
    natsUrl: cluster.natsUrl,
    durablePrefix: `e2e-faults-${process.pid}`,
  });
  const started = await startSimulatedAgent({
    kubeconfigPath: cluster.kubeconfigPath,
    natsUrl: cluster.natsUrl,
    name: "agent-e2e-faults",
    env: { GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200", GPUFLEET_AGENT_ENGINE_PORT: "0" },
  });
  agent = started.agent;
  // The fault-free job runs on the A100 nodes for the whole file, beside the faulty ones on H100.
  const namespace = await cluster.freshNamespace("e2e-steady");
  await cluster.objects.create(job("steady", namespace, { placement: { nicAware: true, gpuModel: "A100-80GB" } }));
  await runningWithCheckpoint(namespace, "steady", 5);
  steady = { namespace, runningSinceMs: Date.now() };
});

afterAll(async () => {
  // The cluster is shared with later test files: take back every isolation this file's operator made.
  if (cluster) {
    for (const node of (await cluster.core.listNode()).items) {
      if (isolation(node)?.value?.startsWith("c4d-"))
        await kubectl(cluster.kubeconfigPath, ["taint", "node", node.metadata!.name!, `${IsolatedTaintKey}-`]);
    }
  }
  // The agent's warnings and errors (a simulated job that stalls says why there).
  const problems = (agent?.logs ?? []).filter((l) => typeof l.level === "number" && l.level >= 40).slice(-20);
  if (problems.length > 0) console.log(`agent warnings: ${problems.map((l) => JSON.stringify(l)).join("\n")}`);
  console.log(`agent exit code so far: ${agent?.child.exitCode}`);
  await agent?.stop();
  await operator?.stop();
  console.log(`fault-isolation e2e measurements: ${JSON.stringify(measured)}`);
});

describe("C4D fault isolation, end to end with simulated ranks", () => {
  let hungNode: string | undefined;
  let slowNode: string | undefined;

  it("a hung rank: its node is tainted, the gang restarts elsewhere from the last checkpoint, and the Events tell the story", async () => {
    const namespace = await cluster.freshNamespace("e2e-hang");
    await cluster.objects.create(job("hang", namespace));
    const before = await runningWithCheckpoint(namespace, "hang", 10);
    const nodes = before.status!.placement!.nodes;
    hungNode = nodes[1]!; // ranks 8..15
    const injectedAtMs = Date.now();
    const annotate = await kubectl(cluster.kubeconfigPath, [
      "annotate",
      "pod",
      "-n",
      namespace,
      "hang-0",
      "gpufleet.io/inject-fault=hang-rank=9",
    ]);
    expect(annotate.stderr).toBe("");

    const taint = await waitFor(async () => isolation(await getNode(hungNode!)), {
      description: `taint ${IsolatedTaintKey} on ${hungNode}`,
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const taintSeenAtMs = Date.now();
    expect(taint).toMatchObject({ value: "c4d-hang", effect: "NoSchedule" });
    // Only the guilty node: the other member of the gang stays in service.
    expect(isolation(await getNode(nodes[0]!))).toBeUndefined();
    expect((await getNode(hungNode)).metadata?.annotations?.["gpufleet.io/isolation-reason"]).toMatch(
      new RegExp(`^${namespace}/hang attempt 0: C4D hang: node ${hungNode} ranks 9 in AllReduce`),
    );

    const after = await runningWithCheckpoint(namespace, "hang", 0, 1);
    measured.hangTaintToRunningMs = Date.now() - taintSeenAtMs;
    measured.hangInjectToTaintSeenMs = taintSeenAtMs - injectedAtMs;
    expect(after.status!.placement!.nodes).not.toContain(hungNode);
    const [fault] = after.status!.faults as FaultRecord[];
    expect(fault).toMatchObject({
      id: `0-hang-${hungNode}`,
      attempt: 0,
      faultClass: "hang",
      action: "isolate-node",
      node: hungNode,
      ranks: [9],
      collective: "AllReduce",
    });
    measured.hangDetectionMs = Date.parse(fault!.actedTime) - Date.parse(fault!.firstAffectedTime);
    expect(fault!.detail).toMatch(/ranks? 9 on .* never entered/);
    expect(Date.parse(fault!.firstAffectedTime)).toBeGreaterThanOrEqual(injectedAtMs - 1000);
    // FaultDetected was True (reason CommunicationHang) for attempt 0; once attempt 1 runs it says False, recalling it.
    const settled = await waitFor(
      async () =>
        (await getJob(namespace, "hang")).status?.conditions?.find(
          (c) => c.type === "FaultDetected" && c.status === "False",
        ),
      { description: "FaultDetected False once the new attempt runs", timeoutMs: 30_000 },
    );
    expect(settled).toMatchObject({
      reason: "NoFault",
      message: expect.stringMatching(
        new RegExp(`^no fault in attempt 1; last fault \\(attempt 0\\): C4D hang: node ${hungNode}`),
      ),
    });

    // Resumed from the last checkpoint: the new ranks start at the step status held when the gang was re-placed.
    const pods = (await cluster.core.listNamespacedPod({ namespace })).items;
    const resume = Number(envOf(pods[0]!).GPUFLEET_RESUME_STEP);
    expect(resume).toBeGreaterThanOrEqual(before.status!.lastCheckpointStep!);
    expect(resume % 5).toBe(0);
    for (const pod of pods) expect(pod.metadata?.annotations?.["gpufleet.io/attempt"]).toBe("1");

    // The story, in order, on the job; and the evidence on the node.
    const story = (await jobEvents(namespace, "hang")).map((e) => `${e.reason}: ${e.message}`);
    const at = (pattern: RegExp) => story.findIndex((line) => pattern.test(line));
    expect(
      at(
        /^CommunicationHang: C4D hang: node .* ranks 9 in AllReduce #\d+ .*; node .* isolated \(taint gpufleet.io\/isolated\); restarting the gang/,
      ),
    ).toBeGreaterThanOrEqual(0);
    // The monitor writes its Event after the fault record, and the gang step, woken by that record, writes its own:
    // two writers, so either may come first. Both come before the new placement.
    const restarted = at(
      new RegExp(
        `^GangMemberFailed: node ${hungNode} isolated; restarting the whole gang \\(restart 1 of 3\\) from step ${resume}`,
      ),
    );
    expect(restarted, story.join("\n")).toBeGreaterThanOrEqual(0);
    const replaced = at(new RegExp(`^Placed: placed 2 pods .*resuming from step ${resume}`));
    expect(replaced, story.join("\n")).toBeGreaterThan(restarted);
    expect(replaced, story.join("\n")).toBeGreaterThan(at(/^CommunicationHang/));
    const onNode = (await nodeEvents(hungNode)).map((e) => `${e.reason}: ${e.message}`);
    expect(onNode).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^NodeIsolated: tainted gpufleet.io/isolated:NoSchedule; TrainingJob ${namespace}/hang: C4D hang: node ${hungNode} ranks 9`,
        ),
      ),
    );

    // Never acted on twice: the fault stays one record and one taint while the monitor keeps looking.
    expect((await getJob(namespace, "hang")).status?.faults).toHaveLength(1);
    await deleteJob(namespace, "hang");
  });

  it("a slow rank (compute ×2): its node is tainted after the slowdown persists, and the gang restarts elsewhere from its checkpoint", async () => {
    const namespace = await cluster.freshNamespace("e2e-slow");
    await cluster.objects.create(job("slow", namespace));
    const before = await runningWithCheckpoint(namespace, "slow", 10);
    slowNode = before.status!.placement!.nodes[1]!;
    const injectedAtMs = Date.now();
    expect(
      (
        await kubectl(cluster.kubeconfigPath, [
          "annotate",
          "pod",
          "-n",
          namespace,
          "slow-1",
          "gpufleet.io/inject-fault=slow-rank=9:x2",
        ])
      ).code,
    ).toBe(0);
    const taint = await waitFor(async () => isolation(await getNode(slowNode!)), {
      description: `taint on ${slowNode}`,
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const taintSeenAtMs = Date.now();
    expect(taint).toMatchObject({ value: "c4d-straggler", effect: "NoSchedule" });
    const after = await runningWithCheckpoint(namespace, "slow", 0, 1);
    measured.stragglerInjectToTaintSeenMs = taintSeenAtMs - injectedAtMs;
    measured.stragglerTaintToRunningMs = Date.now() - taintSeenAtMs;
    expect(after.status!.placement!.nodes).not.toContain(slowNode);
    const [fault] = after.status!.faults as FaultRecord[];
    expect(fault).toMatchObject({ faultClass: "straggler", action: "isolate-node", node: slowNode, ranks: [9] });
    measured.stragglerDetectionMs = Date.parse(fault!.actedTime) - Date.parse(fault!.firstAffectedTime);
    const story = (await jobEvents(namespace, "slow")).map((e) => `${e.reason}: ${e.message}`);
    expect(story).toContainEqual(
      expect.stringMatching(
        /^Straggler: C4D straggler: node .* ranks 9 .*arrive late at collectives.*; node .* isolated/,
      ),
    );
    expect(story).toContainEqual(
      expect.stringMatching(new RegExp(`^GangMemberFailed: node ${slowNode} isolated; restarting the whole gang`)),
    );
    await deleteJob(namespace, "slow");
  });

  it("a slow link between two nodes: blamed on that link (SlowLink), nothing tainted, the gang restarts avoiding both ends", async () => {
    const namespace = await cluster.freshNamespace("e2e-link");
    // Four nodes: the simulated ranks run 8 channels in rail pairs (forwards and backwards around the nodes), so
    // each NIC that crosses the network talks to two nodes and the slow path stands out against both ends' others.
    await cluster.objects.create(job("link", namespace, { nodes: 4, parallelism: { tp: 8, pp: 2, dp: 2 } }));
    const before = await runningWithCheckpoint(namespace, "link", 10);
    const nodes = before.status!.placement!.nodes;
    const injectedAtMs = Date.now();
    // Rank 7 (last of node 0) sends to rank 8 (first of node 1) at a tenth of the NIC bandwidth.
    expect(
      (
        await kubectl(cluster.kubeconfigPath, [
          "annotate",
          "pod",
          "-n",
          namespace,
          "link-1",
          "gpufleet.io/inject-fault=slow-link=7-8:x0.1",
        ])
      ).code,
    ).toBe(0);
    const after = await runningWithCheckpoint(namespace, "link", 0, 1);
    measured.slowLinkInjectToRunningAgainMs = Date.now() - injectedAtMs;
    const [fault] = after.status!.faults as FaultRecord[];
    expect(fault).toMatchObject({
      attempt: 0,
      faultClass: "slow-link",
      action: "restart-only",
      node: nodes[0],
      peerNode: nodes[1],
      ranks: [7, 8],
    });
    expect(fault!.detail).toMatch(
      new RegExp(
        `transfers from NIC mlx5_7 of ${nodes[0]} to NIC mlx5_0 of ${nodes[1]} are slow .*the path between them`,
      ),
    );
    expect(fault!.timesMs).toMatchObject({
      observedTransferMs: expect.any(Number),
      baselineTransferMs: expect.any(Number),
    });
    measured.slowLinkDetectionMs = Date.parse(fault!.actedTime) - Date.parse(fault!.firstAffectedTime);
    // A path is neither end's fault: no taint; the new attempt avoids both ends (avoidNodes, cleared once placed).
    for (const n of nodes) expect(isolation(await getNode(n))).toBeUndefined();
    expect(after.status!.placement!.nodes).not.toContain(nodes[0]);
    expect(after.status!.placement!.nodes).not.toContain(nodes[1]);
    const story = (await jobEvents(namespace, "link")).map((e) => `${e.reason}: ${e.message}`);
    expect(story).toContainEqual(
      expect.stringMatching(new RegExp(`^SlowLink: C4D slow-link: node ${nodes[0]}.*restarting the gang`)),
    );
    expect(story.filter((l) => l.startsWith("AmbiguousEvidence"))).toEqual([]);
    await deleteJob(namespace, "link");
  });

  it("a slow NIC: blamed on that NIC, node condition NicDegraded-<nic> set, no taint, the gang restarts avoiding the node", async () => {
    const namespace = await cluster.freshNamespace("e2e-nic");
    await cluster.objects.create(job("nic", namespace, { nodes: 4, parallelism: { tp: 8, pp: 2, dp: 2 } }));
    const before = await runningWithCheckpoint(namespace, "nic", 10);
    const nodes = before.status!.placement!.nodes;
    const nicNode = nodes[1]!; // rank 9 is local rank 1 of node 1: its NIC is mlx5_1 (one NIC per GPU)
    const injectedAtMs = Date.now();
    expect(
      (
        await kubectl(cluster.kubeconfigPath, [
          "annotate",
          "pod",
          "-n",
          namespace,
          "nic-0",
          "gpufleet.io/inject-fault=slow-nic=9:x0.1",
        ])
      ).code,
    ).toBe(0);
    const condition = await waitFor(
      async () =>
        (await getNode(nicNode)).status?.conditions?.find(
          (c) => c.type === "NicDegraded-mlx5_1" && c.status === "True",
        ),
      { description: `NicDegraded-mlx5_1 on ${nicNode}`, timeoutMs: 60_000, intervalMs: 200 },
    );
    measured.slowNicInjectToConditionMs = Date.now() - injectedAtMs;
    expect(condition).toMatchObject({ reason: "NicDegraded", message: expect.stringMatching(/mlx5_1/) });
    const after = await runningWithCheckpoint(namespace, "nic", 0, 1);
    const [fault] = after.status!.faults as FaultRecord[];
    expect(fault).toMatchObject({
      faultClass: expect.stringMatching(/^slow-(sender|receiver)$/),
      action: "mark-nic",
      node: nicNode,
      nic: "mlx5_1",
    });
    measured.slowNicDetectionMs = Date.parse(fault!.actedTime) - Date.parse(fault!.firstAffectedTime);
    expect(isolation(await getNode(nicNode))).toBeUndefined();
    expect(after.status!.placement!.nodes).not.toContain(nicNode);
    // Only that NIC: the node's other NICs carry no condition.
    const nicConditions = ((await getNode(nicNode)).status?.conditions ?? [])
      .filter((c) => c.type.startsWith("NicDegraded-"))
      .map((c) => c.type);
    expect(nicConditions).toEqual(["NicDegraded-mlx5_1"]);
    expect((await nodeEvents(nicNode)).map((e) => `${e.reason}: ${e.message}`)).toContainEqual(
      expect.stringMatching(/^NicDegraded: NIC mlx5_1 marked degraded; TrainingJob /),
    );
    await deleteJob(namespace, "nic");
    // Undo it as an admin would (docs/faults.md), so later files see a clean node.
    const undo = await kubectl(cluster.kubeconfigPath, [
      "patch",
      "node",
      nicNode,
      "--subresource=status",
      "--type=strategic",
      "-p",
      JSON.stringify({ status: { conditions: [{ type: "NicDegraded-mlx5_1", $patch: "delete" }] } }),
    ]);
    expect(undo.code, undo.stderr).toBe(0);
  });

  it("an admin removes the taint (kubectl taint node N gpufleet.io/isolated-) and the node is placeable again", async () => {
    expect(hungNode && slowNode, "the hang and slow-rank tests isolated a node each").toBeTruthy();
    const namespace = await cluster.freshNamespace("e2e-unisolate");
    // Every H100 node: two pipeline stages of four nodes (one island each). It cannot fit while any is isolated.
    await cluster.objects.create(job("whole", namespace, { nodes: 8, parallelism: { tp: 8, pp: 2, dp: 4 } }));
    const waiting = await waitFor(
      async () => {
        const j = await getJob(namespace, "whole");
        return j.status?.conditions?.find((c) => c.type === "Unschedulable" && c.status === "True");
      },
      { description: "the 8-node job Unschedulable while nodes are isolated", timeoutMs: 30_000 },
    );
    expect(waiting.message).toMatch(/2 isolated/);
    for (const node of [hungNode!, slowNode!]) {
      const untaint = await kubectl(cluster.kubeconfigPath, ["taint", "node", node, `${IsolatedTaintKey}-`]);
      expect(untaint.stdout).toMatch(/untainted/);
    }
    const placed = await waitFor(
      async () => {
        const j = await getJob(namespace, "whole");
        return j.status?.placement ? j : undefined;
      },
      { description: "the 8-node job placed once the taints are gone", timeoutMs: 60_000 },
    );
    expect(placed.status!.placement!.nodes).toEqual(expect.arrayContaining([hungNode, slowNode]));
    await deleteJob(namespace, "whole");
  });

  it(
    "a fault-free job runs for two minutes with no fault, no taint and no restart; its per-rank latencies are exported",
    async () => {
      const { namespace, runningSinceMs } = steady!;
      await waitFor(() => Date.now() - runningSinceMs >= STEADY_RUN_MS || undefined, {
        description: "two minutes of the fault-free job",
        timeoutMs: STEADY_RUN_MS + 10_000,
        intervalMs: 1000,
      });
      const j = await getJob(namespace, "steady");
      expect(j.status).toMatchObject({ phase: "Running", restarts: 0 });
      expect(j.status?.faults ?? []).toEqual([]);
      expect(j.status?.conditions?.map((c) => c.type)).not.toContain("FaultDetected");
      expect(j.status?.conditions?.map((c) => c.type)).not.toContain("FaultSuspected");
      expect(j.status!.lastCheckpointStep!).toBeGreaterThan(100); // it really ran: ~4 steps/s
      for (const n of j.status!.placement!.nodes) expect(isolation(await getNode(n))).toBeUndefined();
      expect((await jobEvents(namespace, "steady")).map((e) => e.reason)).not.toContain("AmbiguousEvidence");

      const metrics = await (await fetch(`http://127.0.0.1:${operator!.httpPort}/metrics`)).text();
      const ranks = metrics
        .split("\n")
        .filter(
          (l) => l.startsWith("gpufleet_operator_training_rank_collective_seconds{") && l.includes(`name="steady"`),
        );
      expect(ranks).toHaveLength(16);
      expect(
        metricValue(metrics, "gpufleet_operator_training_rank_collective_seconds", { name: "steady", rank: "0" }),
      ).toBeGreaterThan(0);
      expect(metricValue(metrics, "gpufleet_operator_training_faults_total", { class: "hang" })).toBe(1);
      expect(metricValue(metrics, "gpufleet_operator_training_faults_total", { class: "straggler" })).toBe(1);
      expect(metricValue(metrics, "gpufleet_operator_training_faults_total", { class: "slow-link" })).toBe(1);
      expect(metricValue(metrics, "gpufleet_operator_training_faults_total", { class: "ambiguous" })).toBe(0);
      expect(metricValue(metrics, "gpufleet_operator_training_isolations_total", { target: "node" })).toBe(2);
      expect(metricValue(metrics, "gpufleet_operator_training_isolations_total", { target: "nic" })).toBe(1);
      expect(metricValue(metrics, "gpufleet_operator_training_gang_restarts_total", { cause: "node_isolated" })).toBe(
        2,
      );
      expect(metricValue(metrics, "gpufleet_operator_training_gang_restarts_total", { cause: "fault" })).toBe(2);
      expect(metricValue(metrics, "gpufleet_operator_training_fault_detection_seconds_count", { class: "hang" })).toBe(
        1,
      );
      await deleteJob(namespace, "steady");
    },
    STEADY_RUN_MS + 60_000,
  );
});
