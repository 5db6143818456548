/**
 * GPU hardware catalog: the datasheet numbers the latency and step-time models start from.
 *
 * Sources (dense, no sparsity): NVIDIA H100 Tensor Core GPU datasheet (SXM5: 989 TFLOP/s BF16, 3.35 TB/s HBM3,
 * NVLink 900 GB/s total), NVIDIA H200 datasheet (989 TFLOP/s, 4.8 TB/s HBM3e, 141 GB), NVIDIA A100 datasheet
 * (SXM4: 312 TFLOP/s BF16, 80GB at 2,039 GB/s, 40GB at 1,555 GB/s, NVLink 600 GB/s total), NVIDIA A10 Tensor Core GPU
 * datasheet (125 TFLOP/s FP16/BF16 dense, 24 GB GDDR6 at 600 GB/s, no NVLink: PCIe Gen4 x16, 64 GB/s total, so its
 * "NVLink" entry below is PCIe's 32 GB/s per direction; the A10 is the GPU of the Llumnix artifact's cluster, where
 * LLaMA-7B's KV cache, not compute, bounds a batch).
 * NVLink figures here are per direction (half the datasheet's bidirectional total), since a ring all-reduce
 * sends and receives at once and each direction carries half the traffic.
 * Achievable fractions of peak (MFU/MBU) are not datasheet facts: they live with the models that use them and can
 * be replaced by measured profiles.
 */

export interface GpuSpec {
  /** Catalog key, also the value of the gpufleet.io/gpu-model node label. */
  model: string;
  memoryGiB: number;
  /** Peak dense BF16/FP16 tensor throughput. */
  peakTflops: number;
  hbmBandwidthGBps: number;
  /** NVLink bandwidth per GPU, per direction. */
  nvlinkGBpsPerDirection: number;
}

export const GPU_CATALOG = {
  "H100-80GB": {
    model: "H100-80GB",
    memoryGiB: 80,
    peakTflops: 989,
    hbmBandwidthGBps: 3350,
    nvlinkGBpsPerDirection: 450,
  },
  "H200-141GB": {
    model: "H200-141GB",
    memoryGiB: 141,
    peakTflops: 989,
    hbmBandwidthGBps: 4800,
    nvlinkGBpsPerDirection: 450,
  },
  "A100-80GB": {
    model: "A100-80GB",
    memoryGiB: 80,
    peakTflops: 312,
    hbmBandwidthGBps: 2039,
    nvlinkGBpsPerDirection: 300,
  },
  "A100-40GB": {
    model: "A100-40GB",
    memoryGiB: 40,
    peakTflops: 312,
    hbmBandwidthGBps: 1555,
    nvlinkGBpsPerDirection: 300,
  },
  "A10-24GB": { model: "A10-24GB", memoryGiB: 24, peakTflops: 125, hbmBandwidthGBps: 600, nvlinkGBpsPerDirection: 32 },
} as const satisfies Record<string, GpuSpec>;
export type GpuModel = keyof typeof GPU_CATALOG;

export class UnknownGpuModelError extends Error {
  override name = "UnknownGpuModelError";
  constructor(readonly gpuModel: string) {
    super(`unknown GPU model "${gpuModel}"; known: ${Object.keys(GPU_CATALOG).join(", ")}`);
  }
}

export function gpuSpec(model: string): GpuSpec {
  const spec = (GPU_CATALOG as Record<string, GpuSpec>)[model];
  if (!spec) throw new UnknownGpuModelError(model);
  return spec;
}
