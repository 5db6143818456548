/**
 * DistServe planner: chooses prefill and decode parallelism, replica counts and placement for a
 * ServingDeployment, and compares them with the best colocated (vLLM / Sarathi-Serve) plan.
 *
 * Follows Zhong et al., "DistServe", OSDI 2024, §4:
 * - Algorithm 1, high node-affinity (§4.1): prefill and decode configurations are chosen independently; for each
 *   phase every (TP, PP) that fits in GPU memory is simulated alone and its goodput found by binary search on
 *   the rate; the phase picks the configuration with the best goodput per GPU; replicas are then
 *   ⌈rate / per-instance goodput⌉ for each phase. KV crosses the scale-out NICs. Two departures, both checked
 *   against exhaustive search in bench/serving.ts: each configuration is simulated as a pool of instances
 *   filling one node rather than one instance, so configurations are compared at equal pooling (one instance
 *   of TP1 vs one of TP4 compares 1 GPU of queueing against 4); and the top two configurations of each phase
 *   are paired within the GPU budget and the best two units measured end to end, because the two
 *   per-phase winners may not fit the budget together and the runner-up can win once the phases interact;
 *   then a short local search on the end-to-end measurement (neighbouring replica counts and TP/PP) refines
 *   the best unit. Each phase is sized to half the allowed misses (95% for a 90% target), since a request
 *   must meet both SLOs.
 * - Algorithm 2, low node-affinity (§4.2): when the NICs cannot carry the KV stream, prefill and decode
 *   instances share the same PP degree and stage s of both sits on one node, so KV moves over NVLink; a unit is
 *   `a` prefill and `b` decode instances whose per-stage segments fit one node.
 * The plan the phase search picks is then simulated end to end (prefill, KV transfer, decode) to measure its
 * real goodput per GPU and its attainment at the target rate; replicas are added to the bottleneck phase until
 * the target attainment holds. The deployed plan is the candidate (disaggregated units, the best colocated
 * plan; `mode` limits which) that needs the fewest GPUs for the target rate, ties to the higher measured goodput
 * per GPU; at high rates that is the best per-GPU plan, at low rates a smaller unit can win. `alternatives`
 * always reports the best per-GPU plan of each kind (DistServe's objective), and vLLM and Sarathi separately. The plan never uses more GPUs than the cluster has free (or maxGpus): it says what
 * is missing instead.
 *
 * Pure: no I/O, no clock; deterministic for a given input (the seed defaults to 1).
 */
import type { NicType } from "../../../../crds/src/topology.js";
import { GPU_CATALOG } from "../../../../common/src/hardware/catalog.js";
import { maxRateMeeting } from "./goodput.js";
import {
  type InstanceLatencyModel,
  type LatencyCoefficientOverrides,
  type LatencyCoefficients,
  type Parallelism,
  instanceLatencyModel,
  instanceMemory,
  latencyCoefficients,
  saturatingPrefillTokens,
} from "../../../../common/src/models/latency.js";
import { type DerivedModel, type ModelShape, InvalidModelShapeError, deriveModel } from "../../../../common/src/models/model-shapes.js";
import { type FreeNode, type InstancePlacement, type PackResult, packLowAffinity, packPools } from "./packing.js";
import {
  type ColocatedPolicy,
  type DisaggregatedSimConfig,
  type Slo,
  attainment,
  simulateColocated,
  simulateDisaggregated,
} from "./simulator.js";
import { type ArrivalProcess, type WorkloadLengths, type WorkloadSample, sampleWorkload, workloadProblem } from "./workload.js";

export const ServingMode = { disaggregated: "disaggregated", colocated: "colocated", auto: "auto" } as const;
export type ServingMode = (typeof ServingMode)[keyof typeof ServingMode];

export const PlanFailureReason = {
  /** The cluster (or maxGpus) has fewer suitable free GPUs than the plan needs; the message says how many. */
  insufficientCapacity: "InsufficientCapacity",
  /** No TP×PP split of the model fits in GPU memory on the available GPU models. */
  modelDoesNotFit: "ModelDoesNotFit",
  /** The input itself is wrong; the message names the field. */
  invalidInput: "InvalidInput",
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
}

export type ServingPlanResult = ServingPlanOk | ServingPlanError;

const TP_CHOICES = [1, 2, 4, 8] as const;
const PP_CHOICES = [1, 2, 4, 8] as const;
/** vLLM's default max_num_seqs: sequences one scheduler batches. */
const MAX_SEQS_PER_LANE = 256;
const MAX_UNIT_INSTANCES = 8;
/** Configurations per phase carried from the one-instance phase search into unit building. */
const PHASE_FINALISTS = 2;
/** High-affinity units measured end to end (best estimates first). */
const HIGH_AFFINITY_MEASURED = 2;
/** End-to-end measurements the local search around the best high-affinity unit may spend. */
const CLIMB_MEASUREMENTS = 16;
const MAX_SIM_REQUESTS = 3000;

const fail = (reason: PlanFailureReason, message: string): ServingPlanError => ({ ok: false, reason, message });

function inputProblem(input: ServingPlanInput): string | undefined {
  const { slo, workload } = input;
  if (!slo || !(slo.ttftMs > 0) || !(slo.tpotMs > 0)) return `slo.ttftMs and slo.tpotMs must be > 0, got ${slo?.ttftMs} and ${slo?.tpotMs}`;
  if (!(slo.attainmentPercent > 0 && slo.attainmentPercent <= 100)) return `slo.attainmentPercent must be in (0, 100], got ${slo.attainmentPercent}`;
  if (!workload || !(workload.arrivalRatePerSec > 0 && Number.isFinite(workload.arrivalRatePerSec))) {
    return `workload.arrivalRatePerSec must be a positive number, got ${workload?.arrivalRatePerSec}`;
  }
  const wp = workloadProblem(workload.lengths, workload.arrivals);
  if (wp) return wp;
  if (!Object.values(ServingMode).includes(input.mode)) return `mode must be one of ${Object.values(ServingMode).join(", ")}, got "${input.mode}"`;
  if (input.maxGpus !== undefined && !(Number.isInteger(input.maxGpus) && input.maxGpus > 0)) return `maxGpus must be a positive integer, got ${input.maxGpus}`;
  if (!Array.isArray(input.nodes)) return "nodes must be a list";
  const seen = new Set<string>();
  for (const node of input.nodes) {
    const where = `node ${node.nodeName || "(unnamed)"}`;
    if (!node.nodeName) return "every node needs a nodeName";
    if (seen.has(node.nodeName)) return `${where} is listed twice`;
    seen.add(node.nodeName);
    if (!(Number.isInteger(node.gpuCount) && node.gpuCount > 0)) return `${where}: gpuCount must be a positive integer, got ${node.gpuCount}`;
    if (!(Number.isInteger(node.gpusFree) && node.gpusFree >= 0 && node.gpusFree <= node.gpuCount)) {
      return `${where}: gpusFree must be an integer in [0, gpuCount=${node.gpuCount}], got ${node.gpusFree}`;
    }
    if (!(node.nicBandwidthGbps > 0) || !(Number.isInteger(node.nicCount) && node.nicCount > 0)) {
      return `${where}: nicBandwidthGbps and nicCount must be positive, got ${node.nicBandwidthGbps} and ${node.nicCount}`;
    }
  }
  if (input.gpuModel !== undefined && !(input.gpuModel in GPU_CATALOG)) {
    return `gpuModel "${input.gpuModel}" is not in the hardware catalog (${Object.keys(GPU_CATALOG).join(", ")})`;
  }
  const o = input.options;
  if (o?.requestsPerInstance !== undefined && !(Number.isInteger(o.requestsPerInstance) && o.requestsPerInstance >= 20)) {
    return `options.requestsPerInstance must be an integer ≥ 20, got ${o.requestsPerInstance}`;
  }
  return undefined;
}

