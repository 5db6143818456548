/**
 * Fitting the latency model to a calibration sweep (pure; scripts/calibrate.ts does the I/O).
 *
 * The sweep (agent/worker/gpufleet_worker/calibrate.py) measures one model on one GPU: decode steps (batch ×
 * context, CUDA graphs), prefill steps as the engine runs them (eager; from format 3 a small step replays the
 * engine's prefill graph for its token bucket, and the sweep names those limits) and, from format 2, the same
 * prefill as a CUDA graph of its own (GPU time alone) and the dense GEMMs of one layer alone at 1..16k rows.
 * Every point is predicted by the same instanceLatencyModel the planner uses, with the coefficients being fitted;
 * the fit minimises the sum of squared log errors (relative errors, symmetric in over- and under-prediction) by
 * Nelder-Mead over the logs of the coefficients, so every coefficient stays positive. The fit reports, and never
 * hides, its largest error.
 */
import { deriveModel, type DerivedModel, type ModelShape } from "./model-shapes.js";
import {
  decodeBatch,
  instanceLatencyModel,
  latencyCoefficients,
  prefillBatch,
  smoothRoofline,
  type ForwardBatch,
  type LatencyCoefficients,
} from "./latency.js";

export interface SweepRow {
  phase: "decode" | "prefill";
  batch: number;
  contextTokens?: number;
  promptTokens?: number;
  stepMs?: number;
  mediansMs?: number[];
  gpuStepMs?: number;
  /** Format 3: how the engine ran this prefill step. */
  enginePath?: "graph" | "eager";
  skipped?: string;
}

/** Format 3: the engine's prefill graphs (agent/worker/gpufleet_worker/config.py, EngineConfig). */
export interface SweepPrefillGraph {
  maxTokens: number;
  tokenStep: number;
  maxPrompts: number;
  /** Why none were captured (maxTokens is then 0). */
  off?: string;
}

export interface GemmRow {
  rows: number;
  layerMs: number;
  flops: number;
  weightBytes: number;
}

export interface CalibrationRaw {
  format?: number;
  gpu: string;
  engine?: string;
  model:
    | string
    | {
        name: string;
        layers: number;
        hiddenSize: number;
        heads: number;
        kvHeads: number;
        intermediateSize: number;
        vocabSize: number;
        dtype: string;
      };
  ceilings: { measuredCopyGBps: number; measuredMatmulTflops: number };
  rows: SweepRow[];
  gemm?: GemmRow[];
  prefillGraph?: SweepPrefillGraph;
}

/** The sweep engine's prefill-graph limits as latency coefficients; before format 3 every prefill was eager. */
export function sweepPrefillGraph(
  raw: CalibrationRaw,
): Pick<LatencyCoefficients, "prefillGraphMaxTokens" | "prefillGraphTokenStep" | "prefillGraphMaxPrompts"> {
  const g = raw.prefillGraph;
  return g
    ? { prefillGraphMaxTokens: g.maxTokens, prefillGraphTokenStep: g.tokenStep, prefillGraphMaxPrompts: g.maxPrompts }
    : { prefillGraphMaxTokens: 0, prefillGraphTokenStep: 1, prefillGraphMaxPrompts: 0 };
}

/**
 * The coefficients a sweep determines; the rest keep their defaults. The element-wise kernels' rate is not fitted
 * but set to the same run's measured copy bandwidth: they are copies with a little arithmetic, and left free the
 * fit trades them against the GEMM terms (an earlier fit drove their rate to infinity).
 */
export const FITTED = [
  "achievedTflops",
  "achievedHbmGBps",
  "rooflineSharpness",
  "kvReadGBps",
  "attentionTflops",
  "perLayerOverheadUs",
  "attentionUsPerSequence",
  "prefillIterationMs",
  "prefillHostMs",
  "prefillHostMsPerSequence",
] as const;
export type FittedCoefficient = (typeof FITTED)[number];
export type FittedValues = Record<FittedCoefficient | "nonGemmGBps", number>;

/** Llama-3-8B as the worker builds it, when a format-1 sweep names the model only. */
const LLAMA3_8B_WORKER: ModelShape = {
  name: "llama-3-8b",
  layers: 32,
  hiddenSize: 4096,
  heads: 32,
  kvHeads: 8,
  vocabSize: 128256,
  dtype: "bf16",
  intermediateSize: 14336,
  gatedMlp: true,
};

