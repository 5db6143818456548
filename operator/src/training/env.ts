/**
 * Environment of a TrainingJob's pods, computed from a placement: torch.distributed's rendezvous variables,
 * gpufleet's TP/PP/DP ranks and the stage's layer range, NCCL settings (nccl.ts), and where to resume.
 *
 * One pod per node runs one process per GPU (torchrun --nproc-per-node). torchrun derives
 * RANK = NODE_RANK × NPROC_PER_NODE + LOCAL_RANK, which is exactly the placement's rank (types.ts states the
 * convention), so the pod env carries node-level values plus per-local-rank lists (GPUFLEET_*_RANKS, indexed by
 * LOCAL_RANK); trainingRankEnv() gives the full env of one process for launchers that start ranks themselves.
 */
import { trafficPlanNcclEnv } from "./nccl.js";
import type { PlacedRank, TrainingPlacement } from "./types.js";

export interface PodEnvOptions {
  /** Address of node rank 0's pod (its stable DNS name under the headless Service). */
  masterAddr: string;
  masterPort: number;
  checkpointPath: string;
  /** spec.checkpoint.intervalSteps: workers write a checkpoint every this many steps. */
  checkpointIntervalSteps: number;
  /** Step to resume from (the job's last reported checkpoint step; 0 for a fresh start). */
  resumeStep: number;
  /** QPs per connection of the job's last C4P traffic plan (status.traffic), if it has one (nccl.ts). */
  qpsPerConnection?: number;
}

export class TrainingEnvError extends Error {
  override name = "TrainingEnvError";
  constructor(
    readonly jobName: string,
    message: string,
  ) {
    super(`TrainingJob ${jobName}: ${message}`);
  }
}

export const GpufleetEnv = {
  job: "GPUFLEET_JOB",
  tpSize: "GPUFLEET_TP_SIZE",
  ppSize: "GPUFLEET_PP_SIZE",
  dpSize: "GPUFLEET_DP_SIZE",
  ppRank: "GPUFLEET_PP_RANK",
  /** Comma-separated, indexed by LOCAL_RANK. */
  ranks: "GPUFLEET_RANKS",
  tpRanks: "GPUFLEET_TP_RANKS",
  dpRanks: "GPUFLEET_DP_RANKS",
  tpRank: "GPUFLEET_TP_RANK",
  dpRank: "GPUFLEET_DP_RANK",
  layerStart: "GPUFLEET_LAYER_START",
  layerEndExclusive: "GPUFLEET_LAYER_END",
  island: "GPUFLEET_ISLAND",
  nicType: "GPUFLEET_NIC_TYPE",
  dpTransport: "GPUFLEET_DP_TRANSPORT",
  ppPrevTransport: "GPUFLEET_PP_PREV_TRANSPORT",
  ppNextTransport: "GPUFLEET_PP_NEXT_TRANSPORT",
  checkpointPath: "GPUFLEET_CHECKPOINT_PATH",
  resumeStep: "GPUFLEET_RESUME_STEP",
  checkpointIntervalSteps: "GPUFLEET_CHECKPOINT_INTERVAL_STEPS",
} as const;

/** The env of the pod on node `nodeRank`. Throws TrainingEnvError on an out-of-range rank or bad options. */
export function trainingPodEnv(
  placement: TrainingPlacement,
  nodeRank: number,
  opts: PodEnvOptions,
): Record<string, string> {
  const { job } = placement;
  const node = placement.nodes[nodeRank];
  if (!Number.isInteger(nodeRank) || node === undefined || node.nodeRank !== nodeRank) {
    throw new TrainingEnvError(job.name, `node rank ${nodeRank} is not in 0..${placement.nodes.length - 1}`);
  }
  if (!Number.isInteger(opts.masterPort) || opts.masterPort < 1 || opts.masterPort > 65535)
    throw new TrainingEnvError(job.name, `masterPort ${opts.masterPort} is not a TCP port`);
  if (!Number.isInteger(opts.resumeStep) || opts.resumeStep < 0)
    throw new TrainingEnvError(job.name, `resumeStep ${opts.resumeStep} must be a non-negative integer`);
  if (!Number.isInteger(opts.checkpointIntervalSteps) || opts.checkpointIntervalSteps < 1)
    throw new TrainingEnvError(
      job.name,
      `checkpointIntervalSteps ${opts.checkpointIntervalSteps} must be a positive integer`,
    );
  if (opts.masterAddr === "") throw new TrainingEnvError(job.name, "masterAddr is empty");
  const stage = placement.stages[node.stage]!;
  const prev = node.stage > 0 ? placement.stages[node.stage - 1]!.nextTransport : null;
  const local = placement.ranks.slice(nodeRank * job.gpusPerNode, (nodeRank + 1) * job.gpusPerNode);
  let planEnv: Record<string, string>;
  try {
    planEnv = trafficPlanNcclEnv(opts.qpsPerConnection, node.nccl);
  } catch (error) {
    throw new TrainingEnvError(job.name, (error as Error).message);
  }
  return {
    MASTER_ADDR: opts.masterAddr,
    MASTER_PORT: String(opts.masterPort),
    WORLD_SIZE: String(placement.worldSize),
    NNODES: String(job.nodes),
    NODE_RANK: String(nodeRank),
    NPROC_PER_NODE: String(job.gpusPerNode),
    LOCAL_WORLD_SIZE: String(job.gpusPerNode),
    [GpufleetEnv.job]: job.name,
    [GpufleetEnv.tpSize]: String(job.tp),
    [GpufleetEnv.ppSize]: String(job.pp),
    [GpufleetEnv.dpSize]: String(job.dp),
    [GpufleetEnv.ppRank]: String(node.stage),
    [GpufleetEnv.ranks]: local.map((r) => r.rank).join(","),
    [GpufleetEnv.tpRanks]: local.map((r) => r.tpRank).join(","),
    [GpufleetEnv.dpRanks]: local.map((r) => r.dpRank).join(","),
    [GpufleetEnv.layerStart]: String(stage.layerStart),
    [GpufleetEnv.layerEndExclusive]: String(stage.layerEndExclusive),
    [GpufleetEnv.island]: node.island,
    [GpufleetEnv.nicType]: node.nicType,
    [GpufleetEnv.dpTransport]: stage.dpTransport,
    ...(prev !== null ? { [GpufleetEnv.ppPrevTransport]: prev } : {}),
    ...(stage.nextTransport !== null ? { [GpufleetEnv.ppNextTransport]: stage.nextTransport } : {}),
    [GpufleetEnv.checkpointPath]: opts.checkpointPath,
    [GpufleetEnv.resumeStep]: String(opts.resumeStep),
    [GpufleetEnv.checkpointIntervalSteps]: String(opts.checkpointIntervalSteps),
    ...node.nccl,
    ...planEnv,
  };
}

/** The full env of one process: its pod's env plus RANK, LOCAL_RANK and its own TP/DP ranks. */
export function trainingRankEnv(
  placement: TrainingPlacement,
  rank: number,
  opts: PodEnvOptions,
): Record<string, string> {
  const r: PlacedRank | undefined = placement.ranks[rank];
  if (!Number.isInteger(rank) || r === undefined || r.rank !== rank)
    throw new TrainingEnvError(placement.job.name, `rank ${rank} is not in 0..${placement.worldSize - 1}`);
  return {
    ...trainingPodEnv(placement, r.nodeRank, opts),
    RANK: String(r.rank),
    LOCAL_RANK: String(r.localRank),
    [GpufleetEnv.tpRank]: String(r.tpRank),
    [GpufleetEnv.dpRank]: String(r.dpRank),
  };
}
