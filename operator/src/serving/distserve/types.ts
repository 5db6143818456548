/**
 * The DistServe planner's input and answer (pure data). planner.ts has the algorithm.
 */
import type { NicType } from "../../../../crds/src/topology.js";
import type { LatencyCoefficientOverrides } from "../../../../common/src/models/latency.js";
import type { ModelShape } from "../../../../common/src/models/model-shapes.js";
import type { InstancePlacement } from "./packing.js";
import type { ColocatedPolicy } from "./simulator.js";
import type { ArrivalProcess, WorkloadLengths } from "./workload.js";

export const ServingMode = { disaggregated: "disaggregated", colocated: "colocated", auto: "auto" } as const;
export type ServingMode = (typeof ServingMode)[keyof typeof ServingMode];

export const PlanFailureReason = {
  /** The cluster (or maxGpus) has fewer suitable free GPUs than the plan needs; the message says how many. */
  insufficientCapacity: "InsufficientCapacity",
  /** No TP×PP split of the model fits in GPU memory on the available GPU models. */
  modelDoesNotFit: "ModelDoesNotFit",
  /** The input itself is wrong; the message names the field. */
  invalidInput: "InvalidInput",
  /**
   * The search ran out of its work budget (work-budget.ts) before it found a configuration meeting the SLOs, or
   * before the plan it found was verified; the message says in which stage.
   */
  planningBudgetExhausted: "PlanningBudgetExhausted",
} as const;
export type PlanFailureReason = (typeof PlanFailureReason)[keyof typeof PlanFailureReason];

/** A node as the planner sees it: crds NodeTopology facts plus its free GPUs. */
export interface ClusterNode {
  nodeName: string;
  gpuModel: string;
  gpuCount: number;
  gpusFree: number;
  nicType: NicType;
  /** Bandwidth of one NIC. */
  nicBandwidthGbps: number;
  nicCount: number;
}

export interface ServingSlo {
  ttftMs: number;
  tpotMs: number;
  /** Share of requests that must meet both SLOs, e.g. 90. */
  attainmentPercent: number;
}

export interface ServingWorkload {
  arrivalRatePerSec: number;
  lengths: WorkloadLengths;
  /** Poisson (default), or the trace's own arrivals rescaled to the rate (needs trace records with arrivalMs). */
  arrivals?: ArrivalProcess;
}

export interface ServingPlanOptions {
  /** PRNG seed for the simulated workload. Default 1. */
  seed?: number;
  /** Requests simulated per instance in each goodput search. Default 200. */
  requestsPerInstance?: number;
  /** Largest TP×PP instance considered. Default 64. */
  maxInstanceGpus?: number;
  /**
   * Simulation work allowed per GPU model (work-budget.ts): `search` units for the searches, then `finalize`
   * more to verify the plan. Defaults SEARCH_WORK_UNITS and FINALIZE_WORK_UNITS.
   */
  workBudget?: { search?: number; finalize?: number };
}

/** Simulation work a planning run did (work-budget.ts), summed over the GPU models it searched. */
export interface PlanWork {
  /** Work units spent: simulated events plus sequences advanced by batch steps. */
  units: number;
  /** True when a search ran out of its budget and skipped stages. */
  cutShort: boolean;
}

export interface ServingPlanInput {
  model: ModelShape;
  slo: ServingSlo;
  workload: ServingWorkload;
  mode: ServingMode;
  maxGpus?: number;
  nodes: readonly ClusterNode[];
  /** Plan only on nodes of this GPU model. */
  gpuModel?: string;
  /** Measured latency coefficients per GPU model, replacing the datasheet-derived defaults. */
  coefficientOverrides?: LatencyCoefficientOverrides;
  /** Name of the GpuProfile the overrides of each GPU model came from; the plan reports the one it used. */
  gpuProfiles?: Readonly<Record<string, string>>;
  options?: ServingPlanOptions;
}

export interface PoolPlan {
  tp: number;
  pp: number;
  replicas: number;
  gpusPerReplica: number;
  /** Goodput of one instance of this phase measured alone (req/s). */
  goodputPerInstance: number;
}

export interface ColocatedPlan extends PoolPlan {
  policy: ColocatedPolicy;
  /** Sarathi token budget per iteration, or vLLM prefill batch tokens. */
  batchTokens: number;
  goodputPerGpu: number;
}

export interface DisaggregatedSummary {
  prefill: PoolPlan;
  decode: PoolPlan;
  affinity: "high" | "low";
  goodputPerGpu: number;
  /** Smallest balanced group of instances the goodput was measured on. */
  unit: { prefill: number; decode: number; gpus: number };
}

export interface ServingPlanOk {
  ok: true;
  mode: "disaggregated" | "colocated";
  gpuModel: string;
  /** GpuProfile whose coefficients this plan's GPU model was planned with (unset: the shipped defaults). */
  gpuProfile?: string;
  prefill: PoolPlan | null;
  decode: PoolPlan | null;
  affinity: "high" | "low" | null;
  /** Measured end-to-end goodput of the chosen plan's unit, req/s per GPU. */
  goodputPerGpu: number;
  /** Simulated attainment of the whole plan at the target rate. */
  predictedAttainmentPercent: number;
  totalGpus: number;
  /** Best colocated alternative (the plan itself when mode is colocated). */
  colocated: ColocatedPlan | null;
  /** Best disaggregated alternative (the plan itself when mode is disaggregated). */
  disaggregated: DisaggregatedSummary | null;
  /**
   * The best plan of each kind by measured goodput per GPU, whatever was deployed: DistServe's objective
   * (Algorithm 1 maximises per-GPU goodput, then replicates). The deployed plan minimises GPUs for the target
   * rate, so at low rates it can be a smaller unit with lower goodput per GPU than `alternatives.disaggregated`.
   * `vllm` and `chunked` are the best colocated plans with each scheduler (vLLM prefill-first, Sarathi chunked
   * prefill); `colocated` above is the better of the two. Null where not searched (mode) or nothing met the SLOs.
   */
  alternatives: PlanAlternatives;
  placement: InstancePlacement[];
  gpusByNode: { nodeName: string; gpus: number }[];
  explanation: string;
  work?: PlanWork;
}

export interface PlanAlternatives {
  disaggregated: DisaggregatedSummary | null;
  vllm: ColocatedPlan | null;
  chunked: ColocatedPlan | null;
}

export interface ServingPlanError {
  ok: false;
  reason: PlanFailureReason;
  message: string;
  work?: PlanWork;
}

export type ServingPlanResult = ServingPlanOk | ServingPlanError;

/** A disaggregated plan shape to measure (benchmark and exhaustive search). */
export interface DisaggregatedPlanShape {
  prefill: { tp: number; pp: number; replicas: number };
  decode: { tp: number; pp: number; replicas: number };
  /**
   * high (default): KV over the decode instance's NICs. low (DistServe Algorithm 2): prefill and decode share
   * the PP degree and stage s of every instance sits on one node, so KV moves over NVLink; needs equal PP and
   * the replicas' per-stage segments (replicas·TP of both sides) within one node.
   */
  affinity?: "high" | "low";
}
