import { describe, expect, it } from "vitest";
import { OperatorMetrics } from "../../operator/src/metrics.js";
import {
  apiRate,
  histogramQuantile,
  memoryFigures,
  operatorSample,
  quantileOverflows,
  queueFigures,
  slope,
  type OperatorSample,
} from "./metrics.js";

const sample = (tS: number, rss: number, depth = 0, api = 0): OperatorSample => ({
  tS,
  rssBytes: rss,
  heapUsedBytes: rss / 2,
  queueDepth: { trainingjob: depth },
  reconcileBuckets: {},
  apiRequests: api,
  eventLoopLagMaxS: 0,
});

describe("soak metrics", () => {
  it("reads the operator's own exposition: queue depth, histogram buckets, API requests", async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    metrics.workqueueDepth.set({ controller: "trainingjob" }, 7);
    for (const s of [0.002, 0.02, 0.02, 3]) metrics.reconcileDurationSeconds.observe({ controller: "trainingjob" }, s);
    metrics.apiRequestsTotal.inc({ method: "PATCH" }, 5);
    metrics.apiRequestsTotal.inc({ method: "GET" }, 2);
    const s = operatorSample(await metrics.registry.metrics(), 12);
    expect(s.queueDepth["trainingjob"]).toBe(7);
    expect(s.apiRequests).toBe(7);
    expect(s.reconcileBuckets["trainingjob"]!.at(-1)).toEqual([Number.POSITIVE_INFINITY, 4]);
    // 4 observations: the P50 falls in (0.01, 0.05], the P99 in (2.5, 5].
    const p50 = histogramQuantile(0.5, s.reconcileBuckets["trainingjob"]!)!;
    const p99 = histogramQuantile(0.99, s.reconcileBuckets["trainingjob"]!)!;
    expect(p50).toBeGreaterThan(0.01);
    expect(p50).toBeLessThanOrEqual(0.05);
    expect(p99).toBeGreaterThan(2.5);
    expect(p99).toBeLessThanOrEqual(5);
  });

  it("takes quantiles of the observations between two scrapes only", () => {
    const from: [number, number][] = [
      [0.1, 100],
      [1, 100],
      [Number.POSITIVE_INFINITY, 100],
    ];
    const to: [number, number][] = [
      [0.1, 100],
      [1, 110],
      [Number.POSITIVE_INFINITY, 110],
    ];
    expect(histogramQuantile(0.5, to, from)).toBeCloseTo(0.55, 5); // all 10 new ones in (0.1, 1]
    expect(histogramQuantile(0.5, from, from)).toBeUndefined();
    expect(quantileOverflows(0.99, to, from)).toBe(false);
    const slow: [number, number][] = [
      [0.1, 100],
      [1, 100],
      [Number.POSITIVE_INFINITY, 110],
    ];
    expect(quantileOverflows(0.99, slow, from)).toBe(true); // the new ones all took longer than 1 s
    expect(histogramQuantile(0.99, slow, from)).toBe(1); // a lower bound only
  });

  it("computes the memory ratio and slope after warm-up, not before", () => {
    const growing = [sample(0, 900), ...[10, 20, 30, 40, 50, 60].map((t) => sample(t, 100 + t))];
    const m = memoryFigures(growing, 10, (s) => s.rssBytes, 2);
    expect(m.afterWarmupBytes).toBe(115);
    expect(m.endBytes).toBe(155);
    expect(m.ratio).toBeCloseTo(155 / 115, 3);
    expect(slope(growing.slice(1).map((s) => [s.tS, s.rssBytes]))).toBeCloseTo(1, 6);
  });

  it("shows queue growth as a second half above the first, and the API request rate", () => {
    const samples = [0, 10, 20, 30, 40].map((t, i) => sample(t, 1, i * 3, t * 4));
    const q = queueFigures(samples, 10, "trainingjob");
    expect(q.maxFirstHalf).toBe(6);
    expect(q.maxSecondHalf).toBe(12);
    expect(apiRate(samples, 10)).toEqual({ mean: 4, max: 4 });
  });
});
