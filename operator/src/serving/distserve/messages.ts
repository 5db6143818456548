/**
 * What the planner tells the user: failures with what is missing, and the explanation of a plan (why this plan,
 * what it was compared with, what it is predicted to attain). Pure string building.
 */
import type { DerivedModel } from "../../../../common/src/models/model-shapes.js";
import type { ColocatedChoice } from "./colocated.js";
import type { Context, DisaggShape, Measured } from "./context.js";
import type { FreeNode } from "./packing.js";
import { PlanFailureReason, type ServingPlanError, type ServingPlanInput } from "./types.js";

export const fail = (reason: PlanFailureReason, message: string): ServingPlanError => ({ ok: false, reason, message });

/** Needs `needed` GPUs in nodes with `block` free; says how many the cluster (or maxGpus) lacks. */
export function capacityFailure(
  input: ServingPlanInput,
  gpuModel: string,
  needed: number,
  block: number,
  freeNodes: readonly FreeNode[],
  budget: number,
): ServingPlanError {
  const free = freeNodes.reduce((sum, n) => sum + n.gpusFree, 0);
  const usable = freeNodes.filter((n) => n.gpusFree >= block).reduce((sum, n) => sum + n.gpusFree, 0);
  const cap = input.maxGpus !== undefined && input.maxGpus < free ? `, maxGpus ${input.maxGpus}` : "";
  return fail(
    PlanFailureReason.insufficientCapacity,
    `needs ${needed} ${gpuModel} GPUs in nodes of ≥${block} free for ${input.workload.arrivalRatePerSec} req/s, ` +
      `cluster has ${free} free (${usable} in nodes with ≥${block} free${cap}); missing ${Math.max(0, needed - Math.min(usable, budget))}`,
  );
}

/** No TP×PP split of the model holds its weights and the workload's sequences. */
export function modelDoesNotFit(ctx: Context, maxInstanceGpus: number): ServingPlanError {
  const { model } = ctx;
  return fail(
    PlanFailureReason.modelDoesNotFit,
    `${model.shape.name} (${(model.weightBytes / 1e9).toFixed(0)} GB of weights, KV ${(model.kvBytesPerToken / 1e6).toFixed(2)} MB/token, sequences up to ` +
      `${ctx.sample.maxSequenceTokens} tokens) does not fit in any TP≤${ctx.maxNodeGpus}×PP split of ≤${maxInstanceGpus} ${ctx.coeffs.gpuModel} GPUs`,
  );
}

/** Configurations fit, but none (of the kind asked for) meets the SLOs even with almost no load. */
export function sloOutOfReach(ctx: Context, kind: "disaggregated" | "any"): ServingPlanError {
  const trickle = `meets TTFT ≤ ${ctx.slo.ttftMs} ms and TPOT ≤ ${ctx.slo.tpotMs} ms for ${ctx.input.slo.attainmentPercent}% of requests even at a trickle of load`;
  const what = kind === "disaggregated" ? `disaggregated ${ctx.model.shape.name}` : ctx.model.shape.name;
  return fail(PlanFailureReason.modelDoesNotFit, `no ${what} configuration on ${ctx.coeffs.gpuModel} ${trickle}`);
}

/** Best goodput per GPU of each kind, as the explanation states it. */
export function comparison(disagg: Measured | undefined, colocated: ColocatedChoice | undefined): string {
  const c = colocated
    ? `${colocated.perGpu.toFixed(3)} (${colocated.policy}, TP${colocated.config.tp}×PP${colocated.config.pp})`
    : "n/a";
  return `disaggregated ${disagg ? disagg.perGpu.toFixed(3) : "n/a"} vs colocated ${c} req/s/GPU`;
}

function attainmentLine(input: ServingPlanInput, achieved: number): string {
  return `predicted attainment at ${input.workload.arrivalRatePerSec} req/s: ${(achieved * 100).toFixed(1)}% (target ${input.slo.attainmentPercent}%)`;
}

export function disaggregatedExplanation(
  model: DerivedModel,
  input: ServingPlanInput,
  gpuModel: string,
  sh: DisaggShape,
  nP: number,
  nD: number,
  compared: string,
  achieved: number,
  notes: readonly string[],
): string {
  return [
    `${model.shape.name} on ${gpuModel}: disaggregated, ${sh.affinity} node-affinity; prefill TP${sh.prefill.config.tp}×PP${sh.prefill.config.pp} ×${nP} ` +
      `(${sh.prefill.goodput.toFixed(2)} req/s each), decode TP${sh.decode.config.tp}×PP${sh.decode.config.pp} ×${nD} (${sh.decode.goodput.toFixed(2)} req/s each)`,
    `goodput per GPU: ${compared}`,
    attainmentLine(input, achieved),
    ...notes,
  ].join("; ");
}

export function colocatedExplanation(
  model: DerivedModel,
  input: ServingPlanInput,
  gpuModel: string,
  c: ColocatedChoice,
  n: number,
  compared: string,
  achieved: number,
  notes: readonly string[],
): string {
  return [
    `${model.shape.name} on ${gpuModel}: colocated (${c.policy === "chunked" ? "Sarathi chunked prefill" : "vLLM prefill-first"}) TP${c.config.tp}×PP${c.config.pp} ×${n} (${c.goodput.toFixed(2)} req/s each)`,
    `goodput per GPU: ${compared}`,
    attainmentLine(input, achieved),
    ...notes,
  ].join("; ");
}
