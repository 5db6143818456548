/**
 * Pure helpers of the soak benchmark: read the operator's Prometheus text, and turn samples into the figures the
 * issue asks for (memory ratio and slope after warm-up, queue depth, reconcile P99, API requests per second).
 */

/** One series of a Prometheus text exposition. */
export interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export function parsePrometheus(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const l of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return out;
}

/** What the soak keeps of one scrape. */
export interface OperatorSample {
  /** Seconds since the churn started (negative: the idle baseline before it). */
  tS: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Work-queue depth by controller. */
  queueDepth: Record<string, number>;
  /** Cumulative reconcile-duration histogram by controller: upper bound (seconds, Infinity for +Inf) → count. */
  reconcileBuckets: Record<string, [number, number][]>;
  /** Cumulative API requests the operator sent (every method). */
  apiRequests: number;
  /**
   * The longest event-loop delay since the previous scrape (prom-client resets its histogram at each collect): a
   * stalled loop delays everything, the leader's Lease renewals included.
   */
  eventLoopLagMaxS: number;
}

export function operatorSample(text: string, tS: number): OperatorSample {
  const series = parsePrometheus(text);
  const one = (name: string): number => series.find((s) => s.name === name)?.value ?? Number.NaN;
  const queueDepth: Record<string, number> = {};
  const reconcileBuckets: Record<string, [number, number][]> = {};
  let apiRequests = 0;
  for (const s of series) {
    if (s.name === "gpufleet_operator_workqueue_depth") queueDepth[s.labels["controller"] ?? ""] = s.value;
    else if (s.name === "gpufleet_operator_api_requests_total") apiRequests += s.value;
    else if (s.name === "gpufleet_operator_reconcile_duration_seconds_bucket") {
      const le = s.labels["le"] === "+Inf" ? Number.POSITIVE_INFINITY : Number(s.labels["le"]);
      (reconcileBuckets[s.labels["controller"] ?? ""] ??= []).push([le, s.value]);
    }
  }
  for (const b of Object.values(reconcileBuckets)) b.sort((x, y) => x[0] - y[0]);
  return {
    tS,
    rssBytes: one("gpufleet_operator_process_resident_memory_bytes"),
    heapUsedBytes: one("gpufleet_operator_nodejs_heap_size_used_bytes"),
    queueDepth,
    reconcileBuckets,
    apiRequests,
    eventLoopLagMaxS: one("gpufleet_operator_nodejs_eventloop_lag_max_seconds"),
  };
}

/**
 * The q-quantile of the observations between two cumulative histograms (`from` may be undefined: since start),
 * interpolated linearly inside the bucket as Prometheus' histogram_quantile does; undefined without observations.
 * A quantile in the +Inf bucket is reported as the largest finite bound (a lower bound of the truth).
 */
export function histogramQuantile(
  q: number,
  to: readonly [number, number][],
  from?: readonly [number, number][],
): number | undefined {
  const before = new Map(from ?? []);
  const counts = to.map(([le, c]) => [le, c - (before.get(le) ?? 0)] as const);
  const total = counts.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, c] of counts) {
    if (c >= rank) {
      if (!Number.isFinite(le)) return lowerBound;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / Math.max(c - lowerCount, 1e-12);
    }
    lowerBound = le;
    lowerCount = c;
  }
  return lowerBound;
}

/** Whether the q-quantile of the observations between two scrapes lies above the largest finite bucket bound. */
export function quantileOverflows(
  q: number,
  to: readonly [number, number][],
  from?: readonly [number, number][],
): boolean {
  const before = new Map(from ?? []);
  const total = (to.at(-1)?.[1] ?? 0) - (before.get(Number.POSITIVE_INFINITY) ?? 0);
  const finite = to.filter(([le]) => Number.isFinite(le)).at(-1);
  if (total <= 0 || !finite) return false;
  return finite[1] - (before.get(finite[0]) ?? 0) < q * total;
}

/** Least-squares slope of y over x (per unit of x); 0 with fewer than two points. */
export function slope(points: readonly (readonly [number, number])[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  const sxx = points.reduce((a, p) => a + (p[0] - mx) ** 2, 0);
  const sxy = points.reduce((a, p) => a + (p[0] - mx) * (p[1] - my), 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);

export interface MemoryFigures {
  /** Mean of the first `window` samples after warm-up (the baseline of the ratio). */
  afterWarmupBytes: number;
  /** Mean of the last `window` samples of the churn. */
  endBytes: number;
  /** endBytes ÷ afterWarmupBytes. */
  ratio: number;
  /** Least-squares slope after warm-up, MiB per minute. */
  slopeMiBPerMin: number;
  /** Largest sample after warm-up ÷ afterWarmupBytes. */
  peakRatio: number;
}

/** Memory figures of `pick` over the samples after `warmupS` (churn samples only, tS ≥ 0). */
export function memoryFigures(
  samples: readonly OperatorSample[],
  warmupS: number,
  pick: (s: OperatorSample) => number,
  window = 3,
): MemoryFigures {
  const after = samples.filter((s) => s.tS >= warmupS && Number.isFinite(pick(s)));
  const start = mean(after.slice(0, window).map(pick));
  const end = mean(after.slice(-window).map(pick));
  return {
    afterWarmupBytes: Math.round(start),
    endBytes: Math.round(end),
    ratio: round(end / start, 3),
    slopeMiBPerMin: round(slope(after.map((s) => [s.tS / 60, pick(s) / 2 ** 20] as const)), 3),
    peakRatio: round(Math.max(...after.map(pick)) / start, 3),
  };
}

export interface QueueFigures {
  maxDepth: number;
  maxDepthAfterWarmup: number;
  /** Max over the first and the second half of the samples after warm-up: a growing queue has second ≫ first. */
  maxFirstHalf: number;
  maxSecondHalf: number;
  meanAfterWarmup: number;
}

export function queueFigures(samples: readonly OperatorSample[], warmupS: number, controller: string): QueueFigures {
  const depth = (s: OperatorSample): number => s.queueDepth[controller] ?? 0;
  const after = samples.filter((s) => s.tS >= warmupS);
  const half = Math.floor(after.length / 2);
  return {
    maxDepth: Math.max(0, ...samples.map(depth)),
    maxDepthAfterWarmup: Math.max(0, ...after.map(depth)),
    maxFirstHalf: Math.max(0, ...after.slice(0, half).map(depth)),
    maxSecondHalf: Math.max(0, ...after.slice(half).map(depth)),
    meanAfterWarmup: round(mean(after.map(depth)), 2),
  };
}

/** API requests per second between consecutive samples after warm-up: mean over the span and the largest step. */
export function apiRate(samples: readonly OperatorSample[], warmupS: number): { mean: number; max: number } {
  const after = samples.filter((s) => s.tS >= warmupS);
  if (after.length < 2) return { mean: 0, max: 0 };
  const first = after[0]!;
  const last = after.at(-1)!;
  let max = 0;
  for (let i = 1; i < after.length; i++) {
    const dt = after[i]!.tS - after[i - 1]!.tS;
    if (dt > 0) max = Math.max(max, (after[i]!.apiRequests - after[i - 1]!.apiRequests) / dt);
  }
  return { mean: round((last.apiRequests - first.apiRequests) / (last.tS - first.tS), 1), max: round(max, 1) };
}

export const round = (x: number, digits: number): number => Math.round(x * 10 ** digits) / 10 ** digits;
