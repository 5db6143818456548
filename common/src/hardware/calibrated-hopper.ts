// Written by `npm run calibrate -- --write-shipped` (scripts/calibrate.ts) from
// bench/results/gpu-worker-runs/v6/cal/calibration-raw.json. Do not edit by hand.
import type { ShippedGpuProfile } from "./gpu-profiles.js";

export const CALIBRATED_HOPPER: ShippedGpuProfile = {
  name: "shipped:hopper-reference-worker",
  fractionsOfDatasheet: {
    gemm: 0.6707,
    weightStream: 0.7238,
    kvRead: 0.8986,
    attention: 0.4061,
    nonGemm: 0.8802,
  },
  coefficients: {
    rooflineSharpness: 2.904,
    tpOverheadPerRank: 0.197,
  },
  engine: {
    perLayerOverheadUs: 13.641,
    attentionUsPerSequence: 0.029,
    decodeIterationMs: 0,
    prefillIterationMs: 0.354,
    prefillHostMs: 9.654,
    prefillHostMsPerSequence: 1.644,
    prefillGraphMaxTokens: 512,
    prefillGraphTokenStep: 64,
    prefillGraphMaxPrompts: 8,
  },
  calibration: {
    gpu: "NVIDIA H200",
    engine: "gpufleet-reference-worker",
    points: 76,
    maxErrorPercent: 6.563,
    source: "bench/results/gpu-worker-runs/v6/cal/calibration-raw.json",
  },
};
