import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  checkCoefficients,
  fitCalibration,
  fitTpOverhead,
  nelderMead,
  sweepModel,
  type CalibrationRaw,
} from "./calibration.js";
import { decodeBatch, instanceLatencyModel, latencyCoefficients, prefillBatch, smoothRoofline } from "./latency.js";
import { MODEL_SHAPES, deriveModel } from "./model-shapes.js";

const rawFile = fileURLToPath(
  new URL("../../../bench/results/gpu-worker-runs/v6/cal/calibration-raw.json", import.meta.url),
);
const measured = JSON.parse(readFileSync(rawFile, "utf8")) as CalibrationRaw;

/**
 * A sweep made by the model itself from known coefficients: the fit must find them again. Its engine has no
 * prefill graphs, so every prefill step is eager and the host floor shows.
 */
function syntheticSweep(): { raw: CalibrationRaw; truth: ReturnType<typeof latencyCoefficients> } {
  const truth = {
    ...latencyCoefficients("H200-141GB"),
    achievedTflops: 700,
    achievedHbmGBps: 3600,
    rooflineSharpness: 2.5,
    kvReadGBps: 4200,
    attentionTflops: 500,
    perLayerOverheadUs: 15,
    attentionUsPerSequence: 0.4,
    prefillIterationMs: 0.3,
    prefillHostMs: 12,
    prefillHostMsPerSequence: 3,
    nonGemmGBps: 4200,
    decodeIterationMs: 0,
    prefillGraphMaxTokens: 0,
  };
  const raw: CalibrationRaw = {
    ...measured,
    prefillGraph: undefined,
    ceilings: { measuredCopyGBps: 4200, measuredMatmulTflops: 740 },
    rows: [],
    gemm: [],
  };
  const model = sweepModel(measured);
  const lat = instanceLatencyModel(model, truth, { tp: 1, pp: 1 });
  for (const b of [1, 8, 32, 128, 256])
    for (const ctx of [128, 1024, 4096])
      raw.rows.push({
        phase: "decode",
        batch: b,
        contextTokens: ctx,
        stepMs: lat.forward(decodeBatch(b, b * ctx)).totalMs,
      });
  for (const b of [1, 2, 4, 8]) {
    for (const t of [128, 512, 2048]) {
      const batch = prefillBatch(Array<number>(b).fill(t));
      const gpu = lat.gpuForward(batch).totalMs;
      raw.rows.push({
        phase: "prefill",
        batch: b,
        promptTokens: t,
        stepMs: lat.forward(batch).totalMs,
        gpuStepMs: gpu,
      });
    }
  }
  for (const m of [1, 64, 256, 1024, 4096]) {
    const w = measured.gemm![0]!.weightBytes;
    const flops = (measured.gemm![0]!.flops / measured.gemm![0]!.rows) * m;
    raw.gemm!.push({
      rows: m,
      flops,
      weightBytes: w,
      layerMs: smoothRoofline(
        w / (truth.achievedHbmGBps * 1e6),
        flops / (truth.achievedTflops * 1e9),
        truth.rooflineSharpness,
      ),
    });
  }
  return { raw, truth };
}

describe("calibration fit", () => {
  it("minimises a quadratic bowl (Nelder-Mead)", () => {
    const { x, value } = nelderMead(([a, b]) => (a! - 3) ** 2 + 10 * (b! + 1) ** 2, [0, 0], 1, 400);
    expect(x[0]).toBeCloseTo(3, 3);
    expect(x[1]).toBeCloseTo(-1, 3);
    expect(value).toBeLessThan(1e-6);
  });

  it("recovers the coefficients of a sweep the model itself generated", { timeout: 120_000 }, () => {
    const { raw, truth } = syntheticSweep();
    const fit = fitCalibration(raw, "H200-141GB");
    expect(fit.maxErrorPercent).toBeLessThan(1);
    for (const k of ["achievedTflops", "achievedHbmGBps", "kvReadGBps", "prefillHostMs"] as const) {
      expect(Math.abs(fit.fitted[k] - truth[k]) / truth[k], k).toBeLessThan(0.05);
    }
  });

  it(
    "fits the H200 sweep within 10% at every engine step, the small prefill steps replayed as the engine's graphs",
    { timeout: 120_000 },
    () => {
      const fit = fitCalibration(measured, "H200-141GB");
      const engineSteps = fit.errors.filter((e) => e.kind === "decode" || e.kind === "prefill");
      expect(engineSteps).toHaveLength(76);
      expect(engineSteps.filter((e) => e.label.endsWith("(graph)")).map((e) => e.label)).toEqual([
        "prefill B=1 T=128 (graph)",
        "prefill B=1 T=256 (graph)",
        "prefill B=1 T=512 (graph)",
        "prefill B=2 T=128 (graph)",
        "prefill B=2 T=256 (graph)",
        "prefill B=4 T=128 (graph)",
      ]);
      expect(fit.maxErrorPercent).toBeLessThan(10);
      expect(fit.maxErrorByKind["prefill-gpu"]).toBeLessThan(10);
      // The shipped Hopper defaults are this fit, rounded: the same verdict on the same points.
      expect(
        Math.abs(checkCoefficients(measured, latencyCoefficients("H200-141GB")).maxErrorPercent - fit.maxErrorPercent),
      ).toBeLessThan(1);
    },
  );

  it("puts TP overhead where published TP scaling is: per-GPU efficiency within 0.05 of TensorRT-LLM's at TP 2/4/8", () => {
    const tp = fitTpOverhead("H200-141GB", deriveModel(MODEL_SHAPES["Llama-3-70B"]), 64, 1024);
    expect(tp.tpOverheadPerRank).toBeGreaterThan(0.05);
    for (const t of [2, 4, 8])
      expect(Math.abs(tp.modelEfficiency[t]! - tp.publishedEfficiency[t]!), `TP${t}`).toBeLessThan(0.05);
  });

  it("rejects a sweep of a model it has no shape for", () => {
    expect(() => sweepModel({ ...measured, model: "mystery-7b" })).toThrow(/mystery-7b.*carries no shape/);
  });
});
