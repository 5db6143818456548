/**
 * A ServingDeployment as the chaos scenarios see it: a pod watch that records every pod of the deployment (so a
 * second live pod for one slot, however short-lived, is counted, and so is any moment a role had no Ready
 * instance), and the settled end state measured against the plan in its status (every slot of the target plan
 * once, Ready, with the target plan's hash; nothing of an older plan left).
 *
 * A slot is what one pod stands for: plan hash, role, instance index, worker (the pod's rank within its instance).
 * Old and new plans run side by side during a rollout (surge first), so the hash is part of the slot.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  Watch,
  type KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../crds/src/common.js";
import { OwnedLabel } from "../../crds/src/reasons.js";
import type { ServingDeployment } from "../../crds/src/serving-deployment.js";
import {
  planGroups,
  planHash,
  planSummary,
  ServingPodAnnotation,
  ServingPodLabel,
} from "../../operator/src/serving/pools.js";
import { waitFor } from "../../test/harness/wait.js";

const servingGroup = { group: API_GROUP, version: API_VERSION, plural: "servingdeployments" };

const labelOf = (pod: V1Pod, key: string): string => pod.metadata?.labels?.[key] ?? "";
export const hashOf = (pod: V1Pod): string => labelOf(pod, OwnedLabel.planHash);
const roleOf = (pod: V1Pod): string => labelOf(pod, OwnedLabel.role);
const workerOf = (pod: V1Pod): string => labelOf(pod, ServingPodLabel.worker) || "0";
/** plan hash / role / instance / worker. */
export const slotOf = (pod: V1Pod): string =>
  `${hashOf(pod)}/${roleOf(pod)}/${labelOf(pod, OwnedLabel.instance)}/${workerOf(pod)}`;

const isLive = (pod: V1Pod): boolean =>
  !pod.metadata?.deletionTimestamp && pod.status?.phase !== "Failed" && pod.status?.phase !== "Succeeded";
export const isReady = (pod: V1Pod): boolean =>
  isLive(pod) &&
  pod.status?.phase === "Running" &&
  (pod.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

export interface ServingWatch {
  /** Every pod uid ever seen. */
  readonly created: number;
  /** Largest number of live pods seen at once for one slot, minus one, summed over slots. */
  readonly duplicateSlots: number;
  /** Slots that had two live pods at once (for the row's notes). */
  readonly duplicatedSlotNames: string[];
  /**
   * Pod events, from `armAvailability()` on, after which a role that had a Ready leader pod (worker 0) had none of
   * any plan: moments the deployment could not serve that role.
   */
  readonly roleGaps: number;
  /** Starts counting role gaps for the roles that have a Ready leader now (call once the deployment is Available). */
  armAvailability(): void;
  stop(): void;
}

/** Watches the deployment's pods (by the gpufleet.io/serving-deployment label). */
export async function watchServing(kubeConfig: KubeConfig, namespace: string, name: string): Promise<ServingWatch> {
  const live = new Map<string, V1Pod>();
  const uids = new Set<string>();
  const maxPerSlot = new Map<string, number>();
  let armedRoles: string[] | undefined;
  let roleGaps = 0;
  const readyLeaders = (role: string) =>
    [...live.values()].filter((p) => roleOf(p) === role && workerOf(p) === "0" && isReady(p)).length;
  const controller = await new Watch(kubeConfig).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: `${OwnedLabel.servingDeployment}=${name}` },
    (type: string, pod: V1Pod) => {
      const uid = pod.metadata?.uid ?? "";
      uids.add(uid);
      if (type === "DELETED" || !isLive(pod)) live.delete(uid);
      else live.set(uid, pod);
      const slot = slotOf(pod);
      const count = [...live.values()].filter((p) => slotOf(p) === slot).length;
      maxPerSlot.set(slot, Math.max(maxPerSlot.get(slot) ?? 0, count));
      if (armedRoles?.some((role) => readyLeaders(role) === 0)) roleGaps += 1;
    },
    () => undefined,
  );
  return {
    get created() {
      return uids.size;
    },
    get duplicateSlots() {
      return [...maxPerSlot.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
    },
    get duplicatedSlotNames() {
      return [...maxPerSlot.entries()].filter(([, n]) => n > 1).map(([slot]) => slot);
    },
    get roleGaps() {
      return roleGaps;
    },
    armAvailability() {
      armedRoles = [...new Set([...live.values()].filter(isReady).map(roleOf))].filter((r) => readyLeaders(r) > 0);
    },
    stop: () => controller.abort(),
  };
}

