/**
 * Model-vs-measured figure: the planner's latency model (common/src/models/latency.ts, the shipped coefficients of
 * the sweep's GPU) against the GPU worker's measured step times on an H200
 * (bench/results/gpu-worker-runs/calibration-v2/calibration-raw.json, the sweep `npm run calibrate` fitted: decode
 * steps in CUDA graphs, prefills eager and in CUDA graphs, Llama-3-8B, TP1). The points and errors are the
 * calibration's own check (common/src/models/calibration.ts checkCoefficients), so the figure and `npm run
 * calibrate` cannot disagree. Points on the diagonal are exact; the subtitle gives the median absolute error per
 * phase.
 */
import type { TopLevelSpec } from "vega-lite";
import { checkCoefficients, type CalibrationRaw, type PointKind } from "../../common/src/models/calibration.js";
import { latencyCoefficients } from "../../common/src/models/latency.js";
import { array, FigureDataError, str, type Json } from "./json.js";

const FIGURE = "latency-model";

/** The worker's names for what it ran, mapped to the catalog's keys. */
const GPU_NAMES: Readonly<Record<string, string>> = { "NVIDIA H200": "H200-141GB" };

const PHASES = {
  decode: "decode",
  prefill: "prefill (eager)",
  "prefill-gpu": "prefill (CUDA graph)",
} as const satisfies Partial<Record<PointKind, string>>;
export type LatencyPhase = (typeof PHASES)[keyof typeof PHASES];

export interface LatencyPoint {
  phase: LatencyPhase;
  /** The calibration's label of the point ("decode B=4 ctx=1024"). */
  label: string;
  measuredMs: number;
  modelMs: number;
  errorPercent: number;
}

/** Rows the worker skipped (a batch that does not fit), with its reason; they have no step time. */
export function skippedRows(calibration: Json): number {
  return array(FIGURE, calibration, "rows").filter((row) => typeof (row as { skipped?: unknown }).skipped === "string")
    .length;
}

/** The sweep's name of its model (format 2 carries the shape, format 1 only the name). */
export function sweepModelName(calibration: Json): string {
  const model = (calibration as { model?: unknown }).model;
  if (typeof model === "string") return model;
  if (model && typeof model === "object" && typeof (model as { name?: unknown }).name === "string")
    return (model as { name: string }).name;
  throw new FigureDataError(FIGURE, "model must be the sweep's model name or shape");
}

export function latencyPoints(calibration: Json): LatencyPoint[] {
  const gpuName = str(FIGURE, calibration, "gpu");
  const gpu = GPU_NAMES[gpuName];
  if (gpu === undefined) throw new FigureDataError(FIGURE, `no catalog GPU for "${gpuName}"`);
  sweepModelName(calibration);
  let errors;
  try {
    ({ errors } = checkCoefficients(calibration as unknown as CalibrationRaw, latencyCoefficients(gpu)));
  } catch (error) {
    throw new FigureDataError(FIGURE, (error as Error).message);
  }
  return errors.flatMap((e) =>
    e.kind === "gemm"
      ? []
      : [
          {
            phase: PHASES[e.kind],
            label: e.label,
            measuredMs: e.measuredMs,
            modelMs: e.modelMs,
            errorPercent: e.errorPercent,
          },
        ],
  );
}

/** Median of |error %| per phase. */
export function medianAbsErrorPercent(points: readonly LatencyPoint[], phase: LatencyPhase): number {
  const errors = points
    .filter((p) => p.phase === phase)
    .map((p) => Math.abs(p.errorPercent))
    .sort((a, b) => a - b);
  if (errors.length === 0) return Number.NaN;
  const mid = Math.floor(errors.length / 2);
  return errors.length % 2 === 1 ? errors[mid]! : (errors[mid - 1]! + errors[mid]!) / 2;
}

export function latencySpec(points: readonly LatencyPoint[], skipped = 0, modelName = "Llama-3-8B"): TopLevelSpec {
  const all = points.flatMap((p) => [p.measuredMs, p.modelMs]);
  const lo = Math.min(...all) * 0.8;
  const hi = Math.max(...all) * 1.25;
  const err = (phase: LatencyPhase) => `${phase} ${medianAbsErrorPercent(points, phase).toFixed(1)}%`;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Latency model vs measured step time (${modelName}, H200, TP1)`,
      subtitle: `model: common/src/models/latency.ts, shipped H200 coefficients; median |error|: ${err("decode")}, ${err("prefill (eager)")}, ${err("prefill (CUDA graph)")}${skipped > 0 ? `; ${skipped} shapes too large to run omitted` : ""}`,
    },
    width: 460,
    height: 420,
    layer: [
      {
        data: { values: [{ ms: lo }, { ms: hi }] },
        mark: { type: "line", color: "#999", strokeDash: [4, 4] },
        encoding: { x: { field: "ms", type: "quantitative" }, y: { field: "ms", type: "quantitative" } },
      },
      {
        data: { values: [...points] },
        mark: { type: "point", filled: true, size: 50, tooltip: true },
        encoding: {
          x: {
            field: "measuredMs",
            type: "quantitative",
            scale: { type: "log", domain: [lo, hi] },
            title: "measured step (ms, log)",
          },
          y: {
            field: "modelMs",
            type: "quantitative",
            scale: { type: "log", domain: [lo, hi] },
            title: "model (ms, log)",
          },
          color: { field: "phase", type: "nominal", title: "phase", legend: { labelLimit: 240 } },
          shape: { field: "phase", type: "nominal" },
        },
      },
    ],
  };
}
