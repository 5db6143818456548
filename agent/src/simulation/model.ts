/**
 * Simulation mode, pure part: which nodes an agent simulates, what their facts are, and which simulated workers a
 * pod bound to them runs.
 *
 * Nodes: those with the kwok annotation or label `kwok.x-k8s.io/node=fake`. Facts come from the node's gpufleet.io
 * labels when present, else from `gpufleet.io/sim-*` annotations, else defaults (8 x H100-80GB, 8 x 400G
 * InfiniBand); the agent applies labels only to nodes that lack them.
 * Pods: training pods (label gpufleet.io/training-job) run one simulated rank per entry of GPUFLEET_RANKS (the
 * operator's pod env); serving pods (label gpufleet.io/serving-deployment) run one serving worker whose kind
 * follows gpufleet.io/role (prefill / decode).
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { NicType, TopologyLabel } from "../../../crds/src/topology.js";
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import type { NodeFacts } from "../discovery/facts.js";
import { WorkerKind, type WorkerIdentity } from "../workers/registry.js";

export const KWOK_NODE = { key: "kwok.x-k8s.io/node", value: "fake" } as const;

export const SimAnnotation = {
  gpuModel: "gpufleet.io/sim-gpu-model",
  gpuCount: "gpufleet.io/sim-gpu-count",
  nicType: "gpufleet.io/sim-nic-type",
  nicBandwidthGbps: "gpufleet.io/sim-nic-bandwidth-gbps",
  /** Fabric position: a real node's agent gets these from its environment; a kwok node from its annotations. */
  leaf: "gpufleet.io/sim-leaf",
  island: "gpufleet.io/sim-island",
  /** Serving pods: Poisson request rate per second (default 4). */
  requestRate: "gpufleet.io/sim-request-rate",
  /** Training pods: compute time per step (default 200 ms) and bytes per all-reduce bucket (default 256 MiB). */
  computeMs: "gpufleet.io/sim-compute-ms",
  bucketBytes: "gpufleet.io/sim-bucket-bytes",
} as const;

export const TRAINING_JOB_LABEL = "gpufleet.io/training-job";
export const SERVING_LABEL = "gpufleet.io/serving-deployment";
export const ROLE_LABEL = "gpufleet.io/role";

export function isSimulatedNode(node: V1Node): boolean {
  const m = node.metadata;
  return m?.annotations?.[KWOK_NODE.key] === KWOK_NODE.value || m?.labels?.[KWOK_NODE.key] === KWOK_NODE.value;
}

export function simulatedNodeFacts(node: V1Node): NodeFacts {
  const name = node.metadata?.name ?? "";
  const labels = node.metadata?.labels ?? {};
  const ann = node.metadata?.annotations ?? {};
  const pick = (label: string, annotation: string, fallback: string): string => labels[label] ?? ann[annotation] ?? fallback;
  const model = pick(TopologyLabel.gpuModel, SimAnnotation.gpuModel, "H100-80GB");
  const spec = gpuSpec(model);
  const capacityGpus = node.status?.capacity?.["nvidia.com/gpu"];
  const gpuCount = Number(pick(TopologyLabel.gpuCount, SimAnnotation.gpuCount, capacityGpus ?? "8"));
  const nicType = pick(TopologyLabel.nicType, SimAnnotation.nicType, NicType.infiniband) as NicType;
  const nicCount = Number(labels[TopologyLabel.nicCount] ?? gpuCount);
  const bandwidthGbps = Number(pick(TopologyLabel.nicBandwidthGbps, SimAnnotation.nicBandwidthGbps, "400"));
  return {
    nodeName: name,
    simulated: true,
    gpus: Array.from({ length: gpuCount }, (_, i) => ({
      index: i, uuid: `GPU-sim-${name}-${i}`, productName: `simulated ${model}`, model, memoryMiB: spec.memoryGiB * 1024,
      pciBusId: `00000000:${(0x18 + i * 0x10).toString(16).toUpperCase().padStart(2, "0")}:00.0`, numaNode: i < gpuCount / 2 ? 0 : 1,
    })),
    nics: Array.from({ length: nicCount }, (_, i) => ({
      device: nicType === NicType.ethernet ? `eth${i}` : `mlx5_${i}`, port: 1, type: nicType, bandwidthGbps, state: "ACTIVE", active: true,
      netdev: undefined, numaNode: i < nicCount / 2 ? 0 : 1, gidCount: 1, nearestGpus: nicCount === gpuCount ? [i] : [],
    })),
    leaf: labels[TopologyLabel.leaf] ?? ann[SimAnnotation.leaf],
    island: labels[TopologyLabel.island] ?? ann[SimAnnotation.island],
  };
}

export interface SimWorkerSpec extends WorkerIdentity {
  /** namespace/job for training ranks. */
  jobKey: string | undefined;
}

export class PodSpecError extends Error {
  override name = "PodSpecError";
}

function envOf(pod: V1Pod): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of pod.spec?.containers ?? []) for (const e of c.env ?? []) if (e.value !== undefined) out[e.name] = e.value;
  return out;
}

export function workerSpecsForPod(pod: V1Pod): SimWorkerSpec[] {
  const ns = pod.metadata?.namespace ?? "default";
  const name = pod.metadata?.name ?? "";
  const uid = pod.metadata?.uid ?? `${ns}/${name}`;
  const nodeName = pod.spec?.nodeName;
  const labels = pod.metadata?.labels ?? {};
  if (!nodeName || pod.metadata?.deletionTimestamp || ["Succeeded", "Failed"].includes(pod.status?.phase ?? "")) return [];
  const base = { podNamespace: ns, podName: name, podUid: uid, nodeName };
  const job = labels[TRAINING_JOB_LABEL];
  if (job) {
    const env = envOf(pod);
    const worldSize = Number(env.WORLD_SIZE);
    const ranks = (env.GPUFLEET_RANKS ?? "").split(",").filter((r) => r !== "").map(Number);
    if (!Number.isInteger(worldSize) || worldSize <= 0 || ranks.length === 0 || ranks.some((r) => !Number.isInteger(r) || r < 0 || r >= worldSize)) {
      throw new PodSpecError(`pod ${ns}/${name}: training pod needs WORLD_SIZE and GPUFLEET_RANKS within it (got "${env.WORLD_SIZE}", "${env.GPUFLEET_RANKS}")`);
    }
    return ranks.map((rank) => ({ ...base, workerId: `${uid}/${rank}`, kind: WorkerKind.training, rank, worldSize, jobKey: `${ns}/${job}` }));
  }
  if (labels[SERVING_LABEL]) {
    const role = labels[ROLE_LABEL];
    const kind = role === "prefill" ? WorkerKind.servingPrefill : role === "decode" ? WorkerKind.servingDecode : WorkerKind.serving;
    return [{ ...base, workerId: `${uid}/0`, kind, rank: -1, worldSize: 0, jobKey: undefined }];
  }
  return [];
}
