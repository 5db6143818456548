/**
 * Model-vs-measured figure: the planner's latency model (common/src/models/latency.ts, default coefficients) against
 * the GPU worker's measured step times on an H200 (bench/results/gpu-worker-runs/calibration-v1/calibration-raw.json:
 * CUDA-graph decode steps and prefills of Llama-3-8B, TP1). Points on the diagonal are exact; the subtitle gives the
 * median absolute error per phase, computed here from the same points.
 */
import type { TopLevelSpec } from "vega-lite";
import { decodeStepLatencyMs, prefillLatencyMs } from "../../common/src/models/latency.js";
import { deriveModel, MODEL_SHAPES } from "../../common/src/models/model-shapes.js";
import { array, FigureDataError, num, str, type Json } from "./json.js";

const FIGURE = "latency-model";

/** The worker's names for what it ran, mapped to the catalog's and model table's keys. */
const GPU_NAMES: Readonly<Record<string, string>> = { "NVIDIA H200": "H200-141GB" };
const MODEL_NAMES: Readonly<Record<string, keyof typeof MODEL_SHAPES>> = { "llama-3-8b": "Llama-3-8B" };

export interface LatencyPoint {
  phase: "decode" | "prefill";
  batch: number;
  /** Context tokens per sequence (decode) or prompt tokens per sequence (prefill). */
  tokens: number;
  measuredMs: number;
  modelMs: number;
  errorPercent: number;
}

/** Rows the worker skipped (a batch that does not fit), with its reason; they have no step time. */
export function skippedRows(calibration: Json): number {
  return array(FIGURE, calibration, "rows").filter((row) => typeof (row as { skipped?: unknown }).skipped === "string")
    .length;
}

export function latencyPoints(calibration: Json): LatencyPoint[] {
  const gpuName = str(FIGURE, calibration, "gpu");
  const modelName = str(FIGURE, calibration, "model");
  const gpu = GPU_NAMES[gpuName];
  const modelKey = MODEL_NAMES[modelName];
  if (gpu === undefined) throw new FigureDataError(FIGURE, `no catalog GPU for "${gpuName}"`);
  if (modelKey === undefined) throw new FigureDataError(FIGURE, `no model shape for "${modelName}"`);
  const model = deriveModel(MODEL_SHAPES[modelKey]);
  const parallelism = { tp: 1, pp: 1 };
  const measured = array(FIGURE, calibration, "rows").filter(
    (row) => typeof (row as { skipped?: unknown }).skipped !== "string",
  );
  return measured.map((row) => {
    const phase = str(FIGURE, row, "phase");
    const batch = num(FIGURE, row, "batch") ?? 0;
    const measuredMs = num(FIGURE, row, "stepMs");
    if (measuredMs === null || measuredMs <= 0)
      throw new FigureDataError(FIGURE, `row without a step time: ${JSON.stringify(row)}`);
    let tokens: number;
    let modelMs: number;
    if (phase === "decode") {
      tokens = num(FIGURE, row, "contextTokens") ?? 0;
      modelMs = decodeStepLatencyMs(model, gpu, parallelism, Array<number>(batch).fill(tokens)).totalMs;
    } else if (phase === "prefill") {
      tokens = num(FIGURE, row, "promptTokens") ?? 0;
      modelMs = prefillLatencyMs(model, gpu, parallelism, Array<number>(batch).fill(tokens)).totalMs;
    } else {
      throw new FigureDataError(FIGURE, `unknown phase "${phase}"`);
    }
    return { phase, batch, tokens, measuredMs, modelMs, errorPercent: ((modelMs - measuredMs) / measuredMs) * 100 };
  });
}

/** Median of |error %| per phase. */
export function medianAbsErrorPercent(points: readonly LatencyPoint[], phase: LatencyPoint["phase"]): number {
  const errors = points
    .filter((p) => p.phase === phase)
    .map((p) => Math.abs(p.errorPercent))
    .sort((a, b) => a - b);
  if (errors.length === 0) return Number.NaN;
  const mid = Math.floor(errors.length / 2);
  return errors.length % 2 === 1 ? errors[mid]! : (errors[mid - 1]! + errors[mid]!) / 2;
}

export function latencySpec(points: readonly LatencyPoint[], skipped = 0): TopLevelSpec {
  const all = points.flatMap((p) => [p.measuredMs, p.modelMs]);
  const lo = Math.min(...all) * 0.8;
  const hi = Math.max(...all) * 1.25;
  const err = (phase: LatencyPoint["phase"]) => `${phase} ${medianAbsErrorPercent(points, phase).toFixed(0)}%`;
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Latency model vs measured step time (Llama-3-8B, H200, TP1)",
      subtitle: `model: common/src/models/latency.ts default coefficients; median |error|: ${err("decode")}, ${err("prefill")}${skipped > 0 ? `; ${skipped} shapes too large to run omitted` : ""}`,
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
          color: { field: "phase", type: "nominal", title: "phase" },
          shape: { field: "phase", type: "nominal" },
        },
      },
    ],
  };
}
