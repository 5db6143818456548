/**
 * GPU profiles shipped with the code: the latency model's defaults where no GpuProfile resource is applied.
 *
 * The Hopper profile is the calibration of the reference worker on an H200 (`npm run calibrate`, which writes
 * ./calibrated-hopper.ts; docs/latency-model.md). Its GPU rates are kept as fractions of the H200's datasheet
 * numbers (../hardware/catalog.ts), so the H100, the same chip with slower memory, gets the same fractions of its
 * own datasheet; the structural numbers (roofline sharpness, TP overhead) and the engine's fixed costs carry over
 * unchanged. Only the H200 was measured: the H100 default is that transfer, not a measurement.
 */
import { CALIBRATED_HOPPER } from "./calibrated-hopper.js";

export interface ShippedGpuProfile {
  /** Name the plan reports when it used this profile without a GpuProfile resource. */
  name: string;
  /** GPU rates as fractions of the catalog's datasheet peaks (peakTflops or hbmBandwidthGBps). */
  fractionsOfDatasheet: { gemm: number; weightStream: number; kvRead: number; attention: number; nonGemm: number };
  coefficients: { rooflineSharpness: number; tpOverheadPerRank: number };
  engine: {
    perLayerOverheadUs: number;
    attentionUsPerSequence: number;
    decodeIterationMs: number;
    prefillIterationMs: number;
    prefillHostMs: number;
    prefillHostMsPerSequence: number;
    prefillGraphMaxTokens: number;
    prefillGraphTokenStep: number;
    prefillGraphMaxPrompts: number;
  };
  calibration: { gpu: string; engine: string; points: number; maxErrorPercent: number; source: string };
}

export const SHIPPED_GPU_PROFILES: Readonly<Record<string, ShippedGpuProfile>> = {
  "H200-141GB": CALIBRATED_HOPPER,
  "H100-80GB": CALIBRATED_HOPPER,
};
