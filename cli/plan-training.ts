/**
 * `gpufleet plan -f tj.yaml`: the gang placement the operator would make for a TrainingJob, with its own code: the
 * spec checks (training/controller-checks.ts), the job shape (gang-step.ts jobShape) and Holmes placement
 * (training/placement.ts). `placement` is the status.placement the operator writes; the rest explains it: each
 * pipeline stage's island, layers and transports, the predicted step time against the NIC-oblivious first fit,
 * and the NCCL settings each group of nodes gets.
 */
import type { TrainingJob } from "../crds/src/training-job.js";
import { checkTrainingSpec } from "../operator/src/training/controller-checks.js";
import { placementStatus } from "../operator/src/training/gang.js";
import { jobShape } from "../operator/src/training/gang-step.js";
import { planTrainingPlacement } from "../operator/src/training/placement.js";
import type { TrainingPlacement } from "../operator/src/training/types.js";
import { capacityByModel, type ClusterView } from "./cluster.js";

export interface TrainingPreview {
  kind: "TrainingJob";
  namespace: string;
  name: string;
  cluster: { source: string; gpus: ReturnType<typeof capacityByModel> };
  parallelism: { tp: number; pp: number; dp: number; nodes: number; gpusPerNode: number };
  strategy?: "holmes" | "oblivious";
  /** status.placement as the operator writes it. */
  placement?: ReturnType<typeof placementStatus>;
  /** status.planSummary. */
  planSummary?: string;
  speedupVsOblivious?: number;
  stages: {
    stage: number;
    island: string;
    nicType: string;
    layers: string;
    nodes: string[];
    dpTransport: string;
    nextTransport: string | null;
    busyMs: number;
  }[];
  /** NCCL environment per group of nodes that get the same settings. */
  ncclGroups: { nodes: string[]; env: Record<string, string> }[];
  failure?: { reason: string; message: string };
}

export function previewTraining(job: TrainingJob, cluster: ClusterView): TrainingPreview {
  const { spec } = job;
  const base: TrainingPreview = {
    kind: "TrainingJob",
    namespace: job.metadata.namespace ?? "default",
    name: job.metadata.name!,
    cluster: { source: cluster.source, gpus: capacityByModel(cluster.capacity) },
    parallelism: { ...spec.parallelism, nodes: spec.nodes, gpusPerNode: spec.gpusPerNode },
    stages: [],
    ncclGroups: [],
  };
  const check = checkTrainingSpec(spec, cluster.capacity.nodes);
  if (!check.ok) return { ...base, failure: { reason: check.reason, message: check.message } };
  const result = planTrainingPlacement({ job: jobShape(job), nodes: check.candidateNodes });
  if (!result.ok)
    return {
      ...base,
      failure: {
        reason: result.reason === "InvalidInput" ? "InvalidSpec" : "InsufficientCapacity",
        message: result.message,
      },
    };
  return {
    ...base,
    strategy: result.strategy,
    placement: placementStatus(result),
    planSummary: result.summary,
    speedupVsOblivious: Math.round((result.obliviousStepMs / result.predictedStepMs) * 1000) / 1000,
    stages: result.stages.map((s) => ({
      stage: s.stage,
      island: s.island,
      nicType: s.nicType,
      layers: `${s.layerStart}–${s.layerEndExclusive - 1}`,
      nodes: [...s.nodeNames],
      dpTransport: s.dpTransport,
      nextTransport: s.nextTransport,
      busyMs: Math.round(s.busyMs * 10) / 10,
    })),
    ncclGroups: ncclGroups(result),
  };
}

/** Nodes with identical NCCL settings, in rank order of their first node. */
function ncclGroups(placement: TrainingPlacement): { nodes: string[]; env: Record<string, string> }[] {
  const groups = new Map<string, { nodes: string[]; env: Record<string, string> }>();
  for (const n of placement.nodes) {
    const env = Object.fromEntries(Object.entries(n.nccl).sort(([a], [b]) => a.localeCompare(b)));
    const key = JSON.stringify(env);
    const g = groups.get(key) ?? { nodes: [], env };
    g.nodes.push(n.nodeName);
    groups.set(key, g);
  }
  return [...groups.values()];
}
