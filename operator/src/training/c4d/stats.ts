/**
 * Robust statistics for the detector: medians and the median absolute deviation (MAD) resist the outliers a fault
 * produces, so a baseline computed from the same sequence a faulty rank is in is not dragged by it; and a sign
 * CUSUM (Page 1954 on the sign of "slow or not") that locates when a slowdown began and how firmly it persists.
 */

/** Median of `values` (sorted in place). NaN for an empty array. */
export function medianInPlace(values: Float64Array): number {
  const n = values.length;
  if (n === 0) return Number.NaN;
  values.sort();
  const mid = n >> 1;
  return n % 2 === 1 ? values[mid]! : (values[mid - 1]! + values[mid]!) / 2;
}

export interface RobustSpread {
  median: number;
  /** 1.4826 * MAD: the standard deviation a normal distribution with this MAD would have. */
  sigma: number;
}

/** Median and scaled MAD of the first `count` values of `values` (reordered; `scratch` is overwritten). */
export function robustSpread(values: Float64Array, count: number, scratch: Float64Array): RobustSpread {
  const v = values.subarray(0, count);
  const median = medianInPlace(v);
  const d = scratch.subarray(0, count);
  for (let i = 0; i < count; i++) d[i] = Math.abs(v[i]! - median);
  return { median, sigma: 1.4826 * medianInPlace(d) };
}

export function median(values: readonly number[]): number {
  return medianInPlace(Float64Array.from(values));
}

export interface ChangePoint {
  /** Index (into the series) where the slow run begins. */
  onset: number;
  /** Slow observations minus fast ones from `onset` to the end: how firmly the slowdown persists. */
  excess: number;
}

/**
 * Sign CUSUM over a series of `length` observations of which those at `slowIndices` (ascending) were slow: the
 * suffix with the largest excess of slow over fast observations. Its start estimates the change-point (the first
 * affected collective); its excess grows by one per slow observation while the fault lasts and shrinks by one per
 * normal one, so isolated noise never accumulates. Undefined when no observation is slow.
 */
export function signCusum(slowIndices: readonly number[], length: number): ChangePoint | undefined {
  if (slowIndices.length === 0) return undefined;
  let best: ChangePoint | undefined;
  // Suffix sum at a slow index i (the k-th slow one from the end, 1-based k): slow after = k, fast after = (length - i)
  // - k.
  for (let k = 1; k <= slowIndices.length; k++) {
    const i = slowIndices[slowIndices.length - k]!;
    const excess = k - (length - i - k);
    if (!best || excess >= best.excess) best = { onset: i, excess };
  }
  return best;
}

/**
 * P(X >= k) for X ~ Binomial(n, p): how likely chance alone gives k or more events in n trials. Summed in log space
 * from k upwards (the terms shrink fast for the small p the flap test uses).
 */
export function binomialAtLeast(n: number, p: number, k: number): number {
  if (k <= 0) return 1;
  if (k > n || p <= 0) return 0;
  if (p >= 1) return 1;
  let logTerm = logChoose(n, k) + k * Math.log(p) + (n - k) * Math.log1p(-p);
  let sum = 0;
  for (let i = k; i <= n; i++) {
    sum += Math.exp(logTerm);
    logTerm += Math.log((n - i) / (i + 1)) + Math.log(p) - Math.log1p(-p);
  }
  return Math.min(1, sum);
}

function logChoose(n: number, k: number): number {
  let s = 0;
  for (let i = 0; i < k; i++) s += Math.log((n - i) / (i + 1));
  return s;
}
