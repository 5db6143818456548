/**
 * Scheduler bench figure: P99 TTFT and P99 TPOT against offered load for each dispatch policy, per workload, from
 * the Poisson rows of bench/results/scheduler.json. The bench records percentiles (mean, P99), not per-request
 * samples, so this is a percentile-vs-load figure rather than a latency CDF.
 */
import type { TopLevelSpec } from "vega-lite";
import { array, num, str, type Json } from "./json.js";

const FIGURE = "scheduler-latency";

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

export function schedulerSpec(points: readonly SchedulerPoint[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Scheduler: tail latency vs load per dispatch policy",
      subtitle:
        "Poisson arrivals, 16 simulated LLaMA-7B instances (bench/results/scheduler.json); load = fraction of saturation rate",
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