/** Plans a ServingDeployment. Pure and deterministic; see the file comment for the algorithm. */
export function planServing(input: ServingPlanInput): ServingPlanResult {
  const problem = inputProblem(input);
  if (problem) return fail(PlanFailureReason.invalidInput, problem);
  let model: DerivedModel;
  try {
    model = deriveModel(input.model);
  } catch (error) {
    if (error instanceof InvalidModelShapeError) return fail(PlanFailureReason.invalidInput, error.message);
    throw error;
  }
  const candidates = input.nodes.filter((n) => (input.gpuModel ? n.gpuModel === input.gpuModel : n.gpuModel in GPU_CATALOG));
  const gpuModels = [...new Set(candidates.map((n) => n.gpuModel))].sort();
  if (gpuModels.length === 0) {
    const what = input.gpuModel ? `${input.gpuModel} nodes` : "nodes with a known GPU model";
    return fail(PlanFailureReason.insufficientCapacity, `cluster has no ${what} (known: ${Object.keys(GPU_CATALOG).join(", ")})`);
  }
  const results: ServingPlanResult[] = [];
  for (const gpuModel of gpuModels) {
    let coeffs: LatencyCoefficients;
    try {
      coeffs = latencyCoefficients(gpuModel, input.coefficientOverrides);
    } catch (error) {
      return fail(PlanFailureReason.invalidInput, (error as Error).message);
    }
    results.push(planOnGpuModel(input, model, coeffs, candidates.filter((n) => n.gpuModel === gpuModel)));
  }
  const ok = results.filter((r): r is ServingPlanOk => r.ok);
  if (ok.length > 0) {
    // Fewest GPUs for the target rate, then the best goodput per GPU.
    ok.sort((a, b) => a.totalGpus - b.totalGpus || b.goodputPerGpu - a.goodputPerGpu || a.gpuModel.localeCompare(b.gpuModel));
    return ok[0] as ServingPlanOk;
  }
  const capacity = results.find((r) => !r.ok && r.reason === PlanFailureReason.insufficientCapacity);
  return (capacity ?? results[0]) as ServingPlanError;
}

// ---------------------------------------------------------------------------------------------------------

interface Config extends Parallelism {
  gpus: number;
  latency: InstanceLatencyModel;
  kvCapacityTokens: number;
}

interface Phase {
  config: Config;
  /** Per-instance goodput (req/s). */
  goodput: number;
  perGpu: number;
}

interface Context {
  input: ServingPlanInput;
  model: DerivedModel;
  coeffs: LatencyCoefficients;
  slo: Slo;
  target: number;
  sample: WorkloadSample;
  seed: number;
  perInstance: number;
  lmTokens: number;
  maxNodeGpus: number;
  nicGBpsPerGpu: number;
  samples: Map<number, WorkloadSample>;
  /** GPUs the plan may use (free GPUs, capped by maxGpus); sizes the search pools. */
  budgetGpus: number;
}

function sampleFor(ctx: Context, count: number): WorkloadSample {
  const n = Math.min(MAX_SIM_REQUESTS, Math.max(ctx.perInstance, Math.ceil(count)));
  let sample = ctx.samples.get(n);
  if (!sample) {
    sample = sampleWorkload(ctx.input.workload.lengths, {
      count: n, seed: ctx.seed, maxContextTokens: ctx.model.maxContextTokens, arrivals: ctx.input.workload.arrivals,
    });
    ctx.samples.set(n, sample);
  }
  return sample;
}

/**
 * Requests to simulate for `instances` instances. A finite run cannot show overload by itself (a burst the
 * batches can absorb looks fine), which is why every search is capped by the configuration's capacity bound.
 */
function requestsFor(ctx: Context, instances: number): number {
  return ctx.perInstance * instances;
}

function nicKvGBps(ctx: Context, gpus: number): number {
  return gpus * ctx.nicGBpsPerGpu * ctx.coeffs.nicEfficiency;
}

/** Sequences one decode/colocated lane can hold at the workload's mean sequence length. */
function seqsPerLane(ctx: Context, c: Config): number {
  const { meanPromptTokens: p, meanOutputTokens: o } = ctx.sample;
  return Math.max(1, Math.min(MAX_SEQS_PER_LANE, Math.floor(c.kvCapacityTokens / c.pp / (p + o))));
}

/** Prefill throughput bound (req/s): back-to-back batches of L_m tokens, one every bottleneck-stage time. */
function prefillCapacity(ctx: Context, c: Config): number {
  const mean = ctx.sample.meanPromptTokens;
  const perBatch = Math.max(1, Math.floor(ctx.lmTokens / mean));
  const lat = c.latency.forward({ newTokens: perBatch * mean, attentionPairs: (perBatch * mean * (mean + 1)) / 2, kvReadTokens: 0, sequences: perBatch });
  return (perBatch * 1000) / lat.bottleneckStageMs;
}

/**
 * Decode throughput bound (req/s): every lane running the largest batch that memory allows and whose step
 * still meets the TPOT SLO (a bigger batch would miss it for everyone in it).
 */
