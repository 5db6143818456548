/**
 * TrainingJob gangs on the local cluster (kwok nodes of the default profile: 4×8 H100 InfiniBand, 4×8 H100 RoCE,
 * 2×8 A100 Ethernet), the operator running in-process: the whole gang lands where the plan says, a job that does
 * not fit binds nothing, a deleted pod or an isolated node restarts the whole gang elsewhere from the last
 * checkpoint (reported by the gang's rank 0 through an in-process agent and JetStream, as a worker would), and
 * maxRestarts ends in Failed.
 *
 * Other test files share the cluster, so every job sizes itself from the GPUs free when it starts, and every test
 * deletes its jobs and waits for their pods to go.
 */
import type { CoreV1Api, CustomObjectsApi, KubernetesObjectApi } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions, type CoreV1Event, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { IsolatedTaintKey } from "../../../crds/src/topology.js";
import type { TrainingJob } from "../../../crds/src/training-job.js";
import { summarizeCapacity, type NodeCapacity } from "../../../operator/src/cluster/capacity.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { jobShape } from "../../../operator/src/training/gang-step.js";
import { planTrainingPlacement } from "../../../operator/src/training/index.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import { startInProcessOperator } from "../../support/operator.js";
import { startTestAgent, type TestAgent } from "../../support/agent.js";

let cluster: TestCluster;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let objects: KubernetesObjectApi;
let operator: OperatorHandle | undefined;
let agent: TestAgent | undefined;

beforeAll(async () => {
  cluster = testCluster();
  ({ core, customObjects: custom, objects } = cluster);
  // Telemetry on: checkpoints reach status the real way (worker -> agent -> JetStream -> operator).
  operator = await startInProcessOperator(cluster, "training-it", {
    natsUrl: cluster.natsUrl,
    durablePrefix: `training-it-${Math.random().toString(36).slice(2, 8)}`,
  });
  agent = await startTestAgent({
    natsUrl: cluster.natsUrl,
    nodeNames: (await core.listNode()).items.map((n) => n.metadata!.name!),
  });
});

afterAll(async () => {
  await agent?.stop();
  await operator?.stop();
});

/**
 * Every rank of the gang registers with the agent over its worker socket; rank 0 reports a checkpoint of `step`
 * (WorkerClient.reportCheckpoint, the real worker protocol); resolves once the operator wrote it to status.
 */
async function checkpointThroughAgent(namespace: string, name: string, pods: V1Pod[], step: number): Promise<void> {
  const workerIds = [];
  for (const [rank, pod] of pods.entries()) workerIds.push(await agent!.registerPod(pod, rank, pods.length));
  expect(
    await agent!.worker.reportCheckpoint({
      workerId: workerIds[0]!,
      step,
      unixMs: Date.now(),
      path: `/ckpt/${name}/step-${step}`,
    }),
  ).toMatchObject({ accepted: 1 });
  await waitFor(async () => (await getJob(namespace, name)).status?.lastCheckpointStep === step, {
    description: `${namespace}/${name} status.lastCheckpointStep ${step}`,
    timeoutMs: 30_000,
  });
}

const group = { group: API_GROUP, version: API_VERSION, plural: "trainingjobs" };
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

function trainingJob(
  name: string,
  namespace: string,
  nodes: number,
  opts: { pp?: number; maxRestarts?: number; backoffSeconds?: number } = {},
): TrainingJob {
  const pp = opts.pp ?? 1;
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "TrainingJob",
    metadata: { name, namespace },
    spec: {
      image: "nvcr.io/nvidia/pytorch:25.01-py3",
      command: ["torchrun", "train.py"],
      nodes,
      gpusPerNode: 8,
      parallelism: { tp: 8, pp, dp: nodes / pp },
      model: { paramsBillions: 7.5, layers: 36, hiddenSize: 4096 },
      checkpoint: { path: `/ckpt/${name}` },
      faultPolicy: { maxRestarts: opts.maxRestarts ?? 3, restartBackoffSeconds: opts.backoffSeconds ?? 1 },
    } as TrainingJob["spec"],
  };
}

