/**
 * Simulation mode, pure part: which nodes an agent simulates, what their facts are, and which simulated workers a
 * pod bound to them runs.
 *
 * Nodes: those with the kwok annotation or label `kwok.x-k8s.io/node=fake`. Facts come from the node's gpufleet.io
 * labels when present, else from `gpufleet.io/sim-*` annotations, else defaults (8 x H100-80GB, 8 x 400G
 * InfiniBand); the agent applies labels only to nodes that lack them.
 * Pods: training pods (label gpufleet.io/training-job) run one simulated rank per entry of GPUFLEET_RANKS (the
 * operator's pod env), stepping on from GPUFLEET_RESUME_STEP and checkpointing every
 * GPUFLEET_CHECKPOINT_INTERVAL_STEPS; serving pods (label gpufleet.io/serving-deployment) run one serving worker
 * with the pod's role (GPUFLEET_ROLE, else label gpufleet.io/role), model (GPUFLEET_MODEL_SHAPE, the planner's
 * shape as JSON) and GPUFLEET_TP / GPUFLEET_PP, with the latency coefficients of the GpuProfile its plan used
 * (GPUFLEET_GPU_PROFILE, common/src/hardware/planned-profile.ts; absent: the shipped defaults). A pod that does
 * not name a model runs DEFAULT_SIM_MODEL at TP=PP=1; a pod whose env is malformed runs nothing and the reason is
 * logged.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { NicType, TopologyLabel } from "../../../crds/src/topology.js";
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import {
  GPU_PROFILE_ENV,
  parsePlannedProfile,
  type PlannedGpuProfile,
} from "../../../common/src/hardware/planned-profile.js";
import { deriveModel, MODEL_SHAPES, type ModelShape } from "../../../common/src/models/model-shapes.js";
import { ServingRole } from "../workers/simulated/engine.js";
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
  /** Serving pods: synthetic Poisson requests per second (default: the agent's GPUFLEET_AGENT_SIM_REQUEST_RATE, 0). */
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
  const pick = (label: string, annotation: string, fallback: string): string =>
    labels[label] ?? ann[annotation] ?? fallback;
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
      index: i,
      uuid: `GPU-sim-${name}-${i}`,
      productName: `simulated ${model}`,
      model,
      memoryMiB: spec.memoryGiB * 1024,
      pciBusId: `00000000:${(0x18 + i * 0x10).toString(16).toUpperCase().padStart(2, "0")}:00.0`,
      numaNode: i < gpuCount / 2 ? 0 : 1,
    })),
    nics: Array.from({ length: nicCount }, (_, i) => ({
      device: nicType === NicType.ethernet ? `eth${i}` : `mlx5_${i}`,
      port: 1,
      type: nicType,
      bandwidthGbps,
      state: "ACTIVE",
      active: true,
      netdev: undefined,
      numaNode: i < nicCount / 2 ? 0 : 1,
      gidCount: 1,
      nearestGpus: nicCount === gpuCount ? [i] : [],
    })),
    leaf: labels[TopologyLabel.leaf] ?? ann[SimAnnotation.leaf],
    island: labels[TopologyLabel.island] ?? ann[SimAnnotation.island],
  };
}

/** What a serving pod says its engine is. */
export interface ServingPodSpec {
  deployment: string;
  role: ServingRole;
  shape: ModelShape;
  tp: number;
  pp: number;
  /** Index of this pod in its instance: 0 is the leader, the one that serves requests. */
  workerIndex: number;
  instancePods: number;
  /** The GpuProfile the plan was made with; undefined: the plan used the shipped defaults. */
  gpuProfile?: PlannedGpuProfile;
}

/** Where a training rank resumes and how often its job checkpoints. */
export interface TrainingPodSpec {
  resumeStep: number;
  /** Undefined when the pod does not say (pods from operators before the env existed): no checkpoints. */
  checkpointIntervalSteps: number | undefined;
  checkpointPath: string;
}

export interface SimWorkerSpec extends WorkerIdentity {
  /** namespace/job for training ranks. */
  jobKey: string | undefined;
  serving?: ServingPodSpec;
  training?: TrainingPodSpec;
}

export const DEFAULT_SIM_MODEL: ModelShape = MODEL_SHAPES["Llama-3-8B"];

/** Pod env the simulated workers read (set by operator/src/serving/pools.ts and operator/src/training/env.ts). */
export const SimEnv = {
  role: "GPUFLEET_ROLE",
  modelShape: "GPUFLEET_MODEL_SHAPE",
  tp: "GPUFLEET_TP",
  pp: "GPUFLEET_PP",
  workerIndex: "GPUFLEET_WORKER_INDEX",
  instancePods: "GPUFLEET_INSTANCE_PODS",
  gpuProfile: GPU_PROFILE_ENV,
  resumeStep: "GPUFLEET_RESUME_STEP",
  checkpointIntervalSteps: "GPUFLEET_CHECKPOINT_INTERVAL_STEPS",
  checkpointPath: "GPUFLEET_CHECKPOINT_PATH",
} as const;

export class PodSpecError extends Error {
  override name = "PodSpecError";
}