export function sweepModel(raw: CalibrationRaw): DerivedModel {
  if (typeof raw.model === "string") {
    if (raw.model !== "llama-3-8b")
      throw new Error(`calibration sweep of model "${raw.model}" carries no shape; format 2 sweeps do`);
    return deriveModel(LLAMA3_8B_WORKER);
  }
  const m = raw.model;
  if (m.dtype !== "bf16") throw new Error(`calibration sweep dtype ${m.dtype}: only bf16 sweeps are fitted`);
  return deriveModel({
    name: m.name,
    layers: m.layers,
    hiddenSize: m.hiddenSize,
    heads: m.heads,
    kvHeads: m.kvHeads,
    vocabSize: m.vocabSize,
    dtype: "bf16",
    intermediateSize: m.intermediateSize,
    gatedMlp: true,
  });
}

export type PointKind = "decode" | "prefill" | "prefill-gpu" | "gemm";

export interface CalibrationPoint {
  kind: PointKind;
  label: string;
  measuredMs: number;
  /** Spread of the point's two medians, percent of the smaller: the noise the model cannot fit. */
  noisePercent?: number;
  /** The forward pass (decode and prefill points). */
  batch?: ForwardBatch;
  /** One layer's GEMMs alone (gemm points). */
  gemm?: { flops: number; weightBytes: number };
}

/** Every measured point of a sweep. */
export function calibrationPoints(raw: CalibrationRaw): CalibrationPoint[] {
  const points: CalibrationPoint[] = [];
  const noise = (m?: number[]) =>
    m && m.length === 2 ? (100 * Math.abs(m[0]! - m[1]!)) / Math.min(m[0]!, m[1]!) : undefined;
  for (const r of raw.rows) {
    if (r.stepMs === undefined || r.skipped) continue;
    if (r.phase === "decode") {
      const ctx = r.contextTokens!;
      points.push({
        kind: "decode",
        label: `decode B=${r.batch} ctx=${ctx}`,
        measuredMs: r.stepMs,
        noisePercent: noise(r.mediansMs),
        batch: decodeBatch(r.batch, r.batch * ctx),
      });
    } else {
      const batch = prefillBatch(Array<number>(r.batch).fill(r.promptTokens!));
      points.push({
        kind: "prefill",
        label: `prefill B=${r.batch} T=${r.promptTokens}${r.enginePath ? ` (${r.enginePath})` : ""}`,
        measuredMs: r.stepMs,
        noisePercent: noise(r.mediansMs),
        batch,
      });
      if (r.gpuStepMs !== undefined)
        points.push({
          kind: "prefill-gpu",
          label: `prefill GPU time B=${r.batch} T=${r.promptTokens}`,
          measuredMs: r.gpuStepMs,
          batch,
        });
    }
  }
  for (const g of raw.gemm ?? [])
    points.push({
      kind: "gemm",
      label: `gemm M=${g.rows}`,
      measuredMs: g.layerMs,
      gemm: { flops: g.flops, weightBytes: g.weightBytes },
    });
  return points;
}

/** The model's times for every point with coefficients `c` (one latency model built per call, not per point). */
export function predictPoints(
  points: readonly CalibrationPoint[],
  model: DerivedModel,
  c: LatencyCoefficients,
): number[] {
  const engine = instanceLatencyModel(model, c, { tp: 1, pp: 1 });
  return points.map((p) => {
    if (p.gemm)
      return smoothRoofline(
        p.gemm.weightBytes / (c.achievedHbmGBps * 1e6),
        p.gemm.flops / (c.achievedTflops * 1e9),
        c.rooflineSharpness,
      );
    // A prefill captured in a graph of its own shape: the GPU's time, no host floor, no padding.
    return (p.kind === "prefill-gpu" ? engine.gpuForward(p.batch!) : engine.forward(p.batch!)).totalMs;
  });
}

