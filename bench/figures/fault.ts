/**
 * Fault bench figure: C4D detection latency against job size for each injected fault class (bench/results/fault.json).
 * Rows the detector missed (no latency) or caught in only some runs (recall < 1) are listed in the subtitle; the
 * no-fault control ("none") has nothing to detect and is left out.
 */
import type { TopLevelSpec } from "vega-lite";
import { array, num, str, type Json } from "./json.js";

const FIGURE = "fault-detection";

export interface FaultPoint {
  /** Fault class with its severity, e.g. "straggler ×1.5" or "hang". */
  fault: string;
  ranks: number;
  detectionLatencyMs: number;
  detectionLatencyMaxMs: number | null;
  recall: number | null;
}

export interface FaultData {
  detected: FaultPoint[];
  /** Labels of detected rows that missed some runs ("slow-link ×0.8 @ 64 ranks: recall 0.2"). */
  partial: string[];
  /** Labels ("straggler ×1.2 @ 64 ranks") of rows with no detection latency. */
  undetected: string[];
}

function faultLabel(row: Json): string {
  const cls = str(FIGURE, row, "faultClass");
  const factor = num(FIGURE, row, "factor");
  return factor === null ? cls : `${cls} ×${factor}`;
}

export function faultData(results: Json): FaultData {
  const detected: FaultPoint[] = [];
  const undetected: string[] = [];
  const partial: string[] = [];
  for (const row of array(FIGURE, results, "rows")) {
    const fault = faultLabel(row);
    if (fault === "none") continue; // the no-fault control: nothing to detect
    const ranks = num(FIGURE, row, "ranks") ?? 0;
    const latency = num(FIGURE, row, "detectionLatencyMs");
    if (latency === null) {
      undetected.push(`${fault} @ ${ranks} ranks`);
      continue;
    }
    const recall = num(FIGURE, row, "recall");
    if (recall !== null && recall < 1) partial.push(`${fault} @ ${ranks} ranks: recall ${recall}`);
    detected.push({
      fault,
      ranks,
      detectionLatencyMs: latency,
      detectionLatencyMaxMs: num(FIGURE, row, "detectionLatencyMaxMs"),
      recall,
    });
  }
  return { detected, partial, undetected };
}

export function faultSpec(data: FaultData): TopLevelSpec {
  const missed = [
    data.partial.length > 0 ? `partly detected: ${data.partial.join(", ")}` : "",
    data.undetected.length > 0 ? `not detected: ${data.undetected.join(", ")}` : "",
  ].filter(Boolean);
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "C4D: detection latency per fault class",
      subtitle: ["median over runs, whisker to the slowest run (bench/results/fault.json)", ...missed],
    },
    data: { values: data.detected },
    width: 520,
    height: 320,
    encoding: {
      x: { field: "ranks", type: "quantitative", scale: { type: "log", base: 2 }, title: "ranks in the job (log₂)" },
      color: { field: "fault", type: "nominal", title: "fault class" },
    },
    layer: [
      {
        mark: { type: "line", point: true, tooltip: true },
        encoding: {
          y: {
            field: "detectionLatencyMs",
            type: "quantitative",
            scale: { type: "log" },
            title: "detection latency (ms, log)",
          },
        },
      },
      {
        mark: { type: "rule" },
        encoding: { y: { field: "detectionLatencyMs", type: "quantitative" }, y2: { field: "detectionLatencyMaxMs" } },
      },
    ],
  };
}
