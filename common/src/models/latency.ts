/**
 * First-principles latency model of one forward pass (a prefill batch, a decode step, or a Sarathi mixed
 * chunk) of a transformer split over TP×PP GPUs, and the memory it needs.
 *
 * Formulas and where they come from:
 * - FLOPs: 2 FLOPs per parameter per new token for the dense layers (Kaplan et al. 2020, "Scaling Laws", §2.1),
 *   plus attention 4·h FLOPs per (query, key) pair per layer (QKᵀ and A·V, 2·h each; causal prefill attends
 *   s(s+1)/2 pairs), plus the LM head 2·h·vocab for each sampled token. Same accounting as Pope et al. 2022,
 *   "Efficiently Scaling Transformer Inference", §2.
 * - Time of a stage is a roofline (Williams et al. 2009, "Roofline") applied per operator class, then summed:
 *   the dense GEMMs take max(dense FLOPs / (TP · achieved TFLOP/s), weight bytes / (TP · achieved HBM GB/s)) and
 *   attention takes max(attention FLOPs / FLOP/s, (KV read + KV written) bytes / HBM B/s). They are separate
 *   kernels that run one after the other in every layer, so one cannot hide under the other: in a Sarathi mixed
 *   iteration the decodes' KV reads (paged attention, memory-bound) are paid on top of the prompt chunk's GEMMs
 *   (compute-bound). One roofline over the whole pass would let those KV reads overlap the chunk's GEMMs and
 *   make mixing decodes into prefill chunks almost free. DistServe §3 uses the same split: prefill is
 *   compute-bound, decode memory-bound; its latency model (§4 and appendix) also keeps the GEMM and attention
 *   terms separate.
 * - Tensor parallelism (Megatron-LM, Shoeybi et al. 2019 §3): two all-reduces per layer of tokens·h activations;
 *   a ring all-reduce moves 2·(TP−1)/TP of the message per GPU (Patarasuk & Yuan 2009) plus a fixed latency.
 * - Pipeline parallelism (GPipe/Megatron, and DistServe §3.1): layers split evenly over PP stages; a request
 *   sees the sum of stage times plus a hand-off of tokens·h activations per boundary; an instance can start a
 *   new batch every bottleneck-stage time, which is how PP buys throughput and TP buys latency.
 * - KV bytes per token: 2·layers·kvHeads·headDim·dtypeBytes (see model-shapes.ts).
 *
 * Coefficients: datasheet peaks from ../hardware/catalog.ts times achievable fractions (60% of peak tensor
 * throughput for large GEMMs, 80% of HBM bandwidth, 70% of NVLink for all-reduce bus bandwidth, 10 µs per
 * collective, 15 µs kernel-launch overhead per layer). These fractions are assumptions typical of published
 * measurements, not fitted; `LatencyCoefficientOverrides` replaces any of them with measured numbers.
 *
 * Anchor: DistServe (§4.1, Fig. 6 fit on A100) puts a 512-token OPT-13B prefill at ≈66 ms at TP=1. This model
 * gives ≈70 ms (see latency.test.ts): 12.9 TFLOP at 187 TFLOP/s achieved. The ~6% gap is our 60% MFU
 * assumption; the fit implies ≈63% for this shape.
 */
import { GPU_CATALOG, gpuSpec } from "../hardware/catalog.js";
import type { DerivedModel } from "./model-shapes.js";

/** Achieved (not peak) per-GPU numbers the model divides by. All can be overridden by measured profiles. */
export interface LatencyCoefficients {
  gpuModel: string;
  memoryGiB: number;
  /** Dense fp16/bf16 GEMM throughput actually reached at large batch, per GPU. */
  achievedTflops: number;
  /** Tensor-core speed-up of fp8 over bf16 (2 on Hopper; 1 on A100, which runs fp8 weights weight-only). */
  fp8ComputeSpeedup: number;
  achievedHbmGBps: number;
  /** Ring all-reduce bus bandwidth inside a node (NVLink), per GPU. */
  allReduceBusGBps: number;
  /** Fixed cost of one all-reduce (launch + synchronisation). */
  allReduceLatencyUs: number;
  /** Point-to-point NVLink bandwidth for PP hand-offs and same-node KV transfers, per GPU pair. */
  p2pNvlinkGBps: number;
  /** Launch/framework overhead per transformer layer per forward pass. */
  perLayerOverheadUs: number;
  /** Share of HBM the serving engine may use (vLLM's gpu_memory_utilization). */
  memoryUtilization: number;
  /** HBM kept for activations and workspace per GPU. */
  activationReserveGiB: number;
  /** Fraction of a NIC's line rate a KV or activation transfer reaches. */
  nicEfficiency: number;
}