/** Nelder-Mead minimisation (Lagarias et al. 1998 coefficients); small and dependency-free. */
export function nelderMead(
  f: (x: number[]) => number,
  start: number[],
  step: number,
  iterations: number,
): { x: number[]; value: number } {
  const n = start.length;
  let simplex = [start, ...start.map((_, i) => start.map((v, j) => (i === j ? v + step : v)))].map((x) => ({
    x,
    value: f(x),
  }));
  for (let it = 0; it < iterations; it++) {
    simplex.sort((a, b) => a.value - b.value);
    const best = simplex[0]!;
    const worst = simplex[n]!;
    const centroid = start.map((_, j) => simplex.slice(0, n).reduce((s, p) => s + p.x[j]!, 0) / n);
    const towards = (t: number) => centroid.map((c, j) => c + t * (worst.x[j]! - c));
    const reflected = towards(-1);
    const fr = f(reflected);
    if (fr < best.value) {
      const expanded = towards(-2);
      const fe = f(expanded);
      simplex[n] = fe < fr ? { x: expanded, value: fe } : { x: reflected, value: fr };
    } else if (fr < simplex[n - 1]!.value) {
      simplex[n] = { x: reflected, value: fr };
    } else {
      const contracted = fr < worst.value ? towards(-0.5) : towards(0.5);
      const fc = f(contracted);
      if (fc < Math.min(fr, worst.value)) simplex[n] = { x: contracted, value: fc };
      else
        simplex = simplex
          .map((p, i) => (i === 0 ? p : { x: p.x.map((v, j) => best.x[j]! + 0.5 * (v - best.x[j]!)), value: 0 }))
          .map((p, i) => (i === 0 ? p : { ...p, value: f(p.x) }));
    }
  }
  simplex.sort((a, b) => a.value - b.value);
  return simplex[0]!;
}

export interface PointError {
  kind: PointKind;
  label: string;
  measuredMs: number;
  modelMs: number;
  errorPercent: number;
  noisePercent?: number;
}

export interface CalibrationFit {
  gpu: string;
  gpuModel: string;
  coefficients: LatencyCoefficients;
  fitted: FittedValues;
  errors: PointError[];
  /** Largest |error| over the engine's own steps (decode and eager prefill), percent. */
  maxErrorPercent: number;
  meanErrorPercent: number;
  /** Largest |error| per kind of point. */
  maxErrorByKind: Partial<Record<PointKind, number>>;
}

/** Nonzero lower bounds: coefficients that may be 0 are fitted as log(x + floor). */
const ZERO_OK: ReadonlySet<FittedCoefficient> = new Set([
  "perLayerOverheadUs",
  "attentionUsPerSequence",
  "prefillIterationMs",
  "prefillHostMs",
  "prefillHostMsPerSequence",
]);
const encode = (k: FittedCoefficient, v: number) =>
  k === "rooflineSharpness" ? Math.log(v - 1 + 1e-3) : Math.log(ZERO_OK.has(k) ? v + 1e-3 : v);
const decode = (k: FittedCoefficient, x: number) =>
  k === "rooflineSharpness" ? 1 + Math.exp(x) - 1e-3 : ZERO_OK.has(k) ? Math.max(0, Math.exp(x) - 1e-3) : Math.exp(x);

export function pointErrors(
  points: readonly CalibrationPoint[],
  model: DerivedModel,
  c: LatencyCoefficients,
): PointError[] {
  const predicted = predictPoints(points, model, c);
  return points.map((p, i) => {
    const modelMs = predicted[i]!;
    return {
      kind: p.kind,
      label: p.label,
      measuredMs: p.measuredMs,
      modelMs,
      errorPercent: (100 * (modelMs - p.measuredMs)) / p.measuredMs,
      noisePercent: p.noisePercent,
    };
  });
}

function summarize(
  errors: readonly PointError[],
): Pick<CalibrationFit, "maxErrorPercent" | "meanErrorPercent" | "maxErrorByKind"> {
  const engine = errors.filter((e) => e.kind === "decode" || e.kind === "prefill");
  const abs = engine.map((e) => Math.abs(e.errorPercent));
  const maxErrorByKind: Partial<Record<PointKind, number>> = {};
  for (const e of errors) maxErrorByKind[e.kind] = Math.max(maxErrorByKind[e.kind] ?? 0, Math.abs(e.errorPercent));
  return {
    maxErrorPercent: Math.max(0, ...abs),
    meanErrorPercent: abs.reduce((s, x) => s + x, 0) / Math.max(1, abs.length),
    maxErrorByKind,
  };
}