async function getJob(namespace: string, name: string): Promise<TrainingJob> {
  return (await custom.getNamespacedCustomObject({ ...group, namespace, name })) as TrainingJob;
}

async function jobPods(namespace: string, name: string): Promise<V1Pod[]> {
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `gpufleet.io/training-job=${name}` })).items;
  return pods.sort(
    (a, b) =>
      Number(a.metadata?.labels?.["gpufleet.io/instance"]) - Number(b.metadata?.labels?.["gpufleet.io/instance"]),
  );
}

async function eventsFor(namespace: string, name: string): Promise<CoreV1Event[]> {
  return (await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
}

const condition = (job: TrainingJob, type: string) => job.status?.conditions?.find((c) => c.type === type);
const env = (pod: V1Pod) =>
  Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? ""]));

/** Waits until the job is Running with every pod Running on its planned node; returns job and pods. */
async function waitRunning(
  namespace: string,
  name: string,
  restarts = 0,
  timeoutMs = 60_000,
): Promise<{ job: TrainingJob; pods: V1Pod[] }> {
  return waitFor(
    async () => {
      const job = await getJob(namespace, name);
      if (job.status?.phase !== "Running" || (job.status.restarts ?? 0) !== restarts) return undefined;
      const pods = (await jobPods(namespace, name)).filter((p) => !p.metadata?.deletionTimestamp);
      const ok = pods.length === job.spec.nodes && pods.every((p) => p.status?.phase === "Running");
      return ok ? { job, pods } : undefined;
    },
    { description: `${namespace}/${name} Running after ${restarts} restart(s)`, timeoutMs },
  );
}

/** Deletes the job and waits until garbage collection removed its pods (their GPUs are free again). */
async function deleteJob(namespace: string, name: string): Promise<void> {
  await custom.deleteNamespacedCustomObject({ ...group, namespace, name }).catch(() => undefined);
  await waitFor(async () => (await jobPods(namespace, name)).length === 0, {
    description: `pods of ${namespace}/${name} garbage-collected`,
    timeoutMs: 60_000,
  });
}

/** GPU nodes as the operator sees them now (free GPUs after every pod in the cluster). */
async function capacityNow(): Promise<NodeCapacity[]> {
  const [nodes, pods] = await Promise.all([core.listNode(), core.listPodForAllNamespaces()]);
  return summarizeCapacity(nodes.items, pods.items).nodes;
}
/**
 * Waits until no GPU pod is going away (earlier test files' namespaces are deleted asynchronously), so the free
 * capacity a test reads does not grow under it.
 */
async function capacitySettled(): Promise<void> {
  await waitFor(
    async () => {
      const [pods, namespaces] = await Promise.all([core.listPodForAllNamespaces(), core.listNamespace()]);
      const terminating = new Set(
        namespaces.items.filter((n) => n.status?.phase === "Terminating").map((n) => n.metadata?.name),
      );
      return !pods.items.some(
        (p) =>
          p.spec?.nodeName &&
          (p.metadata?.deletionTimestamp || terminating.has(p.metadata?.namespace)) &&
          p.spec.containers.some((c) => c.resources?.requests?.["nvidia.com/gpu"]),
      );
    },
    { description: "no GPU pods terminating", timeoutMs: 120_000, intervalMs: 500 },
  );
}
const usable = (nodes: readonly NodeCapacity[]) => nodes.filter((n) => n.schedulable && !n.isolated && n.gpusFree >= 8);

