/**
 * A TrainingJob gang as the chaos scenarios see it: the job to apply, a pod watch that records every pod of the gang
 * (so a duplicate for one rank, however short-lived, is counted), and the settled end state (one attempt, every rank
 * once, all Running).
 */
import { CustomObjectsApi, KubernetesObjectApi, Watch, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../crds/src/common.js";
import { OwnedLabel } from "../../crds/src/reasons.js";
import type { TrainingJob } from "../../crds/src/training-job.js";
import { GangAnnotation } from "../../operator/src/training/gang-state.js";
import { trainingJob } from "../../test/support/builders.js";
import { waitFor } from "../../test/harness/wait.js";

/** A `nodes`×8-GPU H100 gang (TP8, PP2 from 8 nodes on, DP the rest) of a 7.5B model. */
export function gangJob(name: string, namespace: string, nodes: number): TrainingJob {
  const pp = nodes >= 8 ? 2 : 1;
  return trainingJob(name, namespace, {
    nodes,
    gpusPerNode: 8,
    parallelism: { tp: 8, pp, dp: nodes / pp },
    placement: { nicAware: true, gpuModel: "H100-80GB" },
  });
}

export interface GangWatch {
  /** performance.now() of the first pod of the gang seen. */
  readonly firstPodAtMs: number | undefined;
  /** Every pod uid ever seen. */
  readonly created: number;
  /** Largest number of live (not terminating) pods seen at once for one rank, minus one, summed over ranks. */
  readonly duplicateRanks: number;
  /** Live pods now. */
  live(): V1Pod[];
  stop(): void;
}

const rankOf = (pod: V1Pod): string => pod.metadata?.annotations?.[GangAnnotation.nodeRank] ?? pod.metadata?.name ?? "";

/** Watches the gang's pods; `onFirstPod` runs synchronously inside the first event (to inject a fault at once). */
export async function watchGang(
  kubeConfig: KubeConfig,
  namespace: string,
  job: string,
  onFirstPod?: (pod: V1Pod) => void,
): Promise<GangWatch> {
  const live = new Map<string, V1Pod>();
  const uids = new Set<string>();
  const maxPerRank = new Map<string, number>();
  let firstPodAtMs: number | undefined;
  const controller = await new Watch(kubeConfig).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    { labelSelector: `${OwnedLabel.trainingJob}=${job}` },
    (type: string, pod: V1Pod) => {
      const uid = pod.metadata?.uid ?? "";
      if (firstPodAtMs === undefined) {
        firstPodAtMs = performance.now();
        onFirstPod?.(pod);
      }
      uids.add(uid);
      if (type === "DELETED" || pod.metadata?.deletionTimestamp) live.delete(uid);
      else live.set(uid, pod);
      const rank = rankOf(pod);
      const count = [...live.values()].filter((p) => rankOf(p) === rank).length;
      maxPerRank.set(rank, Math.max(maxPerRank.get(rank) ?? 0, count));
    },
    () => undefined,
  );
  return {
    get firstPodAtMs() {
      return firstPodAtMs;
    },
    get created() {
      return uids.size;
    },
    get duplicateRanks() {
      return [...maxPerRank.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
    },
    live: () => [...live.values()],
    stop: () => controller.abort(),
  };
}

export interface GangEnd {
  job: TrainingJob;
  pods: V1Pod[];
  /** Ranks 0..nodes-1 with no Running pod. */
  missingRanks: number;
  /** Pods beyond one per rank. */
  extraPods: number;
  /** Distinct restart attempts among the pods (1 when the gang is whole). */
  attempts: number;
}

const trainingGroup = { group: API_GROUP, version: API_VERSION, plural: "trainingjobs" };

/** Reads the gang's settled state: the job and its live pods, with what is missing or extra. */
export async function readGang(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  nodes: number,
): Promise<GangEnd> {
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  const job = (await custom.getNamespacedCustomObject({ ...trainingGroup, namespace, name })) as TrainingJob;
  const list = await objects.list<V1Pod>(
    "v1",
    "Pod",
    namespace,
    undefined,
    undefined,
    undefined,
    undefined,
    `${OwnedLabel.trainingJob}=${name}`,
  );
  const pods = list.items.filter((p) => !p.metadata?.deletionTimestamp);
  const running = new Set(pods.filter((p) => p.status?.phase === "Running").map(rankOf));
  const missingRanks = Array.from({ length: nodes }, (_, i) => String(i)).filter((r) => !running.has(r)).length;
  return {
    job,
    pods,
    missingRanks,
    extraPods: Math.max(0, pods.length - new Set(pods.map(rankOf)).size),
    attempts: new Set(pods.map((p) => p.metadata?.annotations?.[GangAnnotation.attempt])).size,
  };
}

/** Waits until the job is Running with every rank Running once, all of one attempt; returns that state. */
export async function waitGangRunning(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  nodes: number,
  timeoutMs: number,
): Promise<GangEnd> {
  let last: GangEnd | undefined;
  return waitFor(
    async () => {
      last = await readGang(kubeConfig, namespace, name, nodes);
      return last.job.status?.phase === "Running" &&
        last.missingRanks === 0 &&
        last.extraPods === 0 &&
        last.attempts === 1 &&
        last.pods.length === nodes
        ? last
        : undefined;
    },
    {
      get description() {
        return `${namespace}/${name}: ${nodes} pods Running, one attempt (now: phase ${last?.job.status?.phase ?? "?"}, ${last?.pods.length ?? 0} pods, ${last?.missingRanks ?? "?"} ranks not Running, ${last?.attempts ?? "?"} attempts)`;
      },
      timeoutMs,
      intervalMs: 250,
    },
  );
}

/** Deletes the job and waits until its pods are gone (the garbage collector deletes them), so GPUs are free again. */
export async function deleteJob(
  kubeConfig: KubeConfig,
  namespace: string,
  name: string,
  timeoutMs = 120_000,
): Promise<void> {
  await kubeConfig
    .makeApiClient(CustomObjectsApi)
    .deleteNamespacedCustomObject({ ...trainingGroup, namespace, name })
    .catch(() => undefined);
  const objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  await waitFor(
    async () =>
      (
        await objects.list(
          "v1",
          "Pod",
          namespace,
          undefined,
          undefined,
          undefined,
          undefined,
          `${OwnedLabel.trainingJob}=${name}`,
        )
      ).items.length === 0,
    {
      description: `pods of ${namespace}/${name} gone after its deletion`,
      timeoutMs,
      intervalMs: 500,
    },
  );
}
