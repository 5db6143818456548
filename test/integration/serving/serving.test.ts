/**
 * ServingDeployments on the local cluster (kwok nodes of the default profile: 4×8 H100 InfiniBand, 4×8 H100 RoCE,
 * 2×8 A100 Ethernet), the operator running in-process: the planned pods land with their GPU requests on the
 * planned nodes and the status shows the plan; an SLO change re-plans and rolls without a role ever losing its
 * last Ready instance; too little capacity says what is missing; a trace ConfigMap feeds the planner; deleting
 * the deployment garbage-collects everything it owned.
 *
 * Other test files share the cluster, so the deployments are small (Llama-3-8B, a few GPUs), the expected plan is
 * computed from the capacity free when a test starts, and every test deletes its deployments and waits for their
 * pods to go.
 */
import type { CoreV1Api, CustomObjectsApi, KubernetesObjectApi } from "@kubernetes/client-node";
import { PatchStrategy, setHeaderOptions, type CoreV1Event, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import type { ServingDeployment, ServingDeploymentSpec } from "../../../crds/src/serving-deployment.js";
import { IsolatedTaintKey } from "../../../crds/src/topology.js";
import { summarizeCapacity } from "../../../operator/src/cluster/capacity.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { planServing, type ServingPlanOk } from "../../../operator/src/serving/index.js";
import { clusterNodes, plannerInput, toStatusPlan } from "../../../operator/src/serving/planner-bridge.js";
import { planSummary, type StatusPlan } from "../../../operator/src/serving/pools.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { startInProcessOperator } from "../../support/operator.js";
import { servingDeployment } from "../../support/builders.js";

let cluster: TestCluster;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let objects: KubernetesObjectApi;
let operator: OperatorHandle | undefined;

beforeAll(async () => {
  cluster = testCluster();
  ({ core, customObjects: custom, objects } = cluster);
  operator = await startInProcessOperator(cluster, "serving-it");
});

afterAll(async () => {
  await operator?.stop();
});

const group = { group: API_GROUP, version: API_VERSION, plural: "servingdeployments" };
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

async function getSd(namespace: string, name: string): Promise<ServingDeployment> {
  return (await custom.getNamespacedCustomObject({ ...group, namespace, name })) as ServingDeployment;
}

async function sdPods(namespace: string, name: string): Promise<V1Pod[]> {
  const pods = (await core.listNamespacedPod({ namespace, labelSelector: `gpufleet.io/serving-deployment=${name}` }))
    .items;
  return pods.sort((a, b) => (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? ""));
}

async function eventsFor(namespace: string, name: string): Promise<CoreV1Event[]> {
  return (await core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
}

const condition = (sd: ServingDeployment, type: string) => sd.status?.conditions?.find((c) => c.type === type);
const env = (pod: V1Pod) =>
  Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? ""]));
const gpus = (pod: V1Pod) => Number(pod.spec?.containers[0]?.resources?.requests?.["nvidia.com/gpu"] ?? 0);
const pinnedNode = (pod: V1Pod) =>
  pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]
    ?.matchExpressions?.[0]?.values?.[0];
