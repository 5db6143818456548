/**
 * Types shared by the pure half of the TrainingJob feature: the planner's input (a job's shape and the candidate
 * nodes the reconciler observed) and its output (a whole-gang placement or the reason there is none).
 *
 * Rank convention (Megatron-LM's, stated once here and used everywhere):
 *
 *   rank = (ppRank × dp + dpRank) × tp + tpRank        TP fastest, then DP, then PP
 *   rank = nodeRank × gpusPerNode + localRank          what torchrun computes from NODE_RANK and LOCAL_RANK
 *
 * Both hold at once because every node serves exactly one pipeline stage (tp × dp is a multiple of gpusPerNode)
 * and tp divides gpusPerNode, so a TP group never leaves a node and a stage's ranks are the contiguous nodes
 * `stage × nodesPerStage … (stage + 1) × nodesPerStage − 1`.
 */
import type { NicType, NodeTopology } from "../../../crds/src/topology.js";

/** The model shape the step-time model needs; mirrors TrainingJob.spec.model (defaults filled by the API). */
export interface TrainingModelShape {
  paramsBillions: number;
  layers: number;
  hiddenSize: number;
  /** Tokens per sequence; default 2048. */
  seqLength?: number;
  /** Sequences per optimizer step across all DP replicas; default 512. */
  globalBatchSequences?: number;
  /** Sequences per micro-batch of one pipeline; default 1. */
  microBatchSequences?: number;
}

/** The part of a TrainingJob the planner reads. */
export interface TrainingJobShape {
  name: string;
  nodes: number;
  gpusPerNode: number;
  tp: number;
  pp: number;
  dp: number;
  model: TrainingModelShape;
  /** true: Holmes placement; false: the NIC-oblivious order (kept for A/B runs). */
  nicAware: boolean;
  /** Only nodes with this GPU model (spec.placement.gpuModel). */
  gpuModel?: string;
}

/** A node as the reconciler observed it: topology labels plus what it can take right now. */
export type CandidateNode = NodeTopology & {
  /** Allocatable GPUs not requested by any running pod. */
  gpusFree: number;
  /** Carries the gpufleet.io/isolated taint. */
  isolated: boolean;
  /** Not cordoned (spec.unschedulable false) and Ready. */
  schedulable: boolean;
};

/** How a communication group's traffic travels. */
export const Transport = {
  /** Inside one node. */
  nvlink: "nvlink",
  infiniband: "infiniband",
  roce: "roce",
  /** TCP sockets: an Ethernet island, or a group whose nodes sit on different fabrics. */
  socket: "socket",
} as const;
export type Transport = (typeof Transport)[keyof typeof Transport];

export interface PlacedRank {
  rank: number;
  nodeName: string;
  nodeRank: number;
  localRank: number;
  tpRank: number;
  ppRank: number;
  dpRank: number;
}

export interface PlacedNode {
  nodeName: string;
  nodeRank: number;
  stage: number;
  island: string;
  nicType: NicType;
  gpuModel: string;
  leaf: string;
  /** NCCL_* variables for this node's pod (see nccl.ts for when each is set). */
  nccl: Readonly<Record<string, string>>;
}

export interface PlacedStage {
  stage: number;
  layerStart: number;
  layerEndExclusive: number;
  /** The stage's island, or the islands joined by "+" when it had to span fabrics. */
  island: string;
  /** The stage's NIC type, or "mixed" when its nodes have different ones. */
  nicType: NicType | "mixed";
  nodeNames: readonly string[];
  /** How this stage's data-parallel all-reduce travels. */
  dpTransport: Transport;
  /** How activations to the next stage travel; null for the last stage. */
  nextTransport: Transport | null;
  /** Modelled busy time of this stage per step (its compute, TP and PP sends, DP sync). */
  busyMs: number;
}

export interface TrainingPlacement {
  ok: true;
  job: TrainingJobShape;
  /** Which algorithm produced the plan. */
  strategy: "holmes" | "oblivious";
  worldSize: number;
  nodesPerStage: number;
  /** Sorted by rank. */
  ranks: readonly PlacedRank[];
  /** Sorted by nodeRank. */
  nodes: readonly PlacedNode[];
  stages: readonly PlacedStage[];
  /** Islands used, in pipeline order. */
  islandsUsed: readonly string[];
  predictedStepMs: number;
  /** The NIC-oblivious placement's modelled step time on the same candidates (for comparison and status). */
  obliviousStepMs: number;
  summary: string;
}

/** What the cluster lacks, counted over the candidate nodes. */
export interface MissingCapacity {
  nodesNeeded: number;
  gpusPerNode: number;
  nodesUsable: number;
  isolated: number;
  unschedulable: number;
  insufficientFreeGpus: number;
  otherGpuModel: number;
  unknownGpuModel: number;
}

export const PlacementFailure = {
  /** The job's shape is impossible (not retried until the spec changes). */
  InvalidInput: "InvalidInput",
  /** The cluster cannot hold the whole gang now; nothing is bound and the job waits. */
  Unschedulable: "Unschedulable",
} as const;
export type PlacementFailure = (typeof PlacementFailure)[keyof typeof PlacementFailure];

export interface PlacementRefusal {
  ok: false;
  reason: PlacementFailure;
  message: string;
  missing?: MissingCapacity;
}

export type TrainingPlacementResult = TrainingPlacement | PlacementRefusal;