export type LatencyCoefficientOverrides = Readonly<Record<string, Partial<Omit<LatencyCoefficients, "gpuModel">>>>;

/** Assumed fractions of datasheet peaks (see the file comment). */
export const DEFAULT_EFFICIENCY = {
  compute: 0.6,
  hbm: 0.8,
  allReduce: 0.7,
  p2p: 0.8,
  allReduceLatencyUs: 10,
  perLayerOverheadUs: 15,
  memoryUtilization: 0.9,
  activationReserveGiB: 2,
  nic: 0.8,
} as const;

const FP8_SPEEDUP: Readonly<Record<string, number>> = { "H100-80GB": 2, "H200-141GB": 2 };

/** Coefficients for a GPU model: catalog peaks × default efficiencies, then any measured overrides on top. */
export function latencyCoefficients(gpuModel: string, overrides?: LatencyCoefficientOverrides): LatencyCoefficients {
  const spec = gpuSpec(gpuModel);
  const base: LatencyCoefficients = {
    gpuModel: spec.model,
    memoryGiB: spec.memoryGiB,
    achievedTflops: spec.peakTflops * DEFAULT_EFFICIENCY.compute,
    fp8ComputeSpeedup: FP8_SPEEDUP[spec.model] ?? 1,
    achievedHbmGBps: spec.hbmBandwidthGBps * DEFAULT_EFFICIENCY.hbm,
    allReduceBusGBps: spec.nvlinkGBpsPerDirection * DEFAULT_EFFICIENCY.allReduce,
    allReduceLatencyUs: DEFAULT_EFFICIENCY.allReduceLatencyUs,
    p2pNvlinkGBps: spec.nvlinkGBpsPerDirection * DEFAULT_EFFICIENCY.p2p,
    perLayerOverheadUs: DEFAULT_EFFICIENCY.perLayerOverheadUs,
    memoryUtilization: DEFAULT_EFFICIENCY.memoryUtilization,
    activationReserveGiB: DEFAULT_EFFICIENCY.activationReserveGiB,
    nicEfficiency: DEFAULT_EFFICIENCY.nic,
  };
  const merged = { ...base, ...(overrides?.[spec.model] ?? {}) };
  for (const [key, value] of Object.entries(merged)) {
    if (key !== "gpuModel" && !(typeof value === "number" && Number.isFinite(value) && value > 0)) {
      throw new RangeError(`latency coefficient ${key} for ${spec.model} must be a positive number, got ${String(value)}`);
    }
  }
  return merged;
}

/** Known GPU models (catalog keys). */
export const KNOWN_GPU_MODELS = Object.keys(GPU_CATALOG);

export interface Parallelism {
  tp: number;
  pp: number;
}

/**
 * One forward pass over a batch, described by the counts the formulas need:
 * - prefill of prompts sᵢ: newTokens Σsᵢ, attentionPairs Σsᵢ(sᵢ+1)/2, kvReadTokens 0, sequences n;
 * - decode step over contexts cᵢ: newTokens n, attentionPairs Σcᵢ, kvReadTokens Σcᵢ, sequences n;
 * - a prefill chunk of c tokens after p done: newTokens c, attentionPairs c·p + c(c+1)/2, kvReadTokens p.
 */
export interface ForwardBatch {
  newTokens: number;
  attentionPairs: number;
  kvReadTokens: number;
  /** Sequences that sample a token in this pass (LM-head rows). */
  sequences: number;
}

/** Where an instance's GPUs are, which sets the link its PP hand-offs use. */
export interface InstanceLinks {
  /** All stages on one node: hand-offs over NVLink. Otherwise over the NICs. */
  sameNode: boolean;
  /** Scale-out NIC bandwidth per GPU (nicCount·nicBandwidthGbps/8/gpuCount). */
  nicGBpsPerGpu: number;
}

