/**
 * Serving rate-sweep figure (DistServe Fig. 8 style): SLO attainment vs request rate per GPU, one line per plan kind,
 * one panel per scenario of bench/results/serving-rate.json, the attainment target as a horizontal rule. Points past
 * a plan's capacity bound are drawn hollow: a finite simulated run can look fine there, the planner never counts it.
 */
import type { TopLevelSpec } from "vega-lite";
import { array, field, num, str, type Json } from "./json.js";

const FIGURE = "serving-rate";

/** Plan kinds as the bench writes them, with the legend label of each (the serving-goodput figure's labels). */
export const RATE_PLAN_KINDS = [
  { planKind: "disaggregated", label: "disaggregated (gpufleet)" },
  { planKind: "vllm", label: "vLLM colocated" },
  { planKind: "chunked", label: "chunked prefill" },
] as const;

export interface RatePoint {
  scenario: string;
  /** Legend label of the plan kind. */
  planKind: string;
  ratePerGpu: number;
  attainmentPercent: number;
  aboveCapacityBound: boolean;
  /** The scenario's attainment target, %. */
  targetPercent: number;
}

function labelOf(planKind: string): string {
  const known = RATE_PLAN_KINDS.find((k) => k.planKind === planKind);
  if (!known) throw new Error(`figure ${FIGURE}: unknown planKind "${planKind}"`);
  return known.label;
}

/** One point per row; the target comes from the row's scenario (its SLO's attainment percent). */
export function ratePoints(results: Json): RatePoint[] {
  const targets = new Map<string, number>();
  for (const s of array(FIGURE, results, "scenarios")) {
    const target = num(FIGURE, field(FIGURE, s, "slo"), "attainmentPercent");
    if (target !== null) targets.set(str(FIGURE, s, "scenario"), target);
  }
  return array(FIGURE, results, "rows").map((row) => {
    const scenario = str(FIGURE, row, "scenario");
    const targetPercent = targets.get(scenario);
    if (targetPercent === undefined) throw new Error(`figure ${FIGURE}: row of scenario "${scenario}" has no scenario`);
    return {
      scenario,
      planKind: labelOf(str(FIGURE, row, "planKind")),
      ratePerGpu: num(FIGURE, row, "ratePerGpu") ?? 0,
      attainmentPercent: num(FIGURE, row, "attainmentPercent") ?? 0,
      aboveCapacityBound: field(FIGURE, row, "aboveCapacityBound") === true,
      targetPercent,
    };
  });
}

export function rateSpec(points: readonly RatePoint[]): TopLevelSpec {
  const sort = RATE_PLAN_KINDS.map((k) => k.label);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Serving: SLO attainment vs rate per GPU, by plan kind",
      subtitle:
        "planner's best plan of each kind, planner's simulator (bench/results/serving-rate.json); " +
        "dashed = attainment target; hollow = past the plan's capacity bound",
    },
    data: { values: [...points] },
    // Panels in the bench's scenario order, not alphabetical.
    facet: { field: "scenario", type: "nominal", title: null, sort: [...new Set(points.map((p) => p.scenario))] },
    columns: 3,
    resolve: { scale: { x: "independent" } },
    spec: {
      width: 260,
      height: 200,
      layer: [
        {
          mark: { type: "line", point: false, tooltip: true },
          encoding: {
            x: { field: "ratePerGpu", type: "quantitative", title: "rate (req/s per GPU)" },
            y: {
              field: "attainmentPercent",
              type: "quantitative",
              title: "SLO attainment (%)",
              scale: { domain: [0, 100] },
            },
            color: { field: "planKind", type: "nominal", title: "plan kind", sort, legend: { labelLimit: 250 } },
          },
        },
        {
          mark: { type: "point", tooltip: true, size: 36 },
          encoding: {
            x: { field: "ratePerGpu", type: "quantitative" },
            y: { field: "attainmentPercent", type: "quantitative" },
            color: { field: "planKind", type: "nominal", sort },
            fill: {
              condition: { test: "datum.aboveCapacityBound", value: "white" },
              field: "planKind",
              type: "nominal",
              sort,
            },
            opacity: { value: 1 },
          },
        },
        {
          mark: { type: "rule", strokeDash: [5, 4], color: "#444" },
          encoding: { y: { field: "targetPercent", type: "quantitative", aggregate: "max" } },
        },
      ],
    },
  };
}
