/**
 * Scheduler bench figures, from bench/results/scheduler.json: P99 TTFT and P99 TPOT against offered load for each
 * dispatch policy, per workload (the Poisson rows), and the TTFT/TPOT CDFs of the headline runs (`latencyCdfs`:
 * each run's latencies at percentiles 0..100).
 */
import type { TopLevelSpec } from "vega-lite";
import { array, field, FigureDataError, num, str, type Json } from "./json.js";

const FIGURE = "scheduler-latency";
const FIGURE_CDF = "scheduler-cdf";

export interface SchedulerPoint {
  workload: string;
  policy: string;
  load: number;
  metric: "P99 TTFT" | "P99 TPOT";
  valueMs: number;
}

export function schedulerPoints(results: Json): SchedulerPoint[] {
  return array(FIGURE, results, "rows")
    .filter((row) => str(FIGURE, row, "arrival") === "poisson")
    .flatMap((row) => {
      const base = {
        workload: str(FIGURE, row, "workload"),
        policy: str(FIGURE, row, "policy"),
        load: num(FIGURE, row, "load"),
      };
      if (base.load === null) return [];
      const out: SchedulerPoint[] = [];
      const ttft = num(FIGURE, row, "p99TtftMs");
      const tpot = num(FIGURE, row, "p99TpotMs");
      if (ttft !== null) out.push({ ...base, load: base.load, metric: "P99 TTFT", valueMs: ttft });
      if (tpot !== null) out.push({ ...base, load: base.load, metric: "P99 TPOT", valueMs: tpot });
      return out;
    });
}

/** What the subtitles say about the runs, from the results' `setup`. */
export interface SchedulerSetup {
  instances?: number;
  model?: string;
  gpuModel?: string;
  requestsPerRun?: number;
  headlineLoad?: number;
}

export function schedulerSetup(results: Json): SchedulerSetup {
  const setup = field(FIGURE, results, "setup");
  return setup !== null && typeof setup === "object" ? (setup as SchedulerSetup) : {};
}

const cluster = (s: SchedulerSetup) =>
  `${s.instances ?? "?"} simulated ${s.model ?? "?"} instances on ${s.gpuModel ?? "?"}`;

export function schedulerSpec(points: readonly SchedulerPoint[], setup: SchedulerSetup = {}): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Scheduler: tail latency vs load per dispatch policy",
      subtitle: `Poisson arrivals, ${cluster(setup)} (bench/results/scheduler.json); load = fraction of saturation rate`,
    },
    data: { values: [...points] },
    facet: {
      row: { field: "metric", type: "nominal", title: null, sort: ["P99 TTFT", "P99 TPOT"] },
      column: { field: "workload", type: "nominal", title: null },
    },
    spec: {
      width: 190,
      height: 170,
      mark: { type: "line", point: true, tooltip: true },
      encoding: {
        x: { field: "load", type: "quantitative", title: "load", scale: { zero: false } },
        y: { field: "valueMs", type: "quantitative", scale: { type: "log" }, title: "ms (log)" },
        color: { field: "policy", type: "nominal", title: "policy" },
        strokeDash: { field: "policy", type: "nominal", title: "policy" }, // policies that tie draw on top of each other
      },
    },
    resolve: { scale: { y: "independent" } },
  };
}

export interface CdfPoint {
  workload: string;
  policy: string;
  metric: "TTFT" | "TPOT";
  valueMs: number;
  /** Share of completed requests at or below valueMs (0..1). */
  fraction: number;
}

/**
 * CDF points of the headline runs from `latencyCdfs` (TTFT/TPOT at percentiles 0..100 per workload and policy);
 * null when the results predate that field, so the figure is skipped rather than drawn from something else.
 */
export function schedulerCdfPoints(results: Json): CdfPoint[] | null {
  if (field(FIGURE_CDF, results, "latencyCdfs") === undefined) return null;
  return array(FIGURE_CDF, results, "latencyCdfs").flatMap((run) => {
    const base = { workload: str(FIGURE_CDF, run, "workload"), policy: str(FIGURE_CDF, run, "policy") };
    return (["TTFT", "TPOT"] as const).flatMap((metric) => {
      const values = array(FIGURE_CDF, run, metric === "TTFT" ? "ttftMs" : "tpotMs");
      if (values.length !== 101)
        throw new FigureDataError(
          FIGURE_CDF,
          `${base.workload}/${base.policy} ${metric}: expected 101 percentiles, got ${values.length}`,
        );
      return values.flatMap((v, p) =>
        typeof v === "number" && Number.isFinite(v) && v > 0
          ? [{ ...base, metric, valueMs: v, fraction: p / 100 }]
          : [],
      );
    });
  });
}

export function schedulerCdfSpec(points: readonly CdfPoint[], setup: SchedulerSetup = {}): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Scheduler: TTFT and TPOT CDFs per dispatch policy",
      subtitle: `Poisson arrivals at load ${setup.headlineLoad ?? "?"} (the headline), ${cluster(setup)}, ${setup.requestsPerRun ?? "?"} requests per run (bench/results/scheduler.json)`,
    },
    data: { values: [...points] },
    facet: {
      row: { field: "metric", type: "nominal", title: null, sort: ["TTFT", "TPOT"] },
      column: { field: "workload", type: "nominal", title: null },
    },
    spec: {
      width: 190,
      height: 170,
      mark: { type: "line", interpolate: "step-after", tooltip: true },
      encoding: {
        x: { field: "valueMs", type: "quantitative", scale: { type: "log" }, title: "ms (log)" },
        y: { field: "fraction", type: "quantitative", title: "fraction of requests", scale: { domain: [0, 1] } },
        color: { field: "policy", type: "nominal", title: "policy" },
        strokeDash: { field: "policy", type: "nominal", title: "policy" },
      },
    },
    resolve: { scale: { x: "independent" } },
  };
}
