/**
 * Traffic bench figure: the most loaded inter-leaf link under C4P's planned paths, under ECMP hashing (single and
 * multi-QP) and under the ideal (fractional, LP) spread, for every scenario of bench/results/traffic.json.
 * Load 1 = one NIC's line rate on the link.
 */
import type { TopLevelSpec } from "vega-lite";
import { array, num, str, type Json } from "./json.js";

const FIGURE = "traffic-link-load";

export const TRAFFIC_METHODS = [
  { method: "C4P", field: "c4pMaxLinkLoad" },
  { method: "ECMP", field: "ecmpMaxLinkLoad" },
  { method: "ECMP multi-QP", field: "ecmpMultiQpMaxLinkLoad" },
  { method: "ideal", field: "idealMaxLinkLoad" },
] as const;

export interface TrafficPoint {
  /** Placement and collective, e.g. "full-rack · ring". */
  pattern: string;
  links: "all links up" | "one link failed";
  gpus: number;
  method: string;
  maxLinkLoad: number;
}

export function trafficPoints(results: Json): TrafficPoint[] {
  return array(FIGURE, results, "rows").flatMap((row) => {
    const base = {
      pattern: `${str(FIGURE, row, "placement")} · ${str(FIGURE, row, "algorithm")}`,
      links: (row as { failedLink?: unknown }).failedLink ? ("one link failed" as const) : ("all links up" as const),
      gpus: num(FIGURE, row, "gpus") ?? 0,
    };
    return TRAFFIC_METHODS.flatMap(({ method, field }) => {
      const load = num(FIGURE, row, field);
      return load === null ? [] : [{ ...base, method, maxLinkLoad: load }];
    });
  });
}

export function trafficSpec(points: readonly TrafficPoint[]): TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "C4P: max inter-leaf link load, C4P vs ECMP vs ideal",
      subtitle: "ECMP = mean over hash seeds; 1.0 = one NIC's line rate (bench/results/traffic.json)",
    },
    data: { values: [...points] },
    facet: {
      row: { field: "links", type: "nominal", title: null },
      column: { field: "pattern", type: "nominal", title: null },
    },
    spec: {
      width: 150,
      height: 160,
      mark: { type: "line", point: true, tooltip: true },
      encoding: {
        x: { field: "gpus", type: "quantitative", scale: { type: "log", base: 2 }, title: "GPUs (log₂)" },
        y: { field: "maxLinkLoad", type: "quantitative", title: "max link load" },
        color: { field: "method", type: "nominal", title: null, sort: TRAFFIC_METHODS.map((m) => m.method) },
        strokeDash: { field: "method", type: "nominal", sort: TRAFFIC_METHODS.map((m) => m.method) },
      },
    },
  };
}
