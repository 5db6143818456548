/**
 * The scheduler benchmark's workloads, as the Llumnix artifact generates them (AlibabaPAI/llumnix, branch osdi24ae,
 * benchmarks-repo/benchmark_throughput.py and the artifact/6x_... experiments' config/serving_exp), from the one seeded
 * PRNG
 * (common/src/random.ts):
 * - lengths: Zipf over ranks 1 … 2·mean − 1 with exponent α (2.0 for mean 128, 1.5 for 256, 1.15 for 512: the
 *   artifact's values for a 6,144 cap), each sample scaled by mean / (the samples' mean) and rounded up, then capped
 *   at 6,144 tokens; prompt and output lengths drawn independently with the same mean;
 * - arrivals: Poisson (exponential gaps) or Gamma gaps of the same mean with coefficient of variation CV
 *   (shape 1/CV², scale mean·CV²);
 * - priorities: each request high priority with probability `highPriorityFraction` (the artifact's 0.1).
 * The Azure conversation trace (data/traces/, CC-BY 4.0, Patel et al., Splitwise, ISCA 2024) gives real lengths.
 */
import { seededRandom } from "../../common/src/random.js";
import type { SimRequest } from "../gateway/dispatch-sim.js";

export const LENGTH_CAP_TOKENS = 6_144;

/** The artifact's Zipf exponent for a mean with the 6,144 cap (benchmark_throughput.py, gen_random_response_lens). */
export const ZIPF_EXPONENT: Readonly<Record<number, number>> = { 128: 2.0, 256: 1.5, 512: 1.15, 1024: 1.0005 };

export function zipfLengths(
  meanTokens: number,
  count: number,
  random: () => number,
  capTokens = LENGTH_CAP_TOKENS,
): number[] {
  const alpha = ZIPF_EXPONENT[meanTokens];
  if (alpha === undefined)
    throw new RangeError(`no Zipf exponent for mean ${meanTokens} (have ${Object.keys(ZIPF_EXPONENT).join(", ")})`);
  const ranks = 2 * meanTokens - 1;
  const cdf: number[] = [];
  let total = 0;
  for (let k = 1; k <= ranks; k++) cdf.push((total += k ** -alpha));
  const draw = () => {
    const u = random() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    return lo + 1;
  };
  const raw = Array.from({ length: count }, draw);
  const scale = meanTokens / (raw.reduce((s, x) => s + x, 0) / Math.max(1, count));
  return raw.map((x) => Math.min(capTokens, Math.ceil(x * scale)));
}

/** Standard normal by Box-Muller. */
function normal(random: () => number): number {
  const u = 1 - random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000), with the U^(1/shape) boost for shape < 1. */
export function gammaSample(shape: number, random: () => number): number {
  if (shape < 1) return gammaSample(shape + 1, random) * (1 - random()) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = 1 - random();
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

export type Arrival = { kind: "poisson" } | { kind: "gamma"; cv: number };

export function arrivalName(a: Arrival): string {
  return a.kind === "poisson" ? "poisson" : `gamma-cv${a.cv}`;
}

/** Arrival times (ms, from 0) of `count` requests at `ratePerSec`. */
export function arrivalTimes(arrival: Arrival, ratePerSec: number, count: number, random: () => number): number[] {
  if (!(ratePerSec > 0)) throw new RangeError(`ratePerSec must be positive, got ${ratePerSec}`);
  const meanGapMs = 1000 / ratePerSec;
  const times: number[] = [];
  let t = 0;
  for (let i = 0; i < count; i++) {
    times.push(t);
    if (arrival.kind === "poisson") t += -Math.log(1 - random()) * meanGapMs;
    else {
      const shape = 1 / (arrival.cv * arrival.cv);
      t += gammaSample(shape, random) * meanGapMs * arrival.cv * arrival.cv;
    }
  }
  return times;
}

export interface Lengths {
  promptTokens: number;
  outputTokens: number;
}

export function zipfWorkload(meanTokens: number, count: number, seed: number): Lengths[] {
  const random = seededRandom(seed);
  const prompts = zipfLengths(meanTokens, count, random);
  const outputs = zipfLengths(meanTokens, count, random);
  return prompts.map((promptTokens, i) => ({ promptTokens, outputTokens: outputs[i]! }));
}

/** Requests: the lengths in order, arrivals drawn at the rate, and the priority draw; one seed for all three. */
export function withArrivals(
  lengths: readonly Lengths[],
  arrival: Arrival,
  ratePerSec: number,
  seed: number,
  highPriorityFraction = 0,
): SimRequest[] {
  const random = seededRandom(seed ^ 0x5bd1e995);
  const times = arrivalTimes(arrival, ratePerSec, lengths.length, random);
  const priorities = seededRandom(seed ^ 0x27d4eb2f);
  return lengths.map((l, i) => ({
    arrivalMs: times[i]!,
    ...l,
    priority: highPriorityFraction > 0 && priorities() < highPriorityFraction ? "high" : "normal",
  }));
}