function decodeCapacity(ctx: Context, c: Config): number {
  const { meanPromptTokens: p, meanOutputTokens: o } = ctx.sample;
  const stepMs = (b: number): number =>
    c.latency.forward({ newTokens: b, attentionPairs: b * (p + o / 2), kvReadTokens: b * (p + o / 2), sequences: b }).totalMs;
  let lo = 1;
  let hi = seqsPerLane(ctx, c);
  if (stepMs(hi) <= ctx.slo.tpotMs) lo = hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (stepMs(mid) <= ctx.slo.tpotMs) lo = mid;
    else hi = mid;
  }
  return (c.pp * lo * 1000) / (stepMs(lo) * Math.max(1, o - 1));
}

function prefillSim(ctx: Context, c: Config, count: number): DisaggregatedSimConfig["prefill"] {
  return { latency: c.latency, count, maxBatchTokens: ctx.lmTokens, kvLinkGBps: nicKvGBps(ctx, c.gpus) };
}

function decodeSim(c: Config, count: number, kvLinkGBps: number): DisaggregatedSimConfig["decode"] {
  return { latency: c.latency, count, kvCapacityTokens: c.kvCapacityTokens, maxSeqsPerLane: MAX_SEQS_PER_LANE, kvLinkGBps };
}

/**
 * Instances a per-configuration search simulates together (at least one): as many as fill one node (or the
 * budget, if smaller). Goodput depends on pooling (k instances behind one shortest-queue dispatcher absorb a
 * burst better than one), so configurations are compared on equal GPU pools, not one instance each, which
 * would favour big instances (a TP4 instance pools 4 GPUs' worth of work, a TP1 instance one). Colocated and
 * disaggregated phase searches use the same pools. The searches return per-instance goodput (pool ÷ k).
 */
function poolSize(ctx: Context, c: Config): number {
  return Math.max(1, Math.floor(Math.min(ctx.maxNodeGpus, ctx.budgetGpus) / c.gpus));
}

/**
 * Attainment each phase must reach alone. A request meets the end-to-end SLO only if it meets both TTFT and
 * TPOT; with the phases sized separately their misses add up, so each phase gets half the allowed misses
 * (union bound: 95% + 95% guarantees 90% together). Sizing both at the full target overstates every unit whose
 * phases both run near their limit, and ranks units wrongly before the end-to-end measurement.
 */
function phaseTarget(ctx: Context): number {
  return 1 - (1 - ctx.target) / 2;
}

function searchPrefill(ctx: Context, c: Config): number {
  const k = poolSize(ctx, c);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg: DisaggregatedSimConfig = { prefill: prefillSim(ctx, c, k), decode: decodeSim(c, 0, 1), kvBytesPerToken: ctx.model.kvBytesPerToken, phase: "prefill" };
  const pool = maxRateMeeting((rate) => attainment(simulateDisaggregated(sample, rate, cfg), ctx.slo, "prefill"), {
    target: phaseTarget(ctx), capacityRatePerSec: k * prefillCapacity(ctx, c),
  });
  return pool / k;
}

function searchDecode(ctx: Context, c: Config, kvLinkGBps: number): number {
  const k = poolSize(ctx, c);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg: DisaggregatedSimConfig = { prefill: prefillSim(ctx, c, 0), decode: decodeSim(c, k, kvLinkGBps), kvBytesPerToken: ctx.model.kvBytesPerToken, phase: "decode" };
  const pool = maxRateMeeting((rate) => attainment(simulateDisaggregated(sample, rate, cfg), ctx.slo, "decode"), {
    target: phaseTarget(ctx), capacityRatePerSec: k * decodeCapacity(ctx, c),
  });
  return pool / k;
}

/** Sarathi-Serve §4.3: the largest power-of-two token budget whose iteration stays within half the TPOT SLO. */
function sarathiChunkTokens(ctx: Context, c: Config): number {
  let best = 128;
  for (let tokens = 128; tokens <= 8192; tokens *= 2) {
    const ms = c.latency.forward({ newTokens: tokens, attentionPairs: (tokens * tokens) / 2, kvReadTokens: 0, sequences: 1 }).totalMs;
    if (ms <= ctx.slo.tpotMs / 2) best = tokens;
  }
  return best;
}

function colocatedSimConfig(ctx: Context, c: Config, count: number, policy: ColocatedPolicy) {
  return {
    latency: c.latency, count, kvCapacityTokens: c.kvCapacityTokens, maxSeqsPerLane: MAX_SEQS_PER_LANE,
    maxBatchTokens: ctx.lmTokens, policy, chunkTokens: sarathiChunkTokens(ctx, c),
  };
}

/** Time-sharing bound: each request needs 1/prefill + 1/decode of the instance's time. */
function colocatedCapacity(ctx: Context, c: Config): number {
  return 1 / (1 / prefillCapacity(ctx, c) + 1 / decodeCapacity(ctx, c));
}

function searchColocated(ctx: Context, c: Config, policy: ColocatedPolicy): number {
  const k = poolSize(ctx, c);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg = colocatedSimConfig(ctx, c, k, policy);
  const pool = maxRateMeeting((rate) => attainment(simulateColocated(sample, rate, cfg), ctx.slo), {
    target: ctx.target, capacityRatePerSec: k * colocatedCapacity(ctx, c),
  });
  return pool / k;
}

interface DisaggShape {
  prefill: Phase;
  decode: Phase;
  affinity: "high" | "low";
  /** Instances per unit (low affinity) or per measured group (high). */
  unitPrefill: number;
  unitDecode: number;
  /** Estimated req/s per GPU from the phase searches. */
  estimatePerGpu: number;
  kvLinkGBps: number;
}

function disaggConfig(ctx: Context, s: DisaggShape, nPrefill: number, nDecode: number): DisaggregatedSimConfig {
  const prefill = prefillSim(ctx, s.prefill.config, nPrefill);
  if (s.affinity === "low") prefill.kvLinkGBps = s.kvLinkGBps;
  return {
    prefill,
    decode: decodeSim(s.decode.config, nDecode, s.kvLinkGBps),
    kvBytesPerToken: ctx.model.kvBytesPerToken,
    unit: s.affinity === "low" ? { prefill: s.unitPrefill, decode: s.unitDecode } : undefined,
  };
}

function gpusOf(s: DisaggShape, nPrefill: number, nDecode: number): number {
  return nPrefill * s.prefill.config.gpus + nDecode * s.decode.config.gpus;
}