export interface ForwardLatency {
  /** First stage start to last stage end: what one request waits. */
  totalMs: number;
  /** Slowest stage plus its hand-off: the interval at which a pipelined instance can accept the next batch. */
  bottleneckStageMs: number;
}

/** Precomputed per-instance constants so the simulator's inner loop is a handful of multiplications. */
export interface InstanceLatencyModel {
  readonly parallelism: Parallelism;
  forward(batch: ForwardBatch): ForwardLatency;
}

const ACTIVATION_BYTES = 2; // activations stay in 16-bit even for fp8 weights

export function instanceLatencyModel(
  model: DerivedModel,
  coeffs: LatencyCoefficients,
  parallelism: Parallelism,
  links: InstanceLinks = { sameNode: true, nicGBpsPerGpu: 50 },
): InstanceLatencyModel {
  const { tp, pp } = parallelism;
  const { layers, hiddenSize: h, vocabSize, kvHeads } = model.shape;
  const bigLayers = Math.ceil(layers / pp);
  const lastLayers = Math.floor(layers / pp);
  const flopsPerSec = coeffs.achievedTflops * 1e12 * (model.shape.dtype === "fp8" ? coeffs.fp8ComputeSpeedup : 1) * tp;
  const hbmBytesPerMs = coeffs.achievedHbmGBps * 1e6 * tp;
  // KV heads are split over TP; beyond kvHeads ranks each rank holds a replica.
  const kvShards = Math.min(tp, kvHeads);
  const kvBytesPerTokenLayer = (model.kvBytesPerToken / layers) * (tp / kvShards);
  const layerWeightBytes = model.layerParams * model.dtypeBytes;
  const headWeightBytes = vocabSize * h * model.dtypeBytes;
  const allReduceBytesPerMs = coeffs.allReduceBusGBps * 1e6;
  const allReduceLatencyMs = coeffs.allReduceLatencyUs / 1000;
  const overheadMsPerLayer = coeffs.perLayerOverheadUs / 1000;
  const handoffBytesPerMs =
    (links.sameNode ? coeffs.p2pNvlinkGBps : links.nicGBpsPerGpu * coeffs.nicEfficiency * tp) * 1e6;

  const stageMs = (stageLayers: number, withHead: boolean, batch: ForwardBatch): number => {
    // Dense GEMMs (QKV/O projections, MLP, LM head): weights streamed once per pass.
    const gemmFlops = stageLayers * 2 * model.layerParams * batch.newTokens + (withHead ? 2 * h * vocabSize * batch.sequences : 0);
    const gemmBytes = stageLayers * layerWeightBytes + (withHead ? headWeightBytes : 0);
    const gemmMs = Math.max((gemmFlops / flopsPerSec) * 1000, gemmBytes / hbmBytesPerMs);
    // Attention: QKᵀ and A·V over the pairs, reading the cached KV and writing the new tokens' KV.
    const attentionFlops = stageLayers * 4 * h * batch.attentionPairs;
    const kvBytes = stageLayers * kvBytesPerTokenLayer * (batch.kvReadTokens + batch.newTokens);
    const attentionMs = Math.max((attentionFlops / flopsPerSec) * 1000, kvBytes / hbmBytesPerMs);
    const allReduceMs =
      tp > 1
        ? stageLayers * 2 * (allReduceLatencyMs + ((2 * (tp - 1)) / tp) * ((batch.newTokens * h * ACTIVATION_BYTES) / allReduceBytesPerMs))
        : 0;
    return gemmMs + attentionMs + allReduceMs + stageLayers * overheadMsPerLayer;
  };

  return {
    parallelism,
    forward(batch: ForwardBatch): ForwardLatency {
      const handoffMs = pp > 1 ? allReduceLatencyMs + (batch.newTokens * h * ACTIVATION_BYTES) / handoffBytesPerMs : 0;
      const big = stageMs(bigLayers, pp === 1, batch);
      if (pp === 1) return { totalMs: big, bottleneckStageMs: big };
      const last = stageMs(lastLayers, true, batch);
      const bigStages = layers % pp === 0 ? pp - 1 : layers % pp;
      const midStages = pp - 1 - bigStages;
      const totalMs = bigStages * big + midStages * stageMs(lastLayers, false, batch) + last + (pp - 1) * handoffMs;
      return { totalMs, bottleneckStageMs: Math.max(big, last) + handoffMs };
    },
  };
}

