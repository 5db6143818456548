/**
 * What every part of the planner shares for one GPU model: the search context (input, model, latency
 * coefficients, SLO, the seeded workload samples), the instance configurations that fit, and the shapes of
 * disaggregated units. Pure.
 */
import {
  type InstanceLatencyModel,
  type LatencyCoefficients,
  type Parallelism,
  instanceLatencyModel,
  instanceMemory,
  saturatingPrefillTokens,
} from "../../../../common/src/models/latency.js";
import type { DerivedModel } from "../../../../common/src/models/model-shapes.js";
import type { FreeNode } from "./packing.js";
import type { Slo, WorkMeter } from "./simulator.js";
import type { ClusterNode, ServingPlanInput } from "./types.js";
import { type WorkloadSample, sampleWorkload } from "./workload.js";

const TP_CHOICES = [1, 2, 4, 8] as const;
const PP_CHOICES = [1, 2, 4, 8] as const;
/** vLLM's default max_num_seqs: sequences one scheduler batches. */
export const MAX_SEQS_PER_LANE = 256;
const MAX_SIM_REQUESTS = 3000;

export interface Config extends Parallelism {
  gpus: number;
  latency: InstanceLatencyModel;
  kvCapacityTokens: number;
}

export interface Phase {
  config: Config;
  /** Per-instance goodput (req/s). */
  goodput: number;
  perGpu: number;
}

export interface Context {
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
  /** Simulation work this planning run may still do (work-budget.ts); shared by every seed's context. */
  meter: WorkMeter;
}

export function sampleFor(ctx: Context, count: number): WorkloadSample {
  const n = Math.min(MAX_SIM_REQUESTS, Math.max(ctx.perInstance, Math.ceil(count)));
  let sample = ctx.samples.get(n);
  if (!sample) {
    sample = sampleWorkload(ctx.input.workload.lengths, {
      count: n,
      seed: ctx.seed,
      maxContextTokens: ctx.model.maxContextTokens,
      arrivals: ctx.input.workload.arrivals,
    });
    ctx.samples.set(n, sample);
  }
  return sample;
}

/**
 * Requests to simulate for `instances` instances. A finite run cannot show overload by itself (a burst the
 * batches can absorb looks fine), which is why every search is capped by the configuration's capacity bound.
 */
export function requestsFor(ctx: Context, instances: number): number {
  return ctx.perInstance * instances;
}

export function nicKvGBps(ctx: Context, gpus: number): number {
  return gpus * ctx.nicGBpsPerGpu * ctx.coeffs.nicEfficiency;
}

/** Sequences one decode/colocated lane can hold at the workload's mean sequence length. */
export function seqsPerLane(ctx: Context, c: Config): number {
  const { meanPromptTokens: p, meanOutputTokens: o } = ctx.sample;
  return Math.max(1, Math.min(MAX_SEQS_PER_LANE, Math.floor(c.kvCapacityTokens / c.pp / (p + o))));
}