/** Smallest-GPU integer mix (≤ MAX_UNIT_INSTANCES each, ≤ maxGpus unless 1+1 already exceeds it) maximising min(a·gp, b·gd) per GPU. */
function balancedUnit(p: Phase, d: Phase, maxGpus: number): { a: number; b: number; perGpu: number } {
  let best = { a: 1, b: 1, perGpu: Math.min(p.goodput, d.goodput) / (p.config.gpus + d.config.gpus) };
  for (let a = 1; a <= MAX_UNIT_INSTANCES; a++) {
    for (let b = 1; b <= MAX_UNIT_INSTANCES; b++) {
      const gpus = a * p.config.gpus + b * d.config.gpus;
      if (gpus > maxGpus && !(a === 1 && b === 1)) continue;
      const perGpu = Math.min(a * p.goodput, b * d.goodput) / gpus;
      if (perGpu > best.perGpu * 1.0001) best = { a, b, perGpu };
    }
  }
  return best;
}

function measureDisagg(ctx: Context, s: DisaggShape): number {
  const sample = sampleFor(ctx, disaggRequests(ctx, s, s.unitPrefill, s.unitDecode));
  const cfg = disaggConfig(ctx, s, s.unitPrefill, s.unitDecode);
  const rate = maxRateMeeting((r) => attainment(simulateDisaggregated(sample, r, cfg), ctx.slo), {
    target: ctx.target,
    capacityRatePerSec: Math.min(s.unitPrefill * prefillCapacity(ctx, s.prefill.config), s.unitDecode * decodeCapacity(ctx, s.decode.config)),
  });
  return rate / gpusOf(s, s.unitPrefill, s.unitDecode);
}

function shapeKey(s: DisaggShape): string {
  const { prefill: p, decode: d } = s;
  return `${s.affinity}:${p.config.tp}x${p.config.pp}*${s.unitPrefill}/${d.config.tp}x${d.config.pp}*${s.unitDecode}`;
}

/**
 * High-affinity units next to `s`: one instance more or fewer on either side, or one side's configuration
 * with TP or PP halved or doubled at about the same GPUs. Only units within the budget whose configurations
 * meet the phase's SLO alone (goodput > 0) are returned.
 */
function neighbourUnits(
  s: DisaggShape,
  configs: { prefill: readonly Config[]; serving: readonly Config[] },
  budget: number,
  prefillGoodput: (c: Config) => number,
  decodeGoodput: (c: Config) => number,
  kvLinkGBps: (decode: Config) => number,
): DisaggShape[] {
  const out: DisaggShape[] = [];
  const phase = (c: Config, goodput: (c: Config) => number): Phase | undefined => {
    const g = goodput(c);
    return g > 0 ? { config: c, goodput: g, perGpu: g / c.gpus } : undefined;
  };
  const push = (p: Phase | undefined, a: number, d: Phase | undefined, b: number): void => {
    if (!p || !d || a < 1 || b < 1 || a > MAX_UNIT_INSTANCES || b > MAX_UNIT_INSTANCES) return;
    if (a * p.config.gpus + b * d.config.gpus > budget) return;
    out.push({ prefill: p, decode: d, affinity: "high", unitPrefill: a, unitDecode: b, estimatePerGpu: 0, kvLinkGBps: kvLinkGBps(d.config) });
  };
  const a = s.unitPrefill;
  const b = s.unitDecode;
  push(s.prefill, a + 1, s.decode, b);
  push(s.prefill, a - 1, s.decode, b);
  push(s.prefill, a, s.decode, b + 1);
  push(s.prefill, a, s.decode, b - 1);
  const adjacent = (c: Config, pool: readonly Config[]): Config[] =>
    pool.filter((x) => (x.tp === c.tp && (x.pp === 2 * c.pp || 2 * x.pp === c.pp)) || (x.pp === c.pp && (x.tp === 2 * c.tp || 2 * x.tp === c.tp)));
  for (const c of adjacent(s.prefill.config, configs.prefill)) {
    push(phase(c, prefillGoodput), Math.max(1, Math.round((a * s.prefill.config.gpus) / c.gpus)), s.decode, b);
  }
  for (const c of adjacent(s.decode.config, configs.serving)) {
    push(s.prefill, a, phase(c, decodeGoodput), Math.max(1, Math.round((b * s.decode.config.gpus) / c.gpus)));
  }
  return out;
}

function disaggRequests(ctx: Context, s: DisaggShape, nPrefill: number, nDecode: number): number {
  return requestsFor(ctx, nPrefill + nDecode);
}

function enumerateConfigs(ctx: Context, maxInstanceGpus: number): { prefill: Config[]; serving: Config[] } {
  const prefill: Config[] = [];
  const serving: Config[] = [];
  const { shape } = ctx.model;
  for (const tp of TP_CHOICES) {
    if (tp > ctx.maxNodeGpus || shape.heads % tp !== 0) continue;
    for (const pp of PP_CHOICES) {
      if (pp > shape.layers || tp * pp > maxInstanceGpus) continue;
      const { kvCapacityTokens } = instanceMemory(ctx.model, ctx.coeffs, { tp, pp });
      const latency = instanceLatencyModel(ctx.model, ctx.coeffs, { tp, pp }, { sameNode: tp * pp <= ctx.maxNodeGpus, nicGBpsPerGpu: ctx.nicGBpsPerGpu });
      const config: Config = { tp, pp, gpus: tp * pp, latency, kvCapacityTokens };
      if (kvCapacityTokens >= Math.max(ctx.lmTokens, ctx.sample.maxPromptTokens)) prefill.push(config);
      if (kvCapacityTokens / pp >= ctx.sample.maxSequenceTokens) serving.push(config);
    }
  }
  return { prefill, serving };
}

/** Highest bound first; ties to fewer GPUs, then lower TP, for determinism. */
function sortByBound(configs: readonly Config[], bound: (c: Config) => number): Config[] {
  const scored = configs.map((c) => ({ c, score: bound(c) }));
  scored.sort((x, y) => y.score - x.score || x.c.gpus - y.c.gpus || x.c.tp - y.c.tp);
  return scored.map((x) => x.c);
}

function memo<K, V>(fn: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    if (!cache.has(key)) cache.set(key, fn(key));
    return cache.get(key) as V;
  };
}

function makeContext(input: ServingPlanInput, model: DerivedModel, coeffs: LatencyCoefficients, nodes: readonly ClusterNode[]): Context {
  const seed = input.options?.seed ?? 1;
  const perInstance = input.options?.requestsPerInstance ?? 200;
  const maxNodeGpus = nodes.reduce((max, n) => Math.max(max, n.gpuCount), 0);
  const nicGBpsPerGpu = nodes.reduce((min, n) => Math.min(min, (n.nicCount * n.nicBandwidthGbps) / 8 / n.gpuCount), Infinity);
  const sample = sampleWorkload(input.workload.lengths, { count: perInstance, seed, maxContextTokens: model.maxContextTokens, arrivals: input.workload.arrivals });
  return {
    input, model, coeffs, seed, perInstance, sample, maxNodeGpus, nicGBpsPerGpu,
    slo: { ttftMs: input.slo.ttftMs, tpotMs: input.slo.tpotMs },
    target: input.slo.attainmentPercent / 100,
    lmTokens: saturatingPrefillTokens(model, coeffs),
    samples: new Map([[perInstance, sample]]),
    budgetGpus: Math.max(1, Math.min(nodes.reduce((sum, n) => sum + n.gpusFree, 0), input.maxGpus ?? Infinity)),
  };
}

