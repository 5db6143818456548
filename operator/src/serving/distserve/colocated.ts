/**
 * Colocated baselines (vLLM prefill-first, Sarathi-Serve chunked prefill): every configuration × both schedulers,
 * best goodput per GPU first. Goodput never exceeds the capacity bound, so configurations whose bound per GPU is
 * below the best found so far are skipped (exact pruning). Each policy keeps its own best (the benchmark reports
 * vLLM alone too); a configuration is skipped only when its bound is below both bests.
 */
import { type Config, type Context, sortByBound } from "./context.js";
import { colocatedCapacity, searchColocated } from "./measurements.js";
import type { ColocatedPolicy } from "./simulator.js";

export interface ColocatedChoice {
  config: Config;
  policy: ColocatedPolicy;
  /** Per-instance goodput (req/s). */
  goodput: number;
  perGpu: number;
}

export interface ColocatedBaselines {
  byPolicy: Record<ColocatedPolicy, ColocatedChoice | undefined>;
  /** The better of the two by goodput per GPU (chunked on a tie). */
  best: ColocatedChoice | undefined;
}

/**
 * `byPolicy` collects the bests as they are found, so a search the work budget stops midway (work-budget.ts)
 * leaves the best found so far in it.
 */
export function searchColocatedBaselines(
  ctx: Context,
  serving: readonly Config[],
  byPolicy: Record<ColocatedPolicy, ColocatedChoice | undefined> = { chunked: undefined, vllm: undefined },
): ColocatedBaselines {
  for (const c of sortByBound(serving, (x) => colocatedCapacity(ctx, x) / x.gpus)) {
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
  return { byPolicy, best: betterOf(byPolicy) };
}

/** The better policy's choice by goodput per GPU; chunked on a tie. */
export function betterOf(byPolicy: ColocatedBaselines["byPolicy"]): ColocatedChoice | undefined {
  const { chunked, vllm } = byPolicy;
  return vllm && (!chunked || vllm.perGpu > chunked.perGpu) ? vllm : chunked;
}
