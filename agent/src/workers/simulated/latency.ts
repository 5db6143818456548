/**
 * Latency model a simulated serving worker runs on. The operator's serving latency model (operator/src/serving/)
 * will plug in behind the same interface; until it is exported, RooflineLatencyModel is a first-principles stand-in:
 * a decode step reads all weights plus the batch's KV cache from HBM (memory-bound), a prefill does 2 FLOPs per
 * parameter per prompt token (compute-bound, Kaplan et al. 2020 §2.1); each is the roofline max of the two bounds
 * (Williams et al. 2009), at assumed achievable fractions of the catalog's datasheet peaks.
 */
import { gpuSpec } from "../../../../common/src/hardware/catalog.js";

export interface ServingLatencyModel {
  /** Latency of one prefill batch with these prompt lengths. */
  prefillBatchMs(promptTokens: readonly number[]): number;
  /** Latency of one decode step over `sequences` sequences holding `contextTokens` tokens in total. */
  decodeStepMs(sequences: number, contextTokens: number): number;
  kvBytesPerToken: number;
  /** KV cache bytes the instance can hold. */
  kvCapacityBytes: number;
}

export interface ServedModel {
  paramsBillions: number;
  dtypeBytes: number;
  layers: number;
  kvHeads: number;
  headDim: number;
}

/** Llama-3-8B-like default for simulated pods that do not say. */
export const DEFAULT_SERVED_MODEL: ServedModel = { paramsBillions: 8, dtypeBytes: 2, layers: 32, kvHeads: 8, headDim: 128 };

const ACHIEVED = { compute: 0.6, hbm: 0.8, memoryUtilization: 0.9 } as const;

export class RooflineLatencyModel implements ServingLatencyModel {
  readonly kvBytesPerToken: number;
  readonly kvCapacityBytes: number;
  private readonly weightBytes: number;
  private readonly flopsPerSec: number;
  private readonly hbmBytesPerSec: number;

  constructor(gpuModel: string, private readonly model: ServedModel, tensorParallel = 1) {
    const spec = gpuSpec(gpuModel);
    this.weightBytes = model.paramsBillions * 1e9 * model.dtypeBytes;
    this.kvBytesPerToken = 2 * model.layers * model.kvHeads * model.headDim * model.dtypeBytes;
    this.flopsPerSec = spec.peakTflops * 1e12 * ACHIEVED.compute * tensorParallel;
    this.hbmBytesPerSec = spec.hbmBandwidthGBps * 1e9 * ACHIEVED.hbm * tensorParallel;
    const hbmBytes = spec.memoryGiB * 2 ** 30 * tensorParallel * ACHIEVED.memoryUtilization;
    this.kvCapacityBytes = Math.max(0, hbmBytes - this.weightBytes);
  }

  prefillBatchMs(promptTokens: readonly number[]): number {
    const tokens = promptTokens.reduce((s, t) => s + t, 0);
    const computeS = (2 * this.model.paramsBillions * 1e9 * tokens) / this.flopsPerSec;
    const memoryS = (this.weightBytes + tokens * this.kvBytesPerToken) / this.hbmBytesPerSec;
    return Math.max(computeS, memoryS) * 1000;
  }

  decodeStepMs(sequences: number, contextTokens: number): number {
    const computeS = (2 * this.model.paramsBillions * 1e9 * sequences) / this.flopsPerSec;
    const memoryS = (this.weightBytes + contextTokens * this.kvBytesPerToken) / this.hbmBytesPerSec;
    return Math.max(computeS, memoryS) * 1000;
  }
}