function planOnGpuModel(input: ServingPlanInput, model: DerivedModel, coeffs: LatencyCoefficients, nodes: readonly ClusterNode[]): ServingPlanResult {
  const gpuModel = coeffs.gpuModel;
  const ctx = makeContext(input, model, coeffs, nodes);
  const { maxNodeGpus } = ctx;
  const freeNodes: FreeNode[] = nodes.filter((n) => n.gpusFree > 0).map((n) => ({ nodeName: n.nodeName, gpusFree: n.gpusFree }));
  const freeGpus = freeNodes.reduce((sum, n) => sum + n.gpusFree, 0);
  const budget = Math.min(freeGpus, input.maxGpus ?? Infinity);
  const maxInstanceGpus = input.options?.maxInstanceGpus ?? 64;
  const fitting = enumerateConfigs(ctx, maxInstanceGpus);
  const weightsGB = (model.weightBytes / 1e9).toFixed(0);
  if (fitting.serving.length === 0 || fitting.prefill.length === 0) {
    return fail(
      PlanFailureReason.modelDoesNotFit,
      `${model.shape.name} (${weightsGB} GB of weights, KV ${(model.kvBytesPerToken / 1e6).toFixed(2)} MB/token, sequences up to ` +
        `${ctx.sample.maxSequenceTokens} tokens) does not fit in any TP≤${maxNodeGpus}×PP split of ≤${maxInstanceGpus} ${gpuModel} GPUs`,
    );
  }
  // Only instances the free GPUs can hold at least once are worth simulating.
  const maxFreeNode = freeNodes.reduce((max, n) => Math.max(max, n.gpusFree), 0);
  const placeable = (c: Config): boolean => c.gpus <= budget && stageBlock(c, maxFreeNode) <= maxFreeNode;
  const configs = { prefill: fitting.prefill.filter(placeable), serving: fitting.serving.filter(placeable) };
  if (configs.serving.length === 0 || configs.prefill.length === 0) {
    const smallest = [...fitting.serving].sort((x, y) => x.gpus - y.gpus)[0] as Config;
    return capacityFailure(input, gpuModel, smallest.gpus, stageBlock(smallest, maxNodeGpus), freeNodes, budget);
  }
  const notes: string[] = [];

  // Colocated baseline: every config × {vLLM, Sarathi}, best goodput per GPU first. Goodput never exceeds the
  // capacity bound, so configs whose bound per GPU is below the best found so far are skipped (exact pruning).
  // Each policy keeps its own best (the benchmark reports vLLM alone too); a config is skipped only when its
  // bound is below both bests.
  type ColocatedChoice = { config: Config; policy: ColocatedPolicy; goodput: number; perGpu: number };
  const byPolicy: Record<ColocatedPolicy, ColocatedChoice | undefined> = { chunked: undefined, vllm: undefined };
  for (const c of sortByBound(configs.serving, (x) => colocatedCapacity(ctx, x) / x.gpus)) {
    const bound = colocatedCapacity(ctx, c) / c.gpus;
    if (bound <= Math.min(byPolicy.chunked?.perGpu ?? 0, byPolicy.vllm?.perGpu ?? 0)) break;
    for (const policy of ["chunked", "vllm"] as const) {
      const best = byPolicy[policy];
      if (best && bound <= best.perGpu) continue;
      const goodput = searchColocated(ctx, c, policy);
      const perGpu = goodput / c.gpus;
      if (goodput > 0 && (!best || perGpu > best.perGpu)) byPolicy[policy] = { config: c, policy, goodput, perGpu };
    }
  }
  let colocated: ColocatedChoice | undefined = byPolicy.chunked;
  if (byPolicy.vllm && (!colocated || byPolicy.vllm.perGpu > colocated.perGpu)) colocated = byPolicy.vllm;

  // Disaggregated: phase searches (Algorithm 1), low-affinity units (Algorithm 2), then end-to-end measurement.
  let disagg: { shape: DisaggShape; perGpu: number } | undefined;
  const measured: { shape: DisaggShape; perGpu: number }[] = [];
  if (input.mode !== "colocated") {
    const prefillGoodput = memo((c: Config) => searchPrefill(ctx, c));
    const decodeGoodputNic = memo((c: Config) => searchDecode(ctx, c, nicKvGBps(ctx, c.gpus)));
    const decodeGoodputNvlink = memo((c: Config) => searchDecode(ctx, c, c.tp * c.pp * coeffs.p2pNvlinkGBps));
    const prefillCap = memo((c: Config) => prefillCapacity(ctx, c));
    const decodeCap = memo((c: Config) => decodeCapacity(ctx, c));
    // Algorithm 1 ranks each phase's configurations by goodput per GPU measured on one instance alone. That
    // ranking misses two things: a pooled group of small instances absorbs bursts better than one instance
    // (so the runner-up can win once replicated), and the two winners together may not fit the GPUs there
    // are. So the top PHASE_FINALISTS of each phase are kept, every pair that fits the budget is balanced
    // into a unit, and the best HIGH_AFFINITY_MEASURED units by estimate are measured end to end below.
    const topPhases = (cs: readonly Config[], cap: (c: Config) => number, goodput: (c: Config) => number, keep: number): Phase[] => {
      const top: Phase[] = [];
      for (const c of sortByBound(cs, (x) => cap(x) / x.gpus)) {
        if (top.length >= keep && cap(c) / c.gpus <= (top[keep - 1] as Phase).perGpu) break;
        const g = goodput(c);
        if (g <= 0) continue;
        top.push({ config: c, goodput: g, perGpu: g / c.gpus });
        top.sort((x, y) => y.perGpu - x.perGpu || x.config.gpus - y.config.gpus);
        top.length = Math.min(top.length, keep);
      }
      return top;
    };
    const shapes: DisaggShape[] = [];
    const highPairs = (ps: readonly Phase[], ds: readonly Phase[]): DisaggShape[] => {
      const out: DisaggShape[] = [];
      for (const p of ps) {
        for (const d of ds) {
          if (p.config.gpus + d.config.gpus > budget) continue;
          const unit = balancedUnit(p, d, budget);
          out.push({ prefill: p, decode: d, affinity: "high", unitPrefill: unit.a, unitDecode: unit.b, estimatePerGpu: unit.perGpu, kvLinkGBps: nicKvGBps(ctx, d.config.gpus) });
        }
      }
      return out.sort((x, y) => y.estimatePerGpu - x.estimatePerGpu);
    };
    // Finalists are drawn from the configurations that can share a unit within the budget with at least the
    // smallest configuration of the other phase.
    const minGpus = (cs: readonly Config[]) => cs.reduce((m, c) => Math.min(m, c.gpus), Infinity);
    const pairable = (cs: readonly Config[], other: readonly Config[]) => cs.filter((c) => c.gpus + minGpus(other) <= budget);
    const prefillPool = pairable(configs.prefill, configs.serving);
    const decodePool = pairable(configs.serving, configs.prefill);
    let high = highPairs(topPhases(prefillPool, prefillCap, prefillGoodput, PHASE_FINALISTS), topPhases(decodePool, decodeCap, decodeGoodputNic, PHASE_FINALISTS));
    // When fewer finalist pairs fit than are to be measured, every fitting pair is a candidate (phase searches
    // are memoised, so this costs only the configurations not searched yet).
    if (high.length < HIGH_AFFINITY_MEASURED) high = highPairs(topPhases(prefillPool, prefillCap, prefillGoodput, Infinity), topPhases(decodePool, decodeCap, decodeGoodputNic, Infinity));
    for (const sh of high.slice(0, HIGH_AFFINITY_MEASURED)) shapes.push(sh);
    const firstHigh = high[0];
    if (firstHigh) {
      const d = firstHigh.decode;
      const kvStreamGBps = (d.goodput * ctx.sample.meanPromptTokens * model.kvBytesPerToken) / 1e9;
      notes.push(`KV stream into one decode instance at its goodput: ${kvStreamGBps.toFixed(2)} GB/s over ${nicKvGBps(ctx, d.config.gpus).toFixed(1)} GB/s of NIC`);
    }
    // Low affinity: same PP on both sides; a unit's per-stage segments (a·TPp + b·TPd GPUs) share a node.
    interface LowCandidate { pc: Config; dc: Config; a: number; b: number; gpus: number; bound: number }
    const low: LowCandidate[] = [];
    for (const pc of configs.prefill) {
      for (const dc of configs.serving) {
        if (dc.pp !== pc.pp) continue;
        for (let a = 1; a * pc.tp < maxFreeNode; a++) {
          for (let b = 1; a * pc.tp + b * dc.tp <= maxFreeNode; b++) {
            const gpus = pc.pp * (a * pc.tp + b * dc.tp);
            if (gpus > budget) continue;
            low.push({ pc, dc, a, b, gpus, bound: Math.min(a * prefillCap(pc), b * decodeCap(dc)) / gpus });
          }
        }
      }
    }
    low.sort((x, y) => y.bound - x.bound || x.gpus - y.gpus);
    let bestLow: DisaggShape | undefined;
    for (const cand of low) {
      if (bestLow && cand.bound <= bestLow.estimatePerGpu) break;
      const gp = prefillGoodput(cand.pc);
      const gd = gp > 0 ? decodeGoodputNvlink(cand.dc) : 0;
      const est = Math.min(cand.a * gp, cand.b * gd) / cand.gpus;
      if (est > 0 && (!bestLow || est > bestLow.estimatePerGpu)) {
        bestLow = {
          prefill: { config: cand.pc, goodput: gp, perGpu: gp / cand.pc.gpus },
          decode: { config: cand.dc, goodput: gd, perGpu: gd / cand.dc.gpus },
          affinity: "low", unitPrefill: cand.a, unitDecode: cand.b, estimatePerGpu: est,
          kvLinkGBps: Math.min(cand.pc.tp, cand.dc.tp) * cand.pc.pp * coeffs.p2pNvlinkGBps,
        };
      }
    }
    if (bestLow) shapes.push(bestLow);
    // Measure both affinities end to end: the KV transfer and the interplay of the phases only show in the
    // whole simulation, and decide between them.
    const seen = new Set<string>();
    const measure = (shape: DisaggShape): number => {
      seen.add(shapeKey(shape));
      const perGpu = measureDisagg(ctx, shape);
      if (perGpu > 0) measured.push({ shape, perGpu });
      if (perGpu > 0 && (!disagg || perGpu > disagg.perGpu)) disagg = { shape, perGpu };
      return perGpu;
    };
    for (const shape of shapes) measure(shape);
    // Local search on the measured objective from the best high-affinity unit: the phase-alone estimates rank
    // units only roughly (each phase meets its SLO alone; together the misses add and the KV stream and
    // burst shapes interact), so neighbouring units (one instance more or fewer on a side, or a side's TP or
    // PP halved or doubled at about the same GPUs) are measured end to end and the search moves to the best
    // while it improves, within CLIMB_MEASUREMENTS measurements.
    let current = measured.filter((m) => m.shape.affinity === "high").sort((x, y) => y.perGpu - x.perGpu)[0];
    let spent = 0;
    while (current && spent < CLIMB_MEASUREMENTS) {
      let next: { shape: DisaggShape; perGpu: number } | undefined;
      for (const shape of neighbourUnits(current.shape, configs, budget, prefillGoodput, decodeGoodputNic, (c) => nicKvGBps(ctx, c.gpus))) {
        if (seen.has(shapeKey(shape)) || spent >= CLIMB_MEASUREMENTS) continue;
        spent++;
        const perGpu = measure(shape);
        if (perGpu > (next?.perGpu ?? current.perGpu) * 1.0001) next = { shape, perGpu };
      }
      if (!next) break;
      current = next;
    }
  }

  const rate = input.workload.arrivalRatePerSec;
  const colocatedPerGpu = colocated?.perGpu ?? 0;
  const trickle = `meets TTFT ≤ ${ctx.slo.ttftMs} ms and TPOT ≤ ${ctx.slo.tpotMs} ms for ${input.slo.attainmentPercent}% of requests even at a trickle of load`;
  if (input.mode === "disaggregated" && measured.length === 0) {
    return fail(PlanFailureReason.modelDoesNotFit, `no disaggregated ${model.shape.name} configuration on ${gpuModel} ${trickle}`);
  }
  if (measured.length === 0 && !colocated) {
    return fail(PlanFailureReason.modelDoesNotFit, `no ${model.shape.name} configuration on ${gpuModel} ${trickle}`);
  }

  const colocatedPlanOf = (choice: ColocatedChoice | undefined, replicas: number): ColocatedPlan | null =>
    choice
      ? {
          tp: choice.config.tp, pp: choice.config.pp, replicas, gpusPerReplica: choice.config.gpus,
          goodputPerInstance: choice.goodput, goodputPerGpu: choice.perGpu, policy: choice.policy,
          batchTokens: choice.policy === "chunked" ? sarathiChunkTokens(ctx, choice.config) : ctx.lmTokens,
        }
      : null;
  const colocatedPlan = (replicas: number): ColocatedPlan | null => colocatedPlanOf(colocated, replicas);
  const pool = (ph: Phase, replicas: number): PoolPlan => ({ tp: ph.config.tp, pp: ph.config.pp, replicas, gpusPerReplica: ph.config.gpus, goodputPerInstance: ph.goodput });
  const summary = (m: { shape: DisaggShape; perGpu: number } | undefined, nP: number, nD: number): DisaggregatedSummary | null =>
    m
      ? {
          prefill: pool(m.shape.prefill, nP), decode: pool(m.shape.decode, nD), affinity: m.shape.affinity, goodputPerGpu: m.perGpu,
          unit: { prefill: m.shape.unitPrefill, decode: m.shape.unitDecode, gpus: gpusOf(m.shape, m.shape.unitPrefill, m.shape.unitDecode) },
        }
      : null;
  const alternatives = (): PlanAlternatives => {
    const atRate = (choice: ColocatedChoice | undefined) => colocatedPlanOf(choice, choice ? Math.max(1, Math.ceil(rate / choice.goodput - 1e-9)) : 0);
    if (!disagg) return { disaggregated: null, vllm: atRate(byPolicy.vllm), chunked: atRate(byPolicy.chunked) };
    const [nP, nD] = disaggReplicas(disagg);
    return { disaggregated: summary(disagg, nP, nD), vllm: atRate(byPolicy.vllm), chunked: atRate(byPolicy.chunked) };
  };
  const comparison = `disaggregated ${disagg ? disagg.perGpu.toFixed(3) : "n/a"} vs colocated ${colocated ? `${colocatedPerGpu.toFixed(3)} (${colocated.policy}, TP${colocated.config.tp}×PP${colocated.config.pp})` : "n/a"} req/s/GPU`;

  /** Initial replica counts for a disaggregated shape: the measured unit scaled to the rate, each phase covered. */
  const disaggReplicas = (m: { shape: DisaggShape; perGpu: number }): [number, number] => {
    const sh = m.shape;
    const unitRate = m.perGpu * gpusOf(sh, sh.unitPrefill, sh.unitDecode);
    if (sh.affinity === "low") {
      const units = Math.max(1, Math.ceil(rate / unitRate - 1e-9));
      return [units * sh.unitPrefill, units * sh.unitDecode];
    }
    const k = rate / unitRate;
    return [
      Math.max(1, Math.ceil(k * sh.unitPrefill - 1e-9), Math.ceil(rate / sh.prefill.goodput - 1e-9)),
      Math.max(1, Math.ceil(k * sh.unitDecode - 1e-9), Math.ceil(rate / sh.decode.goodput - 1e-9)),
    ];
  };

  const finalizeDisagg = (m: { shape: DisaggShape; perGpu: number }): ServingPlanResult => {
    const sh = m.shape;
    let [nP, nD] = disaggReplicas(m);
    let achieved = 0;
    // Verify the whole plan at the target rate; add replicas to the more loaded phase (or a unit) until it holds.
    for (let attempt = 0; attempt < 6; attempt++) {
      if (gpusOf(sh, nP, nD) > budget) break;
      const sample = sampleFor(ctx, disaggRequests(ctx, sh, nP, nD));
      achieved = attainment(simulateDisaggregated(sample, rate, disaggConfig(ctx, sh, nP, nD)), ctx.slo);
      if (achieved >= ctx.target) break;
      if (sh.affinity === "low") {
        nP += sh.unitPrefill;
        nD += sh.unitDecode;
      } else if (nD * sh.decode.goodput >= nP * sh.prefill.goodput) nP++;
      else nD++;
    }
    const totalGpus = gpusOf(sh, nP, nD);
    const block = sh.affinity === "low"
      ? sh.unitPrefill * sh.prefill.config.tp + sh.unitDecode * sh.decode.config.tp
      : Math.max(stageBlock(sh.prefill.config, maxNodeGpus), stageBlock(sh.decode.config, maxNodeGpus));
    const packed: PackResult =
      totalGpus > budget
        ? { ok: false, neededGpus: totalGpus, blockGpus: block }
        : sh.affinity === "low"
          ? packLowAffinity(freeNodes, { units: nP / sh.unitPrefill, pp: sh.prefill.config.pp, prefill: { tp: sh.prefill.config.tp, perUnit: sh.unitPrefill }, decode: { tp: sh.decode.config.tp, perUnit: sh.unitDecode } })
          : packPools(freeNodes, [
              { role: "prefill", tp: sh.prefill.config.tp, pp: sh.prefill.config.pp, replicas: nP },
              { role: "decode", tp: sh.decode.config.tp, pp: sh.decode.config.pp, replicas: nD },
            ]);
    if (!packed.ok) return capacityFailure(input, gpuModel, totalGpus, block, freeNodes, budget);
    return {
      ok: true, mode: "disaggregated", gpuModel,
      prefill: pool(sh.prefill, nP), decode: pool(sh.decode, nD), affinity: sh.affinity,
      goodputPerGpu: m.perGpu, predictedAttainmentPercent: achieved * 100, totalGpus,
      colocated: colocatedPlan(colocated ? Math.max(1, Math.ceil(rate / colocated.goodput)) : 0),
      disaggregated: summary(m, nP, nD), alternatives: alternatives(),
      placement: packed.instances, gpusByNode: packed.gpusByNode,
      explanation: [
        `${model.shape.name} on ${gpuModel}: disaggregated, ${sh.affinity} node-affinity; prefill TP${sh.prefill.config.tp}×PP${sh.prefill.config.pp} ×${nP} ` +
          `(${sh.prefill.goodput.toFixed(2)} req/s each), decode TP${sh.decode.config.tp}×PP${sh.decode.config.pp} ×${nD} (${sh.decode.goodput.toFixed(2)} req/s each)`,
        `goodput per GPU: ${comparison}`,
        `predicted attainment at ${rate} req/s: ${(achieved * 100).toFixed(1)}% (target ${input.slo.attainmentPercent}%)`,
        ...notes,
      ].join("; "),
    };
  };

  const finalizeColocated = (c: NonNullable<typeof colocated>): ServingPlanResult => {
    let n = Math.max(1, Math.ceil(rate / c.goodput - 1e-9));
    let achieved = 0;
    for (let attempt = 0; attempt < 6; attempt++) {
      if (n * c.config.gpus > budget) break;
      achieved = attainment(simulateColocated(sampleFor(ctx, requestsFor(ctx, n)), rate, colocatedSimConfig(ctx, c.config, n, c.policy)), ctx.slo);
      if (achieved >= ctx.target) break;
      n++;
    }
    const totalGpus = n * c.config.gpus;
    const block = stageBlock(c.config, maxNodeGpus);
    const packed: PackResult =
      totalGpus > budget ? { ok: false, neededGpus: totalGpus, blockGpus: block } : packPools(freeNodes, [{ role: "colocated", tp: c.config.tp, pp: c.config.pp, replicas: n }]);
    if (!packed.ok) return capacityFailure(input, gpuModel, totalGpus, block, freeNodes, budget);
    return {
      ok: true, mode: "colocated", gpuModel, prefill: null, decode: null, affinity: null,
      goodputPerGpu: c.perGpu, predictedAttainmentPercent: achieved * 100, totalGpus,
      colocated: colocatedPlan(n), disaggregated: summary(disagg, 0, 0), alternatives: alternatives(),
      placement: packed.instances, gpusByNode: packed.gpusByNode,
      explanation: [
        `${model.shape.name} on ${gpuModel}: colocated (${c.policy === "chunked" ? "Sarathi chunked prefill" : "vLLM prefill-first"}) TP${c.config.tp}×PP${c.config.pp} ×${n} (${c.goodput.toFixed(2)} req/s each)`,
        `goodput per GPU: ${comparison}`,
        `predicted attainment at ${rate} req/s: ${(achieved * 100).toFixed(1)}% (target ${input.slo.attainmentPercent}%)`,
        ...notes,
      ].join("; "),
    };
  };

  // Candidates in order of fewest GPUs for the target rate, then best goodput per GPU (what `auto` compares);
  // the first that verifies and packs wins, so a plan that does not fit falls back to the next.
  const candidates: { gpus: number; perGpu: number; finalize: () => ServingPlanResult }[] = [];
  for (const m of measured) {
    const [nP, nD] = disaggReplicas(m);
    candidates.push({ gpus: gpusOf(m.shape, nP, nD), perGpu: m.perGpu, finalize: () => finalizeDisagg(m) });
  }
  if (colocated && input.mode !== "disaggregated") {
    const c = colocated;
    candidates.push({ gpus: Math.ceil(rate / c.goodput - 1e-9) * c.config.gpus, perGpu: c.perGpu, finalize: () => finalizeColocated(c) });
  }
  candidates.sort((x, y) => x.gpus - y.gpus || y.perGpu - x.perGpu);
  let firstFailure: ServingPlanResult | undefined;
  for (const cand of candidates) {
    const result = cand.finalize();
    if (result.ok) return result;
    firstFailure ??= result;
  }
  return firstFailure as ServingPlanResult;
}