/** Fits the FITTED coefficients of `gpuModel` to the sweep, starting from the same run's measured ceilings. */
export function fitCalibration(raw: CalibrationRaw, gpuModel: string, iterations = 6000): CalibrationFit {
  const model = sweepModel(raw);
  const points = calibrationPoints(raw);
  if (points.length < FITTED.length)
    throw new Error(
      `calibration sweep has ${points.length} measured points, fewer than the ${FITTED.length} coefficients to fit`,
    );
  const base = latencyCoefficients(gpuModel);
  const { measuredCopyGBps: copy, measuredMatmulTflops: matmul } = raw.ceilings;
  const start: Record<FittedCoefficient, number> = {
    achievedTflops: matmul,
    achievedHbmGBps: copy,
    rooflineSharpness: 2,
    kvReadGBps: copy,
    attentionTflops: 0.6 * matmul,
    perLayerOverheadUs: 20,
    attentionUsPerSequence: 0.5,
    prefillIterationMs: 0.5,
    prefillHostMs: 10,
    prefillHostMsPerSequence: 1,
  };
  const coefficientsOf = (x: number[]): LatencyCoefficients => {
    const c = { ...base, decodeIterationMs: 0, nonGemmGBps: copy, ...sweepPrefillGraph(raw) } as LatencyCoefficients;
    FITTED.forEach((k, i) => (c[k] = decode(k, x[i]!)));
    return c;
  };
  const loss = (x: number[]): number => {
    const predicted = predictPoints(points, model, coefficientsOf(x));
    let sum = 0;
    points.forEach((p, i) => (sum += Math.log(predicted[i]! / p.measuredMs) ** 2));
    return Number.isFinite(sum) ? sum : Number.MAX_VALUE;
  };
  let best = nelderMead(
    loss,
    FITTED.map((k) => encode(k, start[k])),
    0.3,
    iterations,
  );
  best = nelderMead(loss, best.x, 0.05, iterations); // restart: Nelder-Mead stalls in 10 dimensions
  const coefficients = coefficientsOf(best.x);
  const fitted = {
    ...(Object.fromEntries(FITTED.map((k) => [k, coefficients[k]])) as FittedValues),
    nonGemmGBps: copy,
  };
  const errors = pointErrors(points, model, coefficients);
  return { gpu: raw.gpu, gpuModel, coefficients, fitted, errors, ...summarize(errors) };
}

/** The same points predicted with other coefficients (e.g. the shipped defaults), summarised the same way. */
export function checkCoefficients(
  raw: CalibrationRaw,
  c: LatencyCoefficients,
): Pick<CalibrationFit, "errors" | "maxErrorPercent" | "meanErrorPercent" | "maxErrorByKind"> {
  const errors = pointErrors(calibrationPoints(raw), sweepModel(raw), c);
  return { errors, ...summarize(errors) };
}

/**
 * Published TP scaling of a real engine, as output throughput per GPU relative to TP=1 (TensorRT-LLM 0.19.0
 * performance overview, Llama 3.3 70B FP4 on B200, ISL/OSL 128/128, max load: 11,253 / 17,868 / 24,945 / 27,471
 * tokens/s at TP 1/2/4/8; docs/latency-model.md).
 */
export const PUBLISHED_TP_SCALING = {
  source: "TensorRT-LLM 0.19.0 perf-overview, Llama-3.3-70B FP4, B200, ISL/OSL 128/128",
  tokensPerSecond: { 1: 11253.28, 2: 17867.66, 4: 24944.5, 8: 27471.49 },
} as const;

/**
 * tpOverheadPerRank such that the model's per-GPU decode efficiency (its all-reduces included) matches the
 * published scaling best (least squares over TP 2/4/8), for a 70B-class decode step on `gpuModel`. The model's
 * own all-reduce term already explains part of the loss; `a` is the rest.
 */
export function fitTpOverhead(
  gpuModel: string,
  model: DerivedModel,
  batch: number,
  contextTokens: number,
): { tpOverheadPerRank: number; modelEfficiency: Record<number, number>; publishedEfficiency: Record<number, number> } {
  const pub = PUBLISHED_TP_SCALING.tokensPerSecond;
  const published: Record<number, number> = {};
  for (const tp of [2, 4, 8] as const) published[tp] = pub[tp] / (tp * pub[1]);
  const efficiency = (a: number, tp: number): number => {
    const c = { ...latencyCoefficients(gpuModel), tpOverheadPerRank: a };
    const step = (t: number) =>
      instanceLatencyModel(model, c, { tp: t, pp: 1 }).forward(decodeBatch(batch, batch * contextTokens)).totalMs;
    return step(1) / (tp * step(tp));
  };
  let best = { a: 0, loss: Infinity };
  for (let a = 0; a <= 1.5; a += 0.001) {
    const loss = [2, 4, 8].reduce((s, tp) => s + (efficiency(a, tp) - published[tp]!) ** 2, 0);
    if (loss < best.loss) best = { a, loss };
  }
  const modelEfficiency: Record<number, number> = {};
  for (const tp of [2, 4, 8]) modelEfficiency[tp] = efficiency(best.a, tp);
  return { tpOverheadPerRank: Math.round(best.a * 1000) / 1000, modelEfficiency, publishedEfficiency: published };
}