describe("TrainingJob gang", () => {
  it("lands as planned on the heterogeneous profile: every pod bound to its planned node with its rank env", async () => {
    const namespace = await cluster.freshNamespace("tj-place");
    await capacitySettled();
    const free = usable(await capacityNow());
    expect(free.length, "free 8-GPU nodes for a 4-node job").toBeGreaterThanOrEqual(4);
    const job = trainingJob("llm", namespace, 4, { pp: 2 });
    const expected = planTrainingPlacement({
      job: jobShape({ ...job, spec: { ...job.spec, placement: { nicAware: true } } }),
      nodes: free,
    });
    if (!expected.ok) throw new Error(expected.message);

    await objects.create(job);
    const { job: running, pods } = await waitRunning(namespace, "llm");

    expect(running.status?.placement?.nodes).toEqual(expected.nodes.map((n) => n.nodeName));
    expect(running.status?.placement?.islands).toEqual([...expected.islandsUsed]);
    expect(running.status?.placement?.layersPerStage).toEqual(
      expected.stages.map((s) => s.layerEndExclusive - s.layerStart),
    );
    expect(running.status).toMatchObject({
      phase: "Running",
      ready: "4/4",
      restarts: 0,
      planSummary: expected.summary,
    });
    expect(running.status?.placement?.predictedStepMs).toBeGreaterThan(0);
    expect(running.status?.placement?.obliviousStepMs).toBeGreaterThan(0);
    expect(condition(running, "Placed")).toMatchObject({ status: "True", reason: "PlanReady" });
    expect(condition(running, "Running")).toMatchObject({ status: "True", reason: "PodsReady" });
    expect(condition(running, "Unschedulable")?.status).toBe("False");

    expect(pods.map((p) => p.metadata?.name)).toEqual(["llm-0", "llm-1", "llm-2", "llm-3"]);
    for (const [rank, pod] of pods.entries()) {
      expect(pod.spec?.nodeName, `llm-${rank} on its planned node`).toBe(expected.nodes[rank]!.nodeName);
      expect(pod.spec).toMatchObject({ hostname: `llm-${rank}`, subdomain: "llm", restartPolicy: "Never" });
      expect(pod.spec?.containers[0]?.resources).toEqual({
        requests: { "nvidia.com/gpu": "8" },
        limits: { "nvidia.com/gpu": "8" },
      });
      expect(pod.metadata?.ownerReferences).toEqual([
        expect.objectContaining({ kind: "TrainingJob", name: "llm", uid: running.metadata.uid, controller: true }),
      ]);
      const e = env(pod);
      expect(e).toMatchObject({
        MASTER_ADDR: `llm-0.llm.${namespace}.svc`,
        MASTER_PORT: "29500",
        WORLD_SIZE: "32",
        NNODES: "4",
        NODE_RANK: String(rank),
        NPROC_PER_NODE: "8",
        GPUFLEET_TP_SIZE: "8",
        GPUFLEET_PP_SIZE: "2",
        GPUFLEET_DP_SIZE: "2",
        GPUFLEET_PP_RANK: String(expected.nodes[rank]!.stage),
        GPUFLEET_RANKS: Array.from({ length: 8 }, (_, i) => rank * 8 + i).join(","),
        GPUFLEET_LAYER_START: String(expected.stages[expected.nodes[rank]!.stage]!.layerStart),
        GPUFLEET_LAYER_END: String(expected.stages[expected.nodes[rank]!.stage]!.layerEndExclusive),
        GPUFLEET_CHECKPOINT_PATH: "/ckpt/llm",
        GPUFLEET_RESUME_STEP: "0",
        ...expected.nodes[rank]!.nccl,
      });
    }
    const service = await core.readNamespacedService({ name: "llm", namespace });
    expect(service.spec).toMatchObject({
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: { "gpufleet.io/training-job": "llm", "gpufleet.io/instance": "0" },
    });
    // Events follow the status write they describe, so wait for them rather than read once.
    await waitFor(
      async () => {
        const reasons = (await eventsFor(namespace, "llm")).map((e) => `${e.type}/${e.reason}`);
        return ["Normal/Placed", "Normal/PodsReady"].every((r) => reasons.includes(r));
      },
      { description: "Placed and PodsReady Events" },
    );

    await deleteJob(namespace, "llm");
    await expect(core.readNamespacedService({ name: "llm", namespace })).rejects.toThrow();
  });

  it("waits Unschedulable with nothing bound when the whole gang does not fit, and lands once GPUs free up", async () => {
    const namespace = await cluster.freshNamespace("tj-wait");
    await objects.create(trainingJob("holder", namespace, 2));
    await waitRunning(namespace, "holder");
    await capacitySettled();
    const freeNodes = usable(await capacityNow()).length;
    const wanted = freeNodes + 1;

    await objects.create(trainingJob("big", namespace, wanted));
    const waiting = await waitFor(
      async () => {
        const j = await getJob(namespace, "big");
        return condition(j, "Unschedulable")?.status === "True" ? j : undefined;
      },
      { description: "big Unschedulable", timeoutMs: 30_000 },
    );
    expect(condition(waiting, "Unschedulable")).toMatchObject({ reason: "InsufficientCapacity" });
    expect(condition(waiting, "Unschedulable")?.message).toMatch(
      new RegExp(
        `^needs ${wanted} nodes with 8 free GPUs; ${freeNodes} usable, .*\\(short by 1\\); nothing is bound until the whole gang fits$`,
      ),
    );
    expect(waiting.status).toMatchObject({ phase: "Pending", ready: `0/${wanted}` });
    expect(await jobPods(namespace, "big")).toEqual([]);
    await waitFor(
      async () =>
        (await eventsFor(namespace, "big")).some((e) => e.type === "Warning" && e.reason === "InsufficientCapacity"),
      { description: "Warning InsufficientCapacity Event" },
    );

    await deleteJob(namespace, "holder");
    const { pods } = await waitRunning(namespace, "big", 0, 60_000);
    expect(pods).toHaveLength(wanted);
    expect(new Set(pods.map((p) => p.spec?.nodeName)).size).toBe(wanted);
    await deleteJob(namespace, "big");
  });

  it("restarts the whole gang elsewhere from the last checkpoint when a pod is deleted", async () => {
    const namespace = await cluster.freshNamespace("tj-podgone");
    await objects.create(trainingJob("llm", namespace, 2, { backoffSeconds: 1 }));
    const before = await waitRunning(namespace, "llm");
    await checkpointThroughAgent(namespace, "llm", before.pods, 1200);
    const victim = before.pods[1]!;

    await core.deleteNamespacedPod({ name: victim.metadata!.name!, namespace });
    const after = await waitRunning(namespace, "llm", 1);

    const oldUids = new Set(before.pods.map((p) => p.metadata?.uid));
    expect(
      after.pods.every((p) => !oldUids.has(p.metadata?.uid)),
      "every member replaced, not only the deleted one",
    ).toBe(true);
    expect(after.pods.map((p) => p.spec?.nodeName)).not.toContain(victim.spec?.nodeName);
    for (const pod of after.pods) {
      expect(env(pod).GPUFLEET_RESUME_STEP).toBe("1200");
      expect(pod.metadata?.annotations?.["gpufleet.io/attempt"]).toBe("1");
    }
    expect(after.job.status).toMatchObject({ restarts: 1, lastCheckpointStep: 1200 });
    expect(condition(after.job, "Restarting")?.status).toBe("False");
    const events = await eventsFor(namespace, "llm");
    const failed = events.find((e) => e.reason === "GangMemberFailed");
    expect(failed?.type).toBe("Warning");
    expect(failed?.message).toMatch(
      new RegExp(
        `^pod ${victim.metadata?.name} \\(node ${victim.spec?.nodeName}\\) failed; restarting the whole gang \\(restart 1 of 3\\) from step 1200 after 1s$`,
      ),
    );
    await deleteJob(namespace, "llm");
  });

  it("restarts the whole gang on healthy nodes when a member's node is tainted isolated", async () => {
    const namespace = await cluster.freshNamespace("tj-isolated");
    await objects.create(trainingJob("llm", namespace, 2, { backoffSeconds: 1 }));
    const before = await waitRunning(namespace, "llm");
    await checkpointThroughAgent(namespace, "llm", before.pods, 300);
    const node = before.pods[0]!.spec!.nodeName!;
    const tainted = await kubectl(cluster.kubeconfigPath, [
      "taint",
      "node",
      node,
      `${IsolatedTaintKey}=hung-rank:NoSchedule`,
    ]);
    expect(tainted.code, tainted.stderr).toBe(0);
    try {
      const after = await waitRunning(namespace, "llm", 1);
      expect(after.pods.map((p) => p.spec?.nodeName)).not.toContain(node);
      expect(after.pods.every((p) => env(p).GPUFLEET_RESUME_STEP === "300")).toBe(true);
      const events = await eventsFor(namespace, "llm");
      expect(events.find((e) => e.reason === "GangMemberFailed")?.message).toMatch(
        new RegExp(`^node ${node} isolated; restarting the whole gang \\(restart 1 of 3\\) from step 300`),
      );
    } finally {
      await kubectl(cluster.kubeconfigPath, ["taint", "node", node, `${IsolatedTaintKey}-`]);
    }
    await deleteJob(namespace, "llm");
  });

  it("ends in Failed with RestartBudgetExhausted when maxRestarts is spent, releasing every GPU", async () => {
    const namespace = await cluster.freshNamespace("tj-budget");
    await objects.create(trainingJob("llm", namespace, 2, { maxRestarts: 1, backoffSeconds: 0 }));
    const failPod = async (pod: V1Pod) =>
      core.patchNamespacedPodStatus(
        { name: pod.metadata!.name!, namespace, body: { status: { phase: "Failed" } } },
        mergePatch,
      );

    const first = await waitRunning(namespace, "llm");
    await failPod(first.pods[0]!);
    const second = await waitRunning(namespace, "llm", 1);
    await failPod(second.pods[1]!);

    const failed = await waitFor(
      async () => {
        const j = await getJob(namespace, "llm");
        return j.status?.phase === "Failed" ? j : undefined;
      },
      { description: "llm Failed", timeoutMs: 30_000 },
    );
    expect(failed.status?.restarts).toBe(1);
    expect(condition(failed, "Failed")).toMatchObject({ status: "True", reason: "RestartBudgetExhausted" });
    expect(condition(failed, "Failed")?.message).toBe(
      `pod llm-1 (node ${second.pods[1]!.spec!.nodeName}) failed; restart budget spent (1 of maxRestarts 1 used)`,
    );
    await waitFor(async () => (await jobPods(namespace, "llm")).length === 0, {
      description: "the failed gang's pods deleted",
      timeoutMs: 30_000,
    });
    await waitFor(
      async () =>
        (await eventsFor(namespace, "llm")).some((e) => e.type === "Warning" && e.reason === "RestartBudgetExhausted"),
      { description: "Warning RestartBudgetExhausted Event" },
    );
    await deleteJob(namespace, "llm");
  });

  it("releases a placed gang when a spec change makes the job impossible to place", async () => {
    const namespace = await cluster.freshNamespace("tj-respec");
    await objects.create(trainingJob("llm", namespace, 2));
    await waitRunning(namespace, "llm");
    await custom.patchNamespacedCustomObject(
      { ...group, namespace, name: "llm", body: { spec: { placement: { gpuModel: "H200-141GB" } } } },
      mergePatch,
    );

    const waiting = await waitFor(
      async () => {
        const j = await getJob(namespace, "llm");
        return condition(j, "Unschedulable")?.reason === "NoMatchingNodes" ? j : undefined;
      },
      { description: "llm Unschedulable after the spec change", timeoutMs: 30_000 },
    );
    expect(waiting.status).toMatchObject({ phase: "Pending", ready: "0/2" });
    expect(waiting.status?.placement).toBeUndefined();
    await waitFor(async () => (await jobPods(namespace, "llm")).length === 0, {
      description: "the old gang's pods deleted",
      timeoutMs: 30_000,
    });
    await waitFor(
      async () =>
        (await eventsFor(namespace, "llm")).some(
          (e) => e.reason === "PlanChanged" && /deleted 2 pod\(s\) of the previous placement/.test(e.message ?? ""),
        ),
      { description: "PlanChanged Event" },
    );
    await deleteJob(namespace, "llm");
  });
});