/** GPUs that must sit on one node for one instance: all of it when it fits a node, else one stage. */
function stageBlock(c: Parallelism, maxNodeGpus: number): number {
  return c.tp * c.pp <= maxNodeGpus ? c.tp * c.pp : c.tp;
}

function capacityFailure(input: ServingPlanInput, gpuModel: string, needed: number, block: number, freeNodes: readonly FreeNode[], budget: number): ServingPlanError {
  const free = freeNodes.reduce((sum, n) => sum + n.gpusFree, 0);
  const usable = freeNodes.filter((n) => n.gpusFree >= block).reduce((sum, n) => sum + n.gpusFree, 0);
  const cap = input.maxGpus !== undefined && input.maxGpus < free ? `, maxGpus ${input.maxGpus}` : "";
  return fail(
    PlanFailureReason.insufficientCapacity,
    `needs ${needed} ${gpuModel} GPUs in nodes of ≥${block} free for ${input.workload.arrivalRatePerSec} req/s, ` +
      `cluster has ${free} free (${usable} in nodes with ≥${block} free${cap}); missing ${Math.max(0, needed - Math.min(usable, budget))}`,
  );
}

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

/**
 * Goodput per GPU (req/s/GPU) of a given disaggregated plan (high node-affinity unless the shape says low),
 * measured with the same simulator, workload sample and settings planServing uses; 0 when it cannot meet the
 * SLOs or does not fit. The benchmark's exhaustive search calls this for every shape within a GPU budget.
 */