function envOf(pod: V1Pod): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of pod.spec?.containers ?? [])
    for (const e of c.env ?? []) if (e.value !== undefined) out[e.name] = e.value;
  return out;
}

export function workerSpecsForPod(pod: V1Pod): SimWorkerSpec[] {
  const ns = pod.metadata?.namespace ?? "default";
  const name = pod.metadata?.name ?? "";
  const uid = pod.metadata?.uid ?? `${ns}/${name}`;
  const nodeName = pod.spec?.nodeName;
  const labels = pod.metadata?.labels ?? {};
  if (!nodeName || pod.metadata?.deletionTimestamp || ["Succeeded", "Failed"].includes(pod.status?.phase ?? ""))
    return [];
  const base = { podNamespace: ns, podName: name, podUid: uid, nodeName };
  const job = labels[TRAINING_JOB_LABEL];
  if (job) {
    const env = envOf(pod);
    const worldSize = Number(env.WORLD_SIZE);
    const ranks = (env.GPUFLEET_RANKS ?? "")
      .split(",")
      .filter((r) => r !== "")
      .map(Number);
    if (
      !Number.isInteger(worldSize) ||
      worldSize <= 0 ||
      ranks.length === 0 ||
      ranks.some((r) => !Number.isInteger(r) || r < 0 || r >= worldSize)
    ) {
      throw new PodSpecError(
        `pod ${ns}/${name}: training pod needs WORLD_SIZE and GPUFLEET_RANKS within it (got "${env.WORLD_SIZE}", "${env.GPUFLEET_RANKS}")`,
      );
    }
    const training = trainingPodSpec(env, `${ns}/${name}`);
    return ranks.map((rank) => ({
      ...base,
      workerId: `${uid}/${rank}`,
      kind: WorkerKind.training,
      rank,
      worldSize,
      jobKey: `${ns}/${job}`,
      training,
    }));
  }
  const deployment = labels[SERVING_LABEL];
  if (deployment) {
    const serving = servingPodSpec(deployment, envOf(pod), labels, `${ns}/${name}`);
    const kind =
      serving.role === ServingRole.prefill
        ? WorkerKind.servingPrefill
        : serving.role === ServingRole.decode
          ? WorkerKind.servingDecode
          : WorkerKind.serving;
    return [{ ...base, workerId: `${uid}/0`, kind, rank: -1, worldSize: 0, jobKey: undefined, serving }];
  }
  return [];
}

function integerEnv(
  env: Record<string, string>,
  key: string,
  fallback: number | undefined,
  min: number,
  pod: string,
): number | undefined {
  const text = env[key];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (text.trim() === "" || !Number.isInteger(n) || n < min)
    throw new PodSpecError(`pod ${pod}: ${key}="${text}" must be an integer >= ${min}`);
  return n;
}

function servingPodSpec(
  deployment: string,
  env: Record<string, string>,
  labels: Record<string, string>,
  pod: string,
): ServingPodSpec {
  const roleText = env[SimEnv.role] ?? labels[ROLE_LABEL] ?? ServingRole.colocated;
  const roles: readonly string[] = Object.values(ServingRole);
  if (!roles.includes(roleText))
    throw new PodSpecError(`pod ${pod}: role "${roleText}" is not one of ${roles.join(", ")}`);
  let shape = DEFAULT_SIM_MODEL;
  const shapeText = env[SimEnv.modelShape];
  if (shapeText !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(shapeText);
    } catch (err) {
      throw new PodSpecError(`pod ${pod}: ${SimEnv.modelShape} is not JSON`, { cause: err });
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new PodSpecError(`pod ${pod}: ${SimEnv.modelShape} must be a JSON object`);
    shape = parsed as ModelShape;
    try {
      deriveModel(shape);
    } catch (err) {
      throw new PodSpecError(`pod ${pod}: ${SimEnv.modelShape}: ${(err as Error).message}`, { cause: err });
    }
  }
  const profileText = env[SimEnv.gpuProfile];
  let gpuProfile: PlannedGpuProfile | undefined;
  if (profileText !== undefined) {
    try {
      gpuProfile = parsePlannedProfile(profileText);
    } catch (err) {
      throw new PodSpecError(`pod ${pod}: ${(err as Error).message}`, { cause: err });
    }
  }
  return {
    deployment,
    role: roleText as ServingRole,
    shape,
    tp: integerEnv(env, SimEnv.tp, 1, 1, pod)!,
    pp: integerEnv(env, SimEnv.pp, 1, 1, pod)!,
    workerIndex: integerEnv(env, SimEnv.workerIndex, 0, 0, pod)!,
    instancePods: integerEnv(env, SimEnv.instancePods, 1, 1, pod)!,
    ...(gpuProfile ? { gpuProfile } : {}),
  };
}

function trainingPodSpec(env: Record<string, string>, pod: string): TrainingPodSpec {
  return {
    resumeStep: integerEnv(env, SimEnv.resumeStep, 0, 0, pod)!,
    checkpointIntervalSteps: integerEnv(env, SimEnv.checkpointIntervalSteps, undefined, 1, pod),
    checkpointPath: env[SimEnv.checkpointPath] ?? "",
  };
}
