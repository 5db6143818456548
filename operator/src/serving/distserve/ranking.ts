/**
 * Ranking and sizing: the measured candidates (disaggregated units, the best colocated plan; `mode` limits which)
 * in order of fewest GPUs for the target rate, then best goodput per GPU. The first that verifies and packs wins,
 * so a plan that does not fit falls back to the next. Verifying simulates the whole plan at the target rate and
 * adds replicas to the bottleneck phase (or a unit) until the target attainment holds.
 */
import type { ColocatedBaselines, ColocatedChoice } from "./colocated.js";
import {
  type Context,
  type Measured,
  type Phase,
  type SearchSpace,
  gpusOf,
  requestsFor,
  sampleFor,
  stageBlock,
} from "./context.js";
import { colocatedSimConfig, disaggConfig, disaggRequests, sarathiChunkTokens } from "./measurements.js";
import { capacityFailure, colocatedExplanation, comparison, disaggregatedExplanation } from "./messages.js";
import { type PackResult, packLowAffinity, packPools } from "./packing.js";
import { attainment, simulateColocated, simulateDisaggregated } from "./simulator.js";
import type { ColocatedPlan, DisaggregatedSummary, PlanAlternatives, PoolPlan, ServingPlanResult } from "./types.js";

/** What the searches found on one GPU model. */
export interface SearchResults {
  colocated: ColocatedBaselines;
  /** Disaggregated units measured end to end (goodput > 0), in the order measured. */
  units: readonly Measured[];
  /** The best of `units` by goodput per GPU. */
  bestUnit: Measured | undefined;
  /** Notes for the explanation. */
  notes: readonly string[];
}

/** Attempts to verify a plan at the target rate, each adding replicas where they are short. */
const VERIFY_ATTEMPTS = 6;