export function measureDisaggregatedGoodputPerGpu(input: ServingPlanInput, gpuModel: string, shape: DisaggregatedPlanShape): number {
  const model = deriveModel(input.model);
  const coeffs = latencyCoefficients(gpuModel, input.coefficientOverrides);
  const nodes = input.nodes.filter((n) => n.gpuModel === gpuModel);
  const ctx = makeContext(input, model, coeffs, nodes);
  const config = (c: { tp: number; pp: number }): Config => ({
    tp: c.tp, pp: c.pp, gpus: c.tp * c.pp, kvCapacityTokens: instanceMemory(model, coeffs, c).kvCapacityTokens,
    latency: instanceLatencyModel(model, coeffs, c, { sameNode: c.tp * c.pp <= ctx.maxNodeGpus, nicGBpsPerGpu: ctx.nicGBpsPerGpu }),
  });
  const pc = config(shape.prefill);
  const dc = config(shape.decode);
  if (pc.kvCapacityTokens < Math.max(ctx.lmTokens, ctx.sample.maxPromptTokens) || dc.kvCapacityTokens / dc.pp < ctx.sample.maxSequenceTokens) return 0;
  const phase = (c: Config): Phase => ({ config: c, goodput: 1, perGpu: 1 / c.gpus });
  const low = shape.affinity === "low";
  if (low && (pc.pp !== dc.pp || shape.prefill.replicas * pc.tp + shape.decode.replicas * dc.tp > ctx.maxNodeGpus)) return 0;
  return measureDisagg(ctx, {
    prefill: phase(pc), decode: phase(dc), affinity: low ? "low" : "high", unitPrefill: shape.prefill.replicas, unitDecode: shape.decode.replicas,
    estimatePerGpu: 0, kvLinkGBps: low ? Math.min(pc.tp, dc.tp) * pc.pp * coeffs.p2pNvlinkGBps : nicKvGBps(ctx, dc.gpus),
  });
}
