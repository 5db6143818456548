/**
 * Serving bench figure: the goodput per GPU each plan kind reaches on each scenario of bench/results/serving.json
 * (the highest request rate per GPU at which the SLO attainment target still holds, found by the planner's
 * simulator). One panel per workload and SLO, one group of bars per model and GPU.
 */
import type { TopLevelSpec } from "vega-lite";
import { array, num, str, type Json } from "./json.js";

const FIGURE = "serving-goodput";

/** The plan kinds the serving bench measures, with the results field holding each one's goodput per GPU. */
export const SERVING_PLAN_KINDS = [
  { kind: "disaggregated (gpufleet)", field: "disaggGoodputPerGpu" },
  { kind: "vLLM colocated", field: "vllmGoodputPerGpu" },
  { kind: "chunked prefill", field: "chunkedGoodputPerGpu" },
] as const;

export interface ServingPoint {
  /** Model and GPU without its memory size, e.g. "OPT-13B A100". */
  deployment: string;
  /** Workload and SLO scale, e.g. "chatbot" or "chatbot, TTFT SLO ×0.5". */
  panel: string;
  planKind: string;
  goodputPerGpu: number;
}

function sloLabel(scenario: Json): string {
  const workload = str(FIGURE, scenario, "workload");
  const scale = (scenario as { sloScale?: { ttft?: number; tpot?: number } }).sloScale ?? {};
  const parts = [
    scale.ttft !== undefined && scale.ttft !== 1 ? `TTFT SLO ×${scale.ttft}` : "",
    scale.tpot !== undefined && scale.tpot !== 1 ? `TPOT SLO ×${scale.tpot}` : "",
  ].filter(Boolean);
  return parts.length > 0 ? `${workload}, ${parts.join(", ")}` : workload;
}

/** One point per scenario and plan kind; a goodput of 0 (no plan met the SLO) is kept so the gap shows. */
export function servingPoints(results: Json): ServingPoint[] {
  return array(FIGURE, results, "scenarios").flatMap((scenario) =>
    SERVING_PLAN_KINDS.map(({ kind, field }) => ({
      deployment: `${str(FIGURE, scenario, "model")} ${str(FIGURE, scenario, "gpu").replace(/-\d+GB$/, "")}`,
      panel: sloLabel(scenario),
      planKind: kind,
      goodputPerGpu: num(FIGURE, scenario, field) ?? 0,
    })),
  );
}

export function servingSpec(points: readonly ServingPoint[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Serving: goodput per GPU by plan kind",
      subtitle:
        "highest rate per GPU meeting the SLO attainment target (bench/results/serving.json); log scale, 0 = no plan met the SLO",
    },
    data: { values: points.map((p) => ({ ...p, plotted: Math.max(p.goodputPerGpu, 0.01) })) },
    facet: { field: "panel", type: "nominal", title: null },
    columns: 2,
    spec: {
      width: 380,
      height: 200,
      mark: { type: "bar", tooltip: true, width: { band: 0.9 } },
      encoding: {
        x: { field: "deployment", type: "nominal", title: null, axis: { labelAngle: -40, labelLimit: 200 } },
        xOffset: { field: "planKind", type: "nominal", sort: SERVING_PLAN_KINDS.map((k) => k.kind) },
        y: {
          field: "plotted",
          type: "quantitative",
          scale: { type: "log", domainMin: 0.01 },
          title: "goodput (req/s per GPU)",
        },
        y2: { datum: 0.01 }, // a log scale has no 0: bars start at the axis floor
        color: {
          field: "planKind",
          type: "nominal",
          title: "plan kind",
          legend: { labelLimit: 250 },
          sort: SERVING_PLAN_KINDS.map((k) => k.kind),
        },
      },
    },
  };
}