const isReady = (pod: V1Pod) =>
  pod.status?.phase === "Running" &&
  (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True") &&
  !pod.metadata?.deletionTimestamp;

/** What the operator should plan for `sd` on the cluster as it is now (nothing of the deployment running yet). */
async function expectedPlan(sd: ServingDeployment): Promise<StatusPlan> {
  const [nodes, pods] = await Promise.all([core.listNode(), core.listPodForAllNamespaces()]);
  const capacity = summarizeCapacity(nodes.items, pods.items);
  const spec = {
    ...sd.spec,
    model: { ...sd.spec.model, dtype: "bf16" as const },
    mode: sd.spec.mode ?? "auto",
    scaling: { minInstances: 1 },
  } as ServingDeploymentSpec;
  const result = planServing(plannerInput(spec, clusterNodes(capacity.nodes, [sd.spec.gpu.model!], [])));
  if (!result.ok) throw new Error(`the cluster cannot hold the test's deployment now: ${result.message}`);
  const converted = toStatusPlan(result as ServingPlanOk, spec.scaling);
  if (!converted.ok) throw new Error(converted.message);
  return converted.plan;
}

/** Waits until the deployment is Available at its current generation with every desired pod Ready. */
async function waitAvailable(
  namespace: string,
  name: string,
  timeoutMs = 60_000,
): Promise<{ sd: ServingDeployment; pods: V1Pod[] }> {
  return waitFor(
    async () => {
      const sd = await getSd(namespace, name);
      if (sd.status?.phase !== "Available" || sd.status.observedGeneration !== sd.metadata.generation) return undefined;
      // Status follows the operator's actions, so it can still say Available just after pods were replaced: require
      // the pods themselves to be there and ready.
      const pods = await sdPods(namespace, name);
      return pods.length > 0 && pods.every(isReady) ? { sd, pods } : undefined;
    },
    { description: `${namespace}/${name} Available`, timeoutMs },
  );
}

/** Deletes the deployment and waits until garbage collection removed its pods and Services. */
async function deleteSd(namespace: string, name: string): Promise<void> {
  await custom.deleteNamespacedCustomObject({ ...group, namespace, name }).catch(() => undefined);
  await waitFor(
    async () => {
      const [pods, services] = await Promise.all([
        sdPods(namespace, name),
        core.listNamespacedService({ namespace, labelSelector: `gpufleet.io/serving-deployment=${name}` }),
      ]);
      return pods.length === 0 && services.items.length === 0;
    },
    // kube-controller-manager's garbage collector learns a freshly installed CRD's kind on its discovery resync
    // (every 30 s), so the first deletion after installCrds may take that long.
    { description: `pods and Services of ${namespace}/${name} garbage-collected`, timeoutMs: 90_000, intervalMs: 500 },
  );
}

/** Asserts that the pods run `plan`: GPUs per role, TP/PP env, each pod bound to the node it is pinned to. */
async function expectPodsRun(pods: V1Pod[], plan: StatusPlan): Promise<void> {
  const nodes = new Map((await core.listNode()).items.map((n) => [n.metadata?.name ?? "", n]));
  for (const role of ["prefill", "decode", "colocated"] as const) {
    const mine = pods.filter((p) => p.metadata?.labels?.["gpufleet.io/role"] === role);
    const pool = plan[role];
    expect(
      mine.reduce((sum, p) => sum + gpus(p), 0),
      `${role} GPUs`,
    ).toBe(pool?.gpus ?? 0);
    expect(new Set(mine.map((p) => p.metadata?.labels?.["gpufleet.io/instance"])).size, `${role} instances`).toBe(
      pool?.replicas ?? 0,
    );
    for (const pod of mine) {
      expect(pod.spec?.nodeName, `${pod.metadata?.name} bound to the node it is pinned to`).toBe(pinnedNode(pod));
      expect(nodes.get(pod.spec?.nodeName ?? "")?.metadata?.labels?.["gpufleet.io/gpu-model"]).toBe(plan.gpuModel);
      expect(pod.spec?.nodeSelector).toEqual({ "gpufleet.io/gpu-model": plan.gpuModel });
      expect(pod.spec?.containers[0]?.resources?.limits?.["nvidia.com/gpu"]).toBe(String(gpus(pod)));
      const e = env(pod);
      expect(e).toMatchObject({
        GPUFLEET_ROLE: role,
        GPUFLEET_TP: String(pool!.tp),
        GPUFLEET_PP: String(pool!.pp),
        GPUFLEET_PLAN_HASH: pod.metadata?.labels?.["gpufleet.io/plan-hash"],
      });
      expect(e.GPUFLEET_STAGES!.split(",").length * pool!.tp, `${pod.metadata?.name} GPUs = its stages × TP`).toBe(
        gpus(pod),
      );
    }
  }
  // No node holds more GPUs than it has (our pods with everything else bound there).
  const all = (await core.listPodForAllNamespaces()).items;
  for (const nodeName of new Set(pods.map((p) => p.spec?.nodeName ?? ""))) {
    const used = all
      .filter((p) => p.spec?.nodeName === nodeName && p.status?.phase !== "Succeeded" && p.status?.phase !== "Failed")
      .reduce((s, p) => s + gpus(p), 0);
    expect(used, `GPUs bound on ${nodeName}`).toBeLessThanOrEqual(
      Number(nodes.get(nodeName)?.status?.allocatable?.["nvidia.com/gpu"] ?? 0),
    );
  }
}

describe("ServingDeployment", () => {
  it("runs the planned pools: pods with their GPUs on the planned kwok nodes, Services per role, the plan in status", async () => {
    const namespace = await cluster.freshNamespace("sd-plan");
    const sd = servingDeployment("chat", namespace);
    const expected = await expectedPlan(sd);
    await objects.create(sd);
    const { sd: running, pods } = await waitAvailable(namespace, "chat");

    expect(running.status?.plan).toMatchObject({
      mode: expected.mode,
      gpuModel: "H100-80GB",
      affinity: expected.affinity,
      prefill: expected.prefill,
      decode: expected.decode,
      totalGpus: expected.totalGpus,
    });
    expect(running.status?.plan?.goodputPerGpu).toBeCloseTo(expected.goodputPerGpu, 3);
    expect(running.status?.plan?.colocatedGoodputPerGpu).toBeGreaterThan(0);
    expect(running.status?.plan?.predictedAttainmentPercent).toBeGreaterThanOrEqual(90);
    const desired = (expected.prefill?.replicas ?? 0) + (expected.decode?.replicas ?? 0);
    expect(running.status).toMatchObject({
      planSummary: planSummary(expected),
      ready: `${desired}/${desired}`,
      readyInstances: desired,
      desiredInstances: desired,
    });
    expect(condition(running, "Planned")).toMatchObject({ status: "True", reason: "PlanReady" });
    expect(condition(running, "Available")).toMatchObject({ status: "True", reason: "PodsReady" });
    expect(condition(running, "Progressing")).toMatchObject({ status: "False", reason: "AsExpected" });
    expect(condition(running, "InsufficientCapacity")?.status).toBe("False");

    await expectPodsRun(pods, running.status!.plan!);
    for (const pod of pods) {
      expect(pod.metadata?.ownerReferences).toEqual([
        expect.objectContaining({
          kind: "ServingDeployment",
          name: "chat",
          uid: running.metadata.uid,
          controller: true,
        }),
      ]);
      expect(env(pod).GPUFLEET_LEADER_ADDRESS).toMatch(
        new RegExp(`^chat-[0-9a-f]{8}-[pd]\\d+\\.chat-pods\\.${namespace}\\.svc$`),
      );
    }

    const services = (
      await core.listNamespacedService({ namespace, labelSelector: "gpufleet.io/serving-deployment=chat" })
    ).items;
    expect(services.map((s) => s.metadata?.name).sort()).toEqual(["chat-decode", "chat-pods", "chat-prefill"]);
    const prefill = services.find((s) => s.metadata?.name === "chat-prefill")!;
    expect(prefill.spec?.selector).toMatchObject({
      "gpufleet.io/serving-deployment": "chat",
      "gpufleet.io/role": "prefill",
      "gpufleet.io/worker": "0",
    });
    expect(prefill.spec?.ports?.[0]).toMatchObject({ port: 8000, targetPort: 8000 });

    const events = await waitFor(
      async () => {
        const list = await eventsFor(namespace, "chat");
        return list.some((e) => e.reason === "PodsReady") ? list : undefined;
      },
      { description: "PlanReady and PodsReady Events" },
    );
    expect(events.filter((e) => e.reason === "PlanReady")).toEqual([
      expect.objectContaining({ type: "Normal", message: expect.stringContaining(planSummary(expected)) }),
    ]);

    await deleteSd(namespace, "chat");
  });

  it("re-plans on an SLO change and rolls to the new pods without a role ever losing its last Ready instance", async () => {
    const namespace = await cluster.freshNamespace("sd-roll");
    const summarization = { arrivalRatePerSec: 10, preset: "summarization" as const };
    await objects.create(servingDeployment("chat", namespace, { workload: summarization }));
    const { sd: before, pods: oldPods } = await waitAvailable(namespace, "chat");
    const oldHash = oldPods[0]?.metadata?.labels?.["gpufleet.io/plan-hash"];

    // A tighter TTFT on long prompts changes the prefill pool (DistServe §4: each phase's parallelism and replicas
    // follow its own SLO). With the calibrated latency model 150 ms no longer does, 100 ms does (2 prefill
    // instances instead of 1).
    const tighter = servingDeployment("chat", namespace, { slo: { ttftMs: 100 }, workload: summarization });
    const expected = await expectedPlan(tighter);
    expect(planSummary(expected), "the tighter SLO gives a different plan").not.toBe(before.status?.planSummary);

    const observations: { prefill: number; decode: number; hashes: string }[] = [];
    let rolled = false;
    const watcher = (async () => {
      while (!rolled) {
        const pods = await sdPods(namespace, "chat");
        const ready = (role: string) =>
          pods.filter(
            (p) =>
              p.metadata?.labels?.["gpufleet.io/role"] === role &&
              p.metadata.labels["gpufleet.io/worker"] === "0" &&
              isReady(p),
          ).length;
        observations.push({
          prefill: ready("prefill"),
          decode: ready("decode"),
          hashes: [...new Set(pods.map((p) => p.metadata?.labels?.["gpufleet.io/plan-hash"]))].sort().join(","),
        });
        await new Promise((resolve) => setTimeout(resolve, 50)); // pacing the sampling, not waiting on state
      }
    })();
    await custom.patchNamespacedCustomObject(
      { ...group, namespace, name: "chat", body: { spec: { slo: { ttftMs: 100 } } } },
      mergePatch,
    );
    const after = await waitFor(
      async () => {
        const r = await waitAvailable(namespace, "chat");
        return r.sd.metadata.generation === 2 &&
          r.pods.every((p) => p.metadata?.labels?.["gpufleet.io/plan-hash"] !== oldHash)
          ? r
          : undefined;
      },
      { description: "rolled to the new plan", timeoutMs: 90_000 },
    );
    rolled = true;
    await watcher;

    expect(after.sd.status?.plan).toMatchObject({
      prefill: expected.prefill,
      decode: expected.decode,
      totalGpus: expected.totalGpus,
    });
    expect(after.sd.status?.planSummary).toBe(planSummary(expected));
    await expectPodsRun(after.pods, after.sd.status!.plan!);
    expect(
      observations.some((o) => o.hashes.includes(",")),
      "old and new pods ran side by side",
    ).toBe(true);
    for (const o of observations)
      expect(
        o.prefill > 0 && o.decode > 0,
        `Ready prefill and decode leaders at every moment: ${JSON.stringify(o)}`,
      ).toBe(true);
    const changed = (await eventsFor(namespace, "chat")).filter((e) => e.reason === "PlanChanged");
    expect(changed).toEqual([
      expect.objectContaining({
        type: "Normal",
        message: expect.stringContaining(`${before.status?.planSummary} → ${planSummary(expected)} (SpecChanged)`),
      }),
    ]);

    await deleteSd(namespace, "chat");
  });

  it("moves the pods off a node isolated by fault detection, keeping the plan (hysteresis: same shape)", async () => {
    const namespace = await cluster.freshNamespace("sd-isolate");
    await objects.create(servingDeployment("chat", namespace));
    const { sd: before, pods } = await waitAvailable(namespace, "chat");
    const victim = pods[0]!.spec!.nodeName!;
    const taint = { key: IsolatedTaintKey, value: "serving-it", effect: "NoSchedule" };
    const node = await core.readNode({ name: victim });
    await core.patchNode(
      { name: victim, body: { spec: { taints: [...(node.spec?.taints ?? []), taint] } } },
      mergePatch,
    );
    try {
      const after = await waitFor(
        async () => {
          const r = await waitAvailable(namespace, "chat");
          return r.pods.every((p) => p.spec?.nodeName !== victim) ? r : undefined;
        },
        { description: `chat moved off ${victim}`, timeoutMs: 60_000 },
      );
      expect(after.sd.status?.planSummary).toBe(before.status?.planSummary);
      expect(after.pods.map((p) => p.metadata?.labels?.["gpufleet.io/plan-hash"])).toEqual(
        pods.map((p) => p.metadata?.labels?.["gpufleet.io/plan-hash"]),
      );
      await expectPodsRun(after.pods, after.sd.status!.plan!);
      expect((await eventsFor(namespace, "chat")).filter((e) => e.reason === "PlanChanged")).toEqual([]);
    } finally {
      const now = await core.readNode({ name: victim });
      await core.patchNode(
        {
          name: victim,
          body: { spec: { taints: (now.spec?.taints ?? []).filter((t) => t.key !== IsolatedTaintKey) } },
        },
        mergePatch,
      );
    }
    await deleteSd(namespace, "chat");
  });

  it("reports InsufficientCapacity naming what is missing, and runs nothing", async () => {
    const namespace = await cluster.freshNamespace("sd-short");
    // 300 req/s of chatbot traffic needs far more than the 16 A100 GPUs the profile has.
    await objects.create(
      servingDeployment("big", namespace, {
        gpu: { model: "A100-80GB" },
        mode: "auto",
        workload: { arrivalRatePerSec: 300 },
      }),
    );
    const short = await waitFor(
      async () => {
        const r = await getSd(namespace, "big");
        return condition(r, "InsufficientCapacity")?.status === "True" ? r : undefined;
      },
      { description: "big InsufficientCapacity", timeoutMs: 60_000 },
    );
    expect(condition(short, "InsufficientCapacity")?.message).toMatch(
      /^needs (\d+) A100-80GB GPUs in nodes of ≥\d+ free for 300 req\/s, cluster has \d+ free .*; missing [1-9]\d*$/,
    );
    expect(condition(short, "Planned")).toMatchObject({ status: "False", reason: "InsufficientCapacity" });
    expect(short.status).toMatchObject({ phase: "Pending" });
    expect(short.status?.plan).toBeUndefined();
    expect(await sdPods(namespace, "big")).toEqual([]);
    await waitFor(
      async () =>
        (await eventsFor(namespace, "big")).some((e) => e.type === "Warning" && e.reason === "InsufficientCapacity"),
      { description: "Warning InsufficientCapacity Event" },
    );
    await deleteSd(namespace, "big");
  });

  it("plans from a trace ConfigMap, and names the ConfigMap and key when it cannot read one", async () => {
    const namespace = await cluster.freshNamespace("sd-trace");
    const rows = Array.from(
      { length: 40 },
      (_, i) =>
        `2023-11-16 18:15:${String(i).padStart(2, "0")}.0000000,${300 + ((i * 97) % 900)},${80 + ((i * 31) % 200)}`,
    );
    await core.createNamespacedConfigMap({
      namespace,
      body: {
        metadata: { name: "conv" },
        data: { "trace.csv": ["TIMESTAMP,ContextTokens,GeneratedTokens", ...rows].join("\n") },
      },
    });
    const traced = (name: string, key: string) =>
      servingDeployment(name, namespace, {
        workload: { arrivalRatePerSec: 4, preset: undefined, traceRef: { configMapName: "conv", key } },
      });
    await objects.create(traced("good", "trace.csv"));
    await objects.create(traced("bad-key", "requests.csv"));

    const bad = await waitFor(
      async () => {
        const r = await getSd(namespace, "bad-key");
        return condition(r, "Planned")?.reason === "InvalidSpec" ? r : undefined;
      },
      { description: "bad-key InvalidSpec" },
    );
    expect(condition(bad, "Planned")).toMatchObject({
      status: "False",
      message: `workload.traceRef: ConfigMap ${namespace}/conv has no key "requests.csv" (keys: trace.csv)`,
    });
    expect(await sdPods(namespace, "bad-key")).toEqual([]);

    const { sd: good, pods } = await waitAvailable(namespace, "good");
    expect(condition(good, "Planned")).toMatchObject({ status: "True", reason: "PlanReady" });
    await expectPodsRun(pods, good.status!.plan!);
    await Promise.all([deleteSd(namespace, "good"), deleteSd(namespace, "bad-key")]);
  });

  it("garbage-collects every pod and Service it owned when the deployment is deleted", async () => {
    const namespace = await cluster.freshNamespace("sd-gc");
    await objects.create(servingDeployment("chat", namespace, { mode: "auto" }));
    const { pods } = await waitAvailable(namespace, "chat");
    expect(pods.length).toBeGreaterThan(0);
    const services = await core.listNamespacedService({
      namespace,
      labelSelector: "gpufleet.io/serving-deployment=chat",
    });
    expect(services.items.length).toBeGreaterThan(1);
    await deleteSd(namespace, "chat");
    expect(await sdPods(namespace, "chat")).toEqual([]);
  });
});
