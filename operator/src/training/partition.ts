/**
 * Self-adapting pipeline partition (Holmes, ICPP'24, section "Self-Adapting Pipeline Partition"): split a model's
 * identical transformer layers over pipeline stages so that the stages' times balance, where a stage on a slower
 * island (slower GPUs, or a slower NIC for its data-parallel sync) gets fewer layers.
 *
 * Exact, not a heuristic: each stage's time is a nondecreasing function of its own layer count only,
 * time_s(k) = perLayerMs_s × k + fixedMs_s, and layers are interchangeable, so a split is just a vector of counts
 * (k_0 … k_{pp−1}), each ≥ 1, summing to L, and stage s takes the contiguous layers after stage s − 1's. Marginal
 * allocation solves min over splits of max_s time_s(k_s) exactly: start every stage at one layer and hand each
 * remaining layer to the stage whose time after taking it is smallest.
 *
 * Why it is optimal: let v be the value of the last layer handed out. When it was handed out, every stage s had
 * time_s(k_s + 1) ≥ v for its count k_s at that moment, so any split whose maximum is below v gives each stage at
 * most that k_s, in total at most L − 1 layers: impossible. The greedy's maximum is max(v, max_s time_s(1)), and no
 * split does better than either. partition.test.ts checks this against brute force.
 *
 * O(L × pp); L is at most a few hundred layers.
 */

export interface StageTimeFn {
  perLayerMs: number;
  fixedMs: number;
}

export class PartitionError extends Error {
  override name = "PartitionError";
  constructor(
    readonly layers: number,
    readonly stages: number,
    message: string,
  ) {
    super(`cannot split ${layers} layers over ${stages} stages: ${message}`);
  }
}

/** Layers per stage minimising the slowest stage's time. Ties go to the earlier stage. */
export function partitionLayers(layers: number, stages: readonly StageTimeFn[]): number[] {
  const pp = stages.length;
  if (!Number.isInteger(layers) || pp === 0 || layers < pp)
    throw new PartitionError(layers, pp, "need at least one layer per stage");
  for (const [s, f] of stages.entries()) {
    if (!(f.perLayerMs >= 0) || !(f.fixedMs >= 0) || !Number.isFinite(f.perLayerMs) || !Number.isFinite(f.fixedMs)) {
      throw new PartitionError(
        layers,
        pp,
        `stage ${s} has a non-finite or negative time (${f.perLayerMs} ms/layer + ${f.fixedMs} ms)`,
      );
    }
  }
  const counts = new Array<number>(pp).fill(1);
  for (let left = layers - pp; left > 0; left--) {
    let best = 0;
    let bestMs = Number.POSITIVE_INFINITY;
    for (let s = 0; s < pp; s++) {
      const f = stages[s]!;
      const ms = f.perLayerMs * (counts[s]! + 1) + f.fixedMs;
      if (ms < bestMs) {
        bestMs = ms;
        best = s;
      }
    }
    counts[best]! += 1;
  }
  return counts;
}

/** The slowest stage's time under a split. */
export function maxStageMs(stages: readonly StageTimeFn[], counts: readonly number[]): number {
  let max = 0;
  for (const [s, f] of stages.entries()) max = Math.max(max, f.perLayerMs * counts[s]! + f.fixedMs);
  return max;
}

/** Megatron-LM's default: equal shares, the remainder to the first stages. What a NIC-oblivious job runs with. */
export function uniformLayers(layers: number, pp: number): number[] {
  if (!Number.isInteger(layers) || pp <= 0 || layers < pp)
    throw new PartitionError(layers, pp, "need at least one layer per stage");
  const base = Math.floor(layers / pp);
  return Array.from({ length: pp }, (_, s) => base + (s < layers % pp ? 1 : 0));
}

/** Layer ranges [start, endExclusive) from counts. */
export function layerRanges(counts: readonly number[]): { layerStart: number; layerEndExclusive: number }[] {
  let start = 0;
  return counts.map((k) => {
    const range = { layerStart: start, layerEndExclusive: start + k };
    start += k;
    return range;
  });
}
