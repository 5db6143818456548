/**
 * Gang, all or nothing: the pods of a placement, one per planned node with all of the node's GPUs, and the
 * re-check that a placement computed earlier still fits before anything is bound.
 *
 * The planner already refuses partial gangs (placement.ts); these helpers keep the reconciler honest between
 * planning and binding: it creates every pod of planGangPods() with spec.nodeName set, or none when
 * checkGangFits() reports a node that stopped being usable (then it re-plans). No pod of a gang holds GPUs while
 * another waits.
 */
import { trainingPodEnv } from "./env.js";
import type { CandidateNode, TrainingPlacement } from "./types.js";

export interface GangPodOptions {
  namespace: string;
  /** The headless Service that gives node rank 0's pod its DNS name (MASTER_ADDR); also the pods' subdomain. */
  serviceName: string;
  masterPort: number;
  checkpointPath: string;
  checkpointIntervalSteps: number;
  resumeStep: number;
  /** QPs per connection of the job's last traffic plan (status.traffic.qpsPerConnection), if any. */
  qpsPerConnection?: number;
}

export interface GangPod {
  podName: string;
  /** Pod hostname; node rank 0's resolves as `${hostname}.${serviceName}.${namespace}.svc` (the Service's one pod). */
  hostname: string;
  nodeName: string;
  nodeRank: number;
  gpus: number;
  env: Record<string, string>;
}

/** Pod name of node rank `nodeRank`: stable across restarts, so DNS names and logs stay predictable. */
export function gangPodName(jobName: string, nodeRank: number): string {
  return `${jobName}-${nodeRank}`;
}

export function planGangPods(placement: TrainingPlacement, opts: GangPodOptions): GangPod[] {
  const jobName = placement.job.name;
  const masterAddr = `${gangPodName(jobName, 0)}.${opts.serviceName}.${opts.namespace}.svc`;
  return placement.nodes.map((node) => ({
    podName: gangPodName(jobName, node.nodeRank),
    hostname: gangPodName(jobName, node.nodeRank),
    nodeName: node.nodeName,
    nodeRank: node.nodeRank,
    gpus: placement.job.gpusPerNode,
    env: trainingPodEnv(placement, node.nodeRank, {
      masterAddr,
      masterPort: opts.masterPort,
      checkpointPath: opts.checkpointPath,
      checkpointIntervalSteps: opts.checkpointIntervalSteps,
      resumeStep: opts.resumeStep,
      ...(opts.qpsPerConnection !== undefined ? { qpsPerConnection: opts.qpsPerConnection } : {}),
    }),
  }));
}

export type GangFit = { ok: true } | { ok: false; message: string; unfit: { nodeName: string; why: string }[] };

/**
 * Whether every planned node can still take its pod now. `boundHere` names planned nodes that already run one of
 * this gang's pods (their GPUs are ours, not missing).
 */
export function checkGangFits(
  placement: TrainingPlacement,
  nodes: readonly CandidateNode[],
  boundHere: ReadonlySet<string> = new Set(),
): GangFit {
  const byName = new Map(nodes.map((n) => [n.nodeName, n]));
  const unfit: { nodeName: string; why: string }[] = [];
  for (const planned of placement.nodes) {
    const n = byName.get(planned.nodeName);
    const why =
      n === undefined
        ? "gone"
        : n.isolated
          ? "isolated"
          : !n.schedulable
            ? "unschedulable"
            : !boundHere.has(n.nodeName) && n.gpusFree < placement.job.gpusPerNode
              ? `${n.gpusFree} of ${placement.job.gpusPerNode} GPUs free`
              : null;
    if (why !== null) unfit.push({ nodeName: planned.nodeName, why });
  }
  if (unfit.length === 0) return { ok: true };
  const shown = unfit
    .slice(0, 5)
    .map((u) => `${u.nodeName} (${u.why})`)
    .join(", ");
  return {
    ok: false,
    unfit,
    message: `${unfit.length} of ${placement.nodes.length} planned nodes no longer fit: ${shown}${unfit.length > 5 ? ", …" : ""}`,
  };
}

/** The TrainingJob status.placement block for a placement. */
export function placementStatus(placement: TrainingPlacement): {
  islands: string[];
  ranksPerIsland: Record<string, number>;
  layersPerStage: number[];
  nodes: string[];
  predictedStepMs: number;
  obliviousStepMs: number;
} {
  const ranksPerIsland: Record<string, number> = {};
  for (const n of placement.nodes)
    ranksPerIsland[n.island] = (ranksPerIsland[n.island] ?? 0) + placement.job.gpusPerNode;
  return {
    islands: [...placement.islandsUsed],
    ranksPerIsland,
    layersPerStage: placement.stages.map((s) => s.layerEndExclusive - s.layerStart),
    nodes: placement.nodes.map((n) => n.nodeName),
    predictedStepMs: Math.round(placement.predictedStepMs * 10) / 10,
    obliviousStepMs: Math.round(placement.obliviousStepMs * 10) / 10,
  };
}