export interface ServingEnd {
  sd: ServingDeployment;
  /** Hash of the plan in status (with the engine): the label every pod should carry. */
  targetHash: string;
  planSummary: string;
  /** Live pods now. */
  pods: V1Pod[];
  /** Slots of the target plan: the pods it should have. */
  wantedSlots: number;
  /** Slots of the target plan (every instance's pods, by the instance-pods annotation) with no Ready pod. */
  missingSlots: number;
  /** Live pods beyond one per slot. */
  extraPods: number;
  /** Live pods of another plan. */
  otherPlanPods: number;
  /** Available at the current generation. */
  available: boolean;
}

async function listPods(kubeConfig: KubeConfig, namespace: string, name: string): Promise<V1Pod[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return (await core.listNamespacedPod({ namespace, labelSelector: `${OwnedLabel.servingDeployment}=${name}` })).items;
}

export async function readServingDeployment(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
): Promise<ServingDeployment> {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  return (await custom.getNamespacedCustomObject({ ...servingGroup, namespace, name })) as ServingDeployment;
}

/** Reads the deployment and its live pods, with what the target plan lacks and what is there beyond it. */
export async function readServing(kubeConfig: KubeConfig, namespace: string, name: string): Promise<ServingEnd> {
  const [sd, all] = await Promise.all([
    readServingDeployment(kubeConfig, namespace, name),
    listPods(kubeConfig, namespace, name),
  ]);
  const pods = all.filter(isLive);
  const plan = sd.status?.plan;
  const targetHash = plan ? planHash(plan, sd.spec.engine) : "";
  const target = pods.filter((p) => hashOf(p) === targetHash);
  const readySlots = new Set(target.filter(isReady).map(slotOf));
  // The plan gives the instances; how many pods an instance spans (its pipeline stages over nodes) is on its pods.
  const workersOf = (role: string, index: number) =>
    Math.max(
      1,
      ...target
        .filter((p) => roleOf(p) === role && labelOf(p, OwnedLabel.instance) === String(index))
        .map((p) => Number(p.metadata?.annotations?.[ServingPodAnnotation.instancePods] ?? 1)),
    );
  const wanted = (plan ? planGroups(plan) : [])
    .flatMap((g) => g.instances)
    .flatMap((i) =>
      Array.from({ length: workersOf(i.role, i.index) }, (_, w) => `${targetHash}/${i.role}/${i.index}/${w}`),
    );
  return {
    sd,
    targetHash,
    planSummary: plan ? planSummary(plan) : "",
    pods,
    wantedSlots: wanted.length,
    missingSlots: plan ? wanted.filter((slot) => !readySlots.has(slot)).length : 1,
    extraPods: target.length - new Set(target.map(slotOf)).size,
    otherPlanPods: pods.length - target.length,
    available: sd.status?.phase === "Available" && sd.status.observedGeneration === sd.metadata.generation,
  };
}

/**
 * Waits until the deployment is Available at its current generation (≥ `generation`) and its live pods are exactly
 * the target plan's slots, each once and Ready; returns that state.
 */
export async function waitRolled(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  opts: { generation: number; timeoutMs: number },
): Promise<ServingEnd> {
  let last: ServingEnd | undefined;
  return waitFor(
    async () => {
      last = await readServing(kubeConfig, namespace, name);
      return last.available &&
        (last.sd.metadata.generation ?? 0) >= opts.generation &&
        last.missingSlots === 0 &&
        last.extraPods === 0 &&
        last.otherPlanPods === 0
        ? last
        : undefined;
    },
    {
      get description() {
        return `${namespace}/${name} Available on its plan at generation ≥ ${opts.generation} (now: phase ${last?.sd.status?.phase ?? "?"}, generation ${last?.sd.metadata.generation ?? "?"} observed ${last?.sd.status?.observedGeneration ?? "?"}, plan ${last?.planSummary ?? "?"}, ${last?.pods.length ?? 0} live pods, ${last?.missingSlots ?? "?"} slots not Ready, ${last?.extraPods ?? "?"} extra, ${last?.otherPlanPods ?? "?"} of another plan)`;
      },
      timeoutMs: opts.timeoutMs,
      intervalMs: 250,
    },
  );
}

/** Merge-patches the deployment's spec (the change that starts a rollout). */
export async function patchServingSpec(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<void> {
  await kubeConfig
    .makeApiClient(CustomObjectsApi)
    .patchNamespacedCustomObject(
      { ...servingGroup, namespace, name, body: { spec } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
}

/** Deletes the deployment and waits until its pods are gone (the garbage collector deletes them). */
export async function deleteServing(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  timeoutMs = 120_000,
): Promise<void> {
  await kubeConfig
    .makeApiClient(CustomObjectsApi)
    .deleteNamespacedCustomObject({ ...servingGroup, namespace, name })
    .catch(() => undefined);
  await waitFor(async () => (await listPods(kubeConfig, namespace, name)).length === 0, {
    description: `pods of ${namespace}/${name} gone after its deletion`,
    timeoutMs,
    intervalMs: 500,
  });
}
