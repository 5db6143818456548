// Written by `npm run calibrate -- --write-shipped` (scripts/calibrate.ts) from bench/results/gpu-worker-
// runs/calibration-v2/calibration-raw.json. Do not edit by hand.
import type { ShippedGpuProfile } from "./gpu-profiles.js";

export const CALIBRATED_HOPPER: ShippedGpuProfile = {
  name: "shipped:hopper-reference-worker",
  fractionsOfDatasheet: {
    gemm: 0.6554,
    weightStream: 0.7229,
    kvRead: 0.9331,
    attention: 0.6077,
    nonGemm: 0.8778,
  },
  coefficients: {
    rooflineSharpness: 2.8,
    tpOverheadPerRank: 0.202,
  },
  engine: {
    perLayerOverheadUs: 12.664,
    attentionUsPerSequence: 0.447,
    decodeIterationMs: 0,
    prefillIterationMs: 0.274,
    prefillHostMs: 11.323,
    prefillHostMsPerSequence: 3.055,
  },
  calibration: {
    gpu: "NVIDIA H200",
    engine: "gpufleet-reference-worker",
    points: 76,
    maxErrorPercent: 26.799,
    source: "bench/results/gpu-worker-runs/calibration-v2/calibration-raw.json",
  },
};