export interface DisaggShape {
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

export function gpusOf(s: DisaggShape, nPrefill: number, nDecode: number): number {
  return nPrefill * s.prefill.config.gpus + nDecode * s.decode.config.gpus;
}

export function shapeKey(s: DisaggShape): string {
  const { prefill: p, decode: d } = s;
  return `${s.affinity}:${p.config.tp}x${p.config.pp}*${s.unitPrefill}/${d.config.tp}x${d.config.pp}*${s.unitDecode}`;
}

export function enumerateConfigs(ctx: Context, maxInstanceGpus: number): { prefill: Config[]; serving: Config[] } {
  const prefill: Config[] = [];
  const serving: Config[] = [];
  const { shape } = ctx.model;
  for (const tp of TP_CHOICES) {
    if (tp > ctx.maxNodeGpus || shape.heads % tp !== 0) continue;
    for (const pp of PP_CHOICES) {
      if (pp > shape.layers || tp * pp > maxInstanceGpus) continue;
      const { kvCapacityTokens } = instanceMemory(ctx.model, ctx.coeffs, { tp, pp });
      const latency = instanceLatencyModel(
        ctx.model,
        ctx.coeffs,
        { tp, pp },
        { sameNode: tp * pp <= ctx.maxNodeGpus, nicGBpsPerGpu: ctx.nicGBpsPerGpu },
      );
      const config: Config = { tp, pp, gpus: tp * pp, latency, kvCapacityTokens };
      if (kvCapacityTokens >= Math.max(ctx.lmTokens, ctx.sample.maxPromptTokens)) prefill.push(config);
      if (kvCapacityTokens / pp >= ctx.sample.maxSequenceTokens) serving.push(config);
    }
  }
  return { prefill, serving };
}

/** Highest bound first; ties to fewer GPUs, then lower TP, for determinism. */
export function sortByBound(configs: readonly Config[], bound: (c: Config) => number): Config[] {
  const scored = configs.map((c) => ({ c, score: bound(c) }));
  scored.sort((x, y) => y.score - x.score || x.c.gpus - y.c.gpus || x.c.tp - y.c.tp);
  return scored.map((x) => x.c);
}

export function memo<K, V>(fn: (key: K) => V): (key: K) => V {
  const cache = new Map<K, V>();
  return (key) => {
    if (!cache.has(key)) cache.set(key, fn(key));
    return cache.get(key) as V;
  };
}

export function makeContext(
  input: ServingPlanInput,
  model: DerivedModel,
  coeffs: LatencyCoefficients,
  nodes: readonly ClusterNode[],
  meter: WorkMeter = { spent: 0, limit: Infinity },
): Context {
  const seed = input.options?.seed ?? 1;
  const perInstance = input.options?.requestsPerInstance ?? 200;
  const maxNodeGpus = nodes.reduce((max, n) => Math.max(max, n.gpuCount), 0);
  const nicGBpsPerGpu = nodes.reduce(
    (min, n) => Math.min(min, (n.nicCount * n.nicBandwidthGbps) / 8 / n.gpuCount),
    Infinity,
  );
  const sample = sampleWorkload(input.workload.lengths, {
    count: perInstance,
    seed,
    maxContextTokens: model.maxContextTokens,
    arrivals: input.workload.arrivals,
  });
  return {
    input,
    model,
    coeffs,
    seed,
    perInstance,
    sample,
    maxNodeGpus,
    nicGBpsPerGpu,
    slo: { ttftMs: input.slo.ttftMs, tpotMs: input.slo.tpotMs },
    target: input.slo.attainmentPercent / 100,
    lmTokens: saturatingPrefillTokens(model, coeffs),
    samples: new Map([[perInstance, sample]]),
    meter,
    budgetGpus: Math.max(
      1,
      Math.min(
        nodes.reduce((sum, n) => sum + n.gpusFree, 0),
        input.maxGpus ?? Infinity,
      ),
    ),
  };
}

/** The same context on another seed's workload sample (the close-call re-measurements). */
export function withSeed(ctx: Context, seed: number): Context {
  const { input, model, perInstance } = ctx;
  const sample = sampleWorkload(input.workload.lengths, {
    count: perInstance,
    seed,
    maxContextTokens: model.maxContextTokens,
    arrivals: input.workload.arrivals,
  });
  return { ...ctx, seed, sample, samples: new Map([[perInstance, sample]]) };
}

/** GPUs that must sit on one node for one instance: all of it when it fits a node, else one stage. */
export function stageBlock(c: Parallelism, maxNodeGpus: number): number {
  return c.tp * c.pp <= maxNodeGpus ? c.tp * c.pp : c.tp;
}

/** Where a plan on this GPU model may go: the configurations the free GPUs can hold, within the budget. */
export interface SearchSpace {
  configs: { prefill: readonly Config[]; serving: readonly Config[] };
  /** GPUs the plan may use: free GPUs, capped by maxGpus. */
  budget: number;
  freeNodes: readonly FreeNode[];
  /** Free GPUs of the emptiest node. */
  maxFreeNode: number;
}

/** A disaggregated unit with its end-to-end goodput per GPU. */
export interface Measured {
  shape: DisaggShape;
  perGpu: number;
}