/** Batch shape of a prefill over the given prompt lengths. */
export function prefillBatch(promptTokens: readonly number[]): ForwardBatch {
  let newTokens = 0;
  let attentionPairs = 0;
  for (const s of promptTokens) {
    newTokens += s;
    attentionPairs += (s * (s + 1)) / 2;
  }
  return { newTokens, attentionPairs, kvReadTokens: 0, sequences: promptTokens.length };
}

/** Batch shape of one decode step of `sequences` requests holding `contextTokens` tokens of KV in total. */
export function decodeBatch(sequences: number, contextTokens: number): ForwardBatch {
  return { newTokens: sequences, attentionPairs: contextTokens, kvReadTokens: contextTokens, sequences };
}

/** Latency of prefilling one batch of prompts on a TP×PP instance. */
export function prefillLatencyMs(
  model: DerivedModel,
  gpuModel: string,
  parallelism: Parallelism,
  promptTokens: readonly number[],
  overrides?: LatencyCoefficientOverrides,
): ForwardLatency {
  return instanceLatencyModel(model, latencyCoefficients(gpuModel, overrides), parallelism).forward(prefillBatch(promptTokens));
}

/** Latency of one decode step (one token for every running request) on a TP×PP instance. */
export function decodeStepLatencyMs(
  model: DerivedModel,
  gpuModel: string,
  parallelism: Parallelism,
  contextTokens: readonly number[],
  overrides?: LatencyCoefficientOverrides,
): ForwardLatency {
  const total = contextTokens.reduce((sum, c) => sum + c, 0);
  return instanceLatencyModel(model, latencyCoefficients(gpuModel, overrides), parallelism).forward(
    decodeBatch(contextTokens.length, total),
  );
}

/**
 * Prefill token count past which batching more prompts buys no throughput (DistServe §3.1, "L_m"): the
 * roofline ridge where weight reads stop dominating, dtypeBytes·FLOP/s ÷ (2·HBM B/s), times 4 so the batch is
 * well into the compute-bound regime; rounded up to 64 and kept within [256, 8192].
 */
export function saturatingPrefillTokens(model: DerivedModel, coeffs: LatencyCoefficients): number {
  const speed = model.shape.dtype === "fp8" ? coeffs.fp8ComputeSpeedup : 1;
  const ridge = (model.dtypeBytes * coeffs.achievedTflops * 1e12 * speed) / (2 * coeffs.achievedHbmGBps * 1e9);
  return Math.min(8192, Math.max(256, Math.ceil((4 * ridge) / 64) * 64));
}

export interface InstanceMemory {
  weightBytesPerGpu: number;
  /** KV cache the whole instance can hold, in tokens (0 when weights do not fit). */
  kvCapacityTokens: number;
}

/** Memory of a TP×PP instance: weights split over all GPUs, the rest of the usable HBM holds KV. */
export function instanceMemory(model: DerivedModel, coeffs: LatencyCoefficients, parallelism: Parallelism): InstanceMemory {
  const { tp, pp } = parallelism;
  const gib = 2 ** 30;
  // The embedding and LM head sit on the first and last stages; charge the larger stage one of them.
  const weightBytesPerGpu =
    (Math.ceil(model.shape.layers / pp) * model.layerParams * model.dtypeBytes +
      model.shape.vocabSize * model.shape.hiddenSize * model.dtypeBytes) /
    tp;
  const freePerGpu = coeffs.memoryGiB * gib * coeffs.memoryUtilization - coeffs.activationReserveGiB * gib - weightBytesPerGpu;
  if (freePerGpu <= 0) return { weightBytesPerGpu, kvCapacityTokens: 0 };
  const kvShards = Math.min(tp, model.shape.kvHeads);
  const kvCapacityTokens = Math.floor((freePerGpu * kvShards * pp) / model.kvBytesPerToken);
  return { weightBytesPerGpu, kvCapacityTokens };
}