export function rankAndFinalize(ctx: Context, space: SearchSpace, found: SearchResults): ServingPlanResult {
  const rate = ctx.input.workload.arrivalRatePerSec;
  const colocated = found.colocated.best;
  // Candidates in order of fewest GPUs for the target rate, then best goodput per GPU (what `auto` compares).
  const candidates: { gpus: number; perGpu: number; finalize: () => ServingPlanResult }[] = [];
  for (const m of found.units) {
    const [nP, nD] = disaggReplicas(rate, m);
    candidates.push({
      gpus: gpusOf(m.shape, nP, nD),
      perGpu: m.perGpu,
      finalize: () => finalizeDisaggregated(ctx, space, found, m),
    });
  }
  if (colocated && ctx.input.mode !== "disaggregated") {
    candidates.push({
      gpus: Math.ceil(rate / colocated.goodput - 1e-9) * colocated.config.gpus,
      perGpu: colocated.perGpu,
      finalize: () => finalizeColocated(ctx, space, found, colocated),
    });
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

/** Initial replica counts for a disaggregated unit: the measured unit scaled to the rate, each phase covered. */
function disaggReplicas(rate: number, m: Measured): [number, number] {
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
}

function finalizeDisaggregated(ctx: Context, space: SearchSpace, found: SearchResults, m: Measured): ServingPlanResult {
  const { input, model } = ctx;
  const { budget, freeNodes } = space;
  const gpuModel = ctx.coeffs.gpuModel;
  const rate = input.workload.arrivalRatePerSec;
  const sh = m.shape;
  let [nP, nD] = disaggReplicas(rate, m);
  let achieved = 0;
  // Verify the whole plan at the target rate; add replicas to the more loaded phase (or a unit) until it holds.
  for (let attempt = 0; attempt < VERIFY_ATTEMPTS; attempt++) {
    if (gpusOf(sh, nP, nD) > budget) break;
    const sample = sampleFor(ctx, disaggRequests(ctx, sh, nP, nD));
    achieved = attainment(simulateDisaggregated(sample, rate, disaggConfig(ctx, sh, nP, nD), ctx.meter), ctx.slo);
    if (achieved >= ctx.target) break;
    if (sh.affinity === "low") {
      nP += sh.unitPrefill;
      nD += sh.unitDecode;
    } else if (nD * sh.decode.goodput >= nP * sh.prefill.goodput) nP++;
    else nD++;
  }
  const totalGpus = gpusOf(sh, nP, nD);
  const block =
    sh.affinity === "low"
      ? sh.unitPrefill * sh.prefill.config.tp + sh.unitDecode * sh.decode.config.tp
      : Math.max(stageBlock(sh.prefill.config, ctx.maxNodeGpus), stageBlock(sh.decode.config, ctx.maxNodeGpus));
  const packed: PackResult =
    totalGpus > budget
      ? { ok: false, neededGpus: totalGpus, blockGpus: block }
      : sh.affinity === "low"
        ? packLowAffinity(freeNodes, {
            units: nP / sh.unitPrefill,
            pp: sh.prefill.config.pp,
            prefill: { tp: sh.prefill.config.tp, perUnit: sh.unitPrefill },
            decode: { tp: sh.decode.config.tp, perUnit: sh.unitDecode },
          })
        : packPools(freeNodes, [
            { role: "prefill", tp: sh.prefill.config.tp, pp: sh.prefill.config.pp, replicas: nP },
            { role: "decode", tp: sh.decode.config.tp, pp: sh.decode.config.pp, replicas: nD },
          ]);
  if (!packed.ok) return capacityFailure(input, gpuModel, totalGpus, block, freeNodes, budget);
  const colocated = found.colocated.best;
  return {
    ok: true,
    mode: "disaggregated",
    gpuModel,
    prefill: pool(sh.prefill, nP),
    decode: pool(sh.decode, nD),
    affinity: sh.affinity,
    goodputPerGpu: m.perGpu,
    predictedAttainmentPercent: achieved * 100,
    totalGpus,
    colocated: colocatedPlan(ctx, colocated, colocated ? Math.max(1, Math.ceil(rate / colocated.goodput)) : 0),
    disaggregated: summary(m, nP, nD),
    alternatives: alternatives(ctx, found),
    placement: packed.instances,
    gpusByNode: packed.gpusByNode,
    explanation: disaggregatedExplanation(
      model,
      input,
      gpuModel,
      sh,
      nP,
      nD,
      comparison(found.bestUnit, colocated),
      achieved,
      found.notes,
    ),
  };
}

function finalizeColocated(
  ctx: Context,
  space: SearchSpace,
  found: SearchResults,
  c: ColocatedChoice,
): ServingPlanResult {
  const { input, model } = ctx;
  const { budget, freeNodes } = space;
  const gpuModel = ctx.coeffs.gpuModel;
  const rate = input.workload.arrivalRatePerSec;
  let n = Math.max(1, Math.ceil(rate / c.goodput - 1e-9));
  let achieved = 0;
  for (let attempt = 0; attempt < VERIFY_ATTEMPTS; attempt++) {
    if (n * c.config.gpus > budget) break;
    achieved = attainment(
      simulateColocated(
        sampleFor(ctx, requestsFor(ctx, n)),
        rate,
        colocatedSimConfig(ctx, c.config, n, c.policy),
        ctx.meter,
      ),
      ctx.slo,
    );
    if (achieved >= ctx.target) break;
    n++;
  }
  const totalGpus = n * c.config.gpus;
  const block = stageBlock(c.config, ctx.maxNodeGpus);
  const packed: PackResult =
    totalGpus > budget
      ? { ok: false, neededGpus: totalGpus, blockGpus: block }
      : packPools(freeNodes, [{ role: "colocated", tp: c.config.tp, pp: c.config.pp, replicas: n }]);
  if (!packed.ok) return capacityFailure(input, gpuModel, totalGpus, block, freeNodes, budget);
  return {
    ok: true,
    mode: "colocated",
    gpuModel,
    prefill: null,
    decode: null,
    affinity: null,
    goodputPerGpu: c.perGpu,
    predictedAttainmentPercent: achieved * 100,
    totalGpus,
    colocated: colocatedPlan(ctx, c, n),
    disaggregated: summary(found.bestUnit, 0, 0),
    alternatives: alternatives(ctx, found),
    placement: packed.instances,
    gpusByNode: packed.gpusByNode,
    explanation: colocatedExplanation(
      model,
      input,
      gpuModel,
      c,
      n,
      comparison(found.bestUnit, c),
      achieved,
      found.notes,
    ),
  };
}

/** The best plan of each kind by goodput per GPU, sized for the target rate. */
function alternatives(ctx: Context, found: SearchResults): PlanAlternatives {
  const rate = ctx.input.workload.arrivalRatePerSec;
  const atRate = (choice: ColocatedChoice | undefined) =>
    colocatedPlan(ctx, choice, choice ? Math.max(1, Math.ceil(rate / choice.goodput - 1e-9)) : 0);
  const { vllm, chunked } = found.colocated.byPolicy;
  if (!found.bestUnit) return { disaggregated: null, vllm: atRate(vllm), chunked: atRate(chunked) };
  const [nP, nD] = disaggReplicas(rate, found.bestUnit);
  return { disaggregated: summary(found.bestUnit, nP, nD), vllm: atRate(vllm), chunked: atRate(chunked) };
}

function colocatedPlan(ctx: Context, choice: ColocatedChoice | undefined, replicas: number): ColocatedPlan | null {
  if (!choice) return null;
  return {
    tp: choice.config.tp,
    pp: choice.config.pp,
    replicas,
    gpusPerReplica: choice.config.gpus,
    goodputPerInstance: choice.goodput,
    goodputPerGpu: choice.perGpu,
    policy: choice.policy,
    batchTokens: choice.policy === "chunked" ? sarathiChunkTokens(ctx, choice.config) : ctx.lmTokens,
  };
}

function pool(ph: Phase, replicas: number): PoolPlan {
  return {
    tp: ph.config.tp,
    pp: ph.config.pp,
    replicas,
    gpusPerReplica: ph.config.gpus,
    goodputPerInstance: ph.goodput,
  };
}

function summary(m: Measured | undefined, nP: number, nD: number): DisaggregatedSummary | null {
  if (!m) return null;
  return {
    prefill: pool(m.shape.prefill, nP),
    decode: pool(m.shape.decode, nD),
    affinity: m.shape.affinity,
    goodputPerGpu: m.perGpu,
    unit: {
      prefill: m.shape.unitPrefill,
      decode: m.shape.unitDecode,
      gpus: gpusOf(m.shape, m.shape.unitPrefill, m.shape.unitDecode),
    },
  };
}
