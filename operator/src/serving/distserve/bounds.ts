/**
 * Attainment ceilings from the latency model alone, checked before a configuration is simulated.
 *
 * However light the load, a request's TTFT is at least its own prompt's prefill run alone on the instance, and its
 * TPOT at least one decode step of it alone at its shortest context (prompt + 1): every batch it is part of
 * carries at least its own tokens, attention pairs and sequence, and the latency model grows with each of those
 * counts. A chunked prefill splits the prompt over several passes, which costs at least as much as one pass
 * (each pass streams the weights again; the smoothed roofline and the attention max are subadditive for
 * rooflineSharpness ≥ 1). So the share of the sample whose lone times meet the SLOs is an upper bound on the
 * attainment any simulated run of the configuration can reach, at any rate and with any batching.
 *
 * When that ceiling is below the target, the goodput search's first step (a trickle at capacity/256) fails for
 * certain and the search returns 0: skipping its simulation changes no result, and saves the one run that is
 * the most expensive for long requests (at a trickle, every decode step of every request is its own event).
 * A TTFT SLO below a prompt's prefill time (ttftMs 0.1 against prompts of thousands of tokens) is found here for
 * every configuration without simulating any.
 *
 * The constant the model adds per pass differs between a prefill and a decode pass; the larger is taken off the
 * lone times, which are the passes' GPU time alone (no host floor, no prefill-graph padding, either of which a pass the
 * request shares may or may not have), so the bound stays a lower bound whichever applies. Pure.
 */
import type { LatencyCoefficients } from "../../../../common/src/models/latency.js";
import type { Config, Context } from "./context.js";
import type { WorkloadSample } from "./workload.js";

interface LoneTimes {
  /** Lower bound on each sample request's TTFT on this configuration. */
  ttftMs: Float64Array;
  /** Lower bound on each sample request's TPOT on this configuration (0 for single-token outputs). */
  tpotMs: Float64Array;
}

const loneTimesCache = new WeakMap<WorkloadSample, WeakMap<Config, LoneTimes>>();

/** The per-pass constant the latency model may add to one pass and not another (see the file comment). */
const passConstantMs = (coeffs: LatencyCoefficients): number =>
  Math.max(coeffs.prefillIterationMs, coeffs.decodeIterationMs);

/** Lone prefill and decode-step times of every request of `sample` on `c`, less the per-pass constants. */
export function loneTimes(coeffs: LatencyCoefficients, c: Config, sample: WorkloadSample): LoneTimes {
  let byConfig = loneTimesCache.get(sample);
  if (!byConfig) loneTimesCache.set(sample, (byConfig = new WeakMap()));
  const hit = byConfig.get(c);
  if (hit) return hit;
  const constant = passConstantMs(coeffs);
  // The simulator sums stage times and subtracts arrival times; a hair of slack keeps the bound below its rounding.
  const slack = 1 - 1e-9;
  // Subadditivity over chunks needs a roofline at least as sharp as a plain sum (p ≥ 1); below that no TTFT bound.
  const chunksBound = coeffs.rooflineSharpness >= 1;
  const n = sample.count;
  const ttftMs = new Float64Array(n);
  const tpotMs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = sample.promptTokens[i] as number;
    if (chunksBound) {
      const prefill = c.latency.gpuForward({
        newTokens: p,
        attentionPairs: (p * (p + 1)) / 2,
        kvReadTokens: 0,
        sequences: 1,
      });
      ttftMs[i] = Math.max(0, prefill.totalMs - constant) * slack;
    }
    if ((sample.outputTokens[i] as number) > 1) {
      const step = c.latency.gpuForward({ newTokens: 1, attentionPairs: p + 1, kvReadTokens: p + 1, sequences: 1 });
      tpotMs[i] = Math.max(0, step.totalMs - constant) * slack;
    }
  }
  const times = { ttftMs, tpotMs };
  byConfig.set(c, times);
  return times;
}

/**
 * Highest attainment (0–1) any run of `sample` can reach with prefill on `prefill` and decode on `decode`;
 * leave one out to bound a phase searched alone (its SLO is then not checked).
 */
export function attainmentCeiling(
  ctx: Context,
  sample: WorkloadSample,
  sides: { prefill?: Config; decode?: Config },
): number {
  const n = sample.count;
  if (n === 0) return 1;
  const ttft = sides.prefill ? loneTimes(ctx.coeffs, sides.prefill, sample).ttftMs : undefined;
  const tpot = sides.decode ? loneTimes(ctx.coeffs, sides.decode, sample).tpotMs : undefined;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    if (ttft && (ttft[i] as number) > ctx.slo.ttftMs) continue;
    if (tpot && (tpot[i] as number) > ctx.slo.tpotMs) continue;
    ok++;
  }
  return ok / n;
}

/** True when no run of `sample` on these configurations can reach `target` (the search would return 0). */
export function cannotReach(
  ctx: Context,
  sample: WorkloadSample,
  sides: { prefill?: Config; decode?: Config },
  target: number,
): boolean {
  return attainmentCeiling(ctx, sample, sides) < target;
}
