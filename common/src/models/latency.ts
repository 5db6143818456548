/**
 * Latency model of one forward pass (a prefill batch, a decode step, or a Sarathi mixed chunk) of a transformer
 * split over TP×PP GPUs, and the memory it needs. Calibrated on an H200 against the reference worker
 * (docs/latency-model.md has the structure, the fit and the error table; `npm run calibrate` refits it).
 *
 * Formulas and where they come from:
 * - FLOPs: 2 FLOPs per parameter per new token for the dense layers (Kaplan et al. 2020, "Scaling Laws", §2.1),
 *   plus attention 4·h FLOPs per (query, key) pair per layer (QKᵀ and A·V, 2·h each; causal prefill attends
 *   s(s+1)/2 pairs), plus the LM head 2·h·vocab for each sampled token. Same accounting as Pope et al. 2022,
 *   "Efficiently Scaling Transformer Inference", §2.
 * - Each operator class is its own kernel, run one after the other in every layer, so their times add (DistServe
 *   §3 and its appendix keep GEMM and attention apart too; in a Sarathi mixed iteration the decodes' KV reads are
 *   paid on top of the chunk's GEMMs):
 *   · dense GEMMs: a smoothed roofline (t_mem^p + t_compute^p)^(1/p) of weight bytes over the weight-stream rate
 *     and FLOPs over the GEMM rate. The plain max (p→∞) is what measurements contradict near the ridge point:
 *     there a GEMM neither streams at full bandwidth nor computes at full rate (the H200 sweep fits p≈2);
 *   · attention: decode streams the KV cache at its own measured rate; prefill attention (FlashAttention) runs
 *     at its own FLOP rate, below the GEMMs';
 *   · non-GEMM work: the element-wise kernels (RMSNorm, RoPE + KV write, SiLU·mul, residual adds) move about
 *     (10·h + 6·kvDim + 3·ffn) activations per token per layer; a decode step at batch 256 or a prefill of 8k
 *     tokens spends several percent there;
 *   · a fixed cost per iteration and per layer (launch gaps, sampling): the engine's, not the GPU's; and for an
 *     engine that issues prefill eagerly from Python, a host floor: the step takes at least the host's time.
 * - Tensor parallelism (Megatron-LM, Shoeybi et al. 2019 §3): two all-reduces per layer of tokens·h activations,
 *   a ring moving 2·(TP−1)/TP of the message per GPU (Patarasuk & Yuan 2009) plus a fixed latency; and each rank's
 *   share of the GPU work grows by a·(TP−1) (smaller, less efficient kernels and synchronisation), with `a` from
 *   published TP scaling of a real engine (docs/latency-model.md cites it). Before the calibration TP was modelled
 *   as almost perfect scaling, which published measurements contradict, most for decode.
 * - Pipeline parallelism (GPipe/Megatron, and DistServe §3.1): layers split evenly over PP stages; a request
 *   sees the sum of stage times plus a hand-off of tokens·h activations per boundary; an instance can start a
 *   new batch every bottleneck-stage time, which is how PP buys throughput and TP buys latency.
 * - KV bytes per token: 2·layers·kvHeads·headDim·dtypeBytes (see model-shapes.ts).
 *
 * Coefficients: H100 and H200 come from the calibrated profile (../hardware/gpu-profiles.ts), the others from
 * datasheet peaks times the assumed fractions below. A GpuProfile resource replaces any of them
 * (`LatencyCoefficientOverrides`).
 *
 * Anchor: DistServe (§4.1, Fig. 6 fit on A100) puts a 512-token OPT-13B prefill at ≈66 ms at TP=1; this model
 * gives ≈71 ms (latency.test.ts).
 */
import { GPU_CATALOG, gpuSpec, type GpuSpec } from "../hardware/catalog.js";
import { SHIPPED_GPU_PROFILES, type ShippedGpuProfile } from "../hardware/gpu-profiles.js";
import type { DerivedModel } from "./model-shapes.js";

/** Achieved (not peak) per-GPU numbers the model divides by, and the engine's fixed costs. */
export interface LatencyCoefficients {
  gpuModel: string;
  memoryGiB: number;
  /** Dense fp16/bf16 GEMM throughput reached by large GEMMs, per GPU. */
  achievedTflops: number;
  /** Tensor-core speed-up of fp8 over bf16 (2 on Hopper; 1 on A100, which runs fp8 weights weight-only). */
  fp8ComputeSpeedup: number;
  /** Rate at which the GEMMs stream weights. */
  achievedHbmGBps: number;
  /** Rate at which decode attention streams the KV cache. */
  kvReadGBps: number;
  /** Prefill attention's FLOP rate over the causal pairs. */
  attentionTflops: number;
  /** p of the smoothed GEMM roofline (t_mem^p + t_compute^p)^(1/p); 1 adds them, large p is the max. */
  rooflineSharpness: number;
  /** Rate of the element-wise kernels over the activations they read and write. */
  nonGemmGBps: number;
  /** Ring all-reduce bus bandwidth inside a node (NVLink), per GPU. */
  allReduceBusGBps: number;
  /** Fixed cost of one all-reduce (launch + synchronisation). */
  allReduceLatencyUs: number;
  /** Point-to-point NVLink bandwidth for PP hand-offs and same-node KV transfers, per GPU pair. */
  p2pNvlinkGBps: number;
  /** Each TP rank's GPU work is work/TP × (1 + tpOverheadPerRank·(TP−1)). */
  tpOverheadPerRank: number;
  /** Engine: launch gaps per transformer layer per forward pass. */
  perLayerOverheadUs: number;
  /**
   * Engine: attention's fixed cost per sequence per layer, whatever its context (a split-K decode kernel sized for
   * the longest context launches its programs for every sequence; measured ≈0.5 µs on the reference worker).
   */
  attentionUsPerSequence: number;
  /** Engine: fixed GPU-side cost of a decode step (graph launch, sampling). */
  decodeIterationMs: number;
  /** Engine: fixed GPU-side cost of a step with prompt tokens. */
  prefillIterationMs: number;
  /** Engine: host time to issue a step with prompt tokens; the step takes at least this (0: never host-bound). */
  prefillHostMs: number;
  /** Engine: host time per prompt in such a step. */
  prefillHostMsPerSequence: number;
  /**
   * Engine: prefill steps of at most this many new tokens (and prefillGraphMaxPrompts prompts), none with a cached
   * prefix, replay a CUDA graph: no host floor, their tokens padded up to a multiple of prefillGraphTokenStep
   * (0: every prefill step is issued eagerly).
   */
  prefillGraphMaxTokens: number;
  prefillGraphTokenStep: number;
  prefillGraphMaxPrompts: number;
  /** Share of HBM the serving engine may use (vLLM's gpu_memory_utilization). */
  memoryUtilization: number;
  /** HBM kept for activations and workspace per GPU. */
  activationReserveGiB: number;
  /** Fraction of a NIC's line rate a KV or activation transfer reaches. */
  nicEfficiency: number;
}

export type LatencyCoefficientOverrides = Readonly<Record<string, Partial<Omit<LatencyCoefficients, "gpuModel">>>>;

/**
 * Assumed fractions of datasheet peaks for GPUs without a calibrated profile (A100, A10), anchored to DistServe's
 * A100 fit (file comment). They keep the plain roofline (sharpness 8: within 0.1% of the max at the ridge's
 * distance these GPUs see): the calibrated sharpness was fitted together with the Hopper rates and does not
 * transfer without them. The TP overhead is an engine fact from published measurements and applies to all.
 */
export const DEFAULT_EFFICIENCY = {
  compute: 0.6,
  hbm: 0.8,
  attentionOfCompute: 0.6,
  allReduce: 0.7,
  p2p: 0.8,
  allReduceLatencyUs: 10,
  perLayerOverheadUs: 15,
  memoryUtilization: 0.9,
  activationReserveGiB: 2,
  nic: 0.8,
  rooflineSharpness: 8,
} as const;

const FP8_SPEEDUP: Readonly<Record<string, number>> = { "H100-80GB": 2, "H200-141GB": 2 };

/** Names of the coefficients that may be 0 (costs an engine need not have). */
const MAY_BE_ZERO = new Set([
  "tpOverheadPerRank",
  "perLayerOverheadUs",
  "attentionUsPerSequence",
  "decodeIterationMs",
  "prefillIterationMs",
  "prefillHostMs",
  "prefillHostMsPerSequence",
  "prefillGraphMaxTokens",
  "prefillGraphMaxPrompts",
  "activationReserveGiB",
]);

/**
 * Coefficients for a GPU model: its shipped calibrated profile where there is one (H100, H200), else catalog
 * peaks × default efficiencies; then any measured overrides (a GpuProfile) on top.
 */
export function latencyCoefficients(gpuModel: string, overrides?: LatencyCoefficientOverrides): LatencyCoefficients {
  const spec = gpuSpec(gpuModel);
  const shipped = SHIPPED_GPU_PROFILES[spec.model];
  const structure = SHIPPED_GPU_PROFILES["H200-141GB"]!;
  const hbm = spec.hbmBandwidthGBps * DEFAULT_EFFICIENCY.hbm;
  const base: LatencyCoefficients = {
    gpuModel: spec.model,
    memoryGiB: spec.memoryGiB,
    achievedTflops: spec.peakTflops * DEFAULT_EFFICIENCY.compute,
    fp8ComputeSpeedup: FP8_SPEEDUP[spec.model] ?? 1,
    achievedHbmGBps: hbm,
    kvReadGBps: hbm,
    attentionTflops: spec.peakTflops * DEFAULT_EFFICIENCY.compute * DEFAULT_EFFICIENCY.attentionOfCompute,
    rooflineSharpness: DEFAULT_EFFICIENCY.rooflineSharpness,
    nonGemmGBps: hbm,
    allReduceBusGBps: spec.nvlinkGBpsPerDirection * DEFAULT_EFFICIENCY.allReduce,
    allReduceLatencyUs: DEFAULT_EFFICIENCY.allReduceLatencyUs,
    p2pNvlinkGBps: spec.nvlinkGBpsPerDirection * DEFAULT_EFFICIENCY.p2p,
    tpOverheadPerRank: structure.coefficients.tpOverheadPerRank,
    perLayerOverheadUs: DEFAULT_EFFICIENCY.perLayerOverheadUs,
    attentionUsPerSequence: 0,
    decodeIterationMs: 0,
    prefillIterationMs: 0,
    prefillHostMs: 0,
    prefillHostMsPerSequence: 0,
    prefillGraphMaxTokens: 0,
    prefillGraphTokenStep: 1,
    prefillGraphMaxPrompts: 0,
    memoryUtilization: DEFAULT_EFFICIENCY.memoryUtilization,
    activationReserveGiB: DEFAULT_EFFICIENCY.activationReserveGiB,
    nicEfficiency: DEFAULT_EFFICIENCY.nic,
    ...(shipped ? shippedCoefficients(shipped, spec) : {}),
  };
  const merged = { ...base, ...(overrides?.[spec.model] ?? {}) };
  for (const [key, value] of Object.entries(merged)) {
    if (key === "gpuModel") continue;
    const ok =
      typeof value === "number" && Number.isFinite(value) && (value > 0 || (value === 0 && MAY_BE_ZERO.has(key)));
    if (!ok)
      throw new RangeError(
        `latency coefficient ${key} for ${spec.model} must be a ${MAY_BE_ZERO.has(key) ? "non-negative" : "positive"} number, got ${String(value)}`,
      );
  }
  if (merged.rooflineSharpness < 1)
    throw new RangeError(
      `latency coefficient rooflineSharpness for ${spec.model} must be at least 1, got ${merged.rooflineSharpness}`,
    );
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
  /** One pass as the engine runs it: a small prefill as its graph (padded), others with the host floor. */
  forward(batch: ForwardBatch): ForwardLatency;
  /** The same pass's GPU time alone, issued as one graph of exactly its shape: no host floor, no padding. */
  gpuForward(batch: ForwardBatch): ForwardLatency;
}

/**
 * The tokens of the prefill graph that runs `batch` (its new tokens rounded up to the engine's bucket), or
 * undefined where the engine issues it eagerly (a decode step, a chunk over a cached prefix, too large a step).
 */
export function prefillGraphTokens(coeffs: LatencyCoefficients, batch: ForwardBatch): number | undefined {
  const prefill = batch.newTokens > batch.sequences;
  if (!prefill || batch.kvReadTokens > 0 || batch.newTokens > coeffs.prefillGraphMaxTokens) return undefined;
  if (batch.sequences > coeffs.prefillGraphMaxPrompts) return undefined;
  return Math.ceil(batch.newTokens / coeffs.prefillGraphTokenStep) * coeffs.prefillGraphTokenStep;
}

const ACTIVATION_BYTES = 2; // activations stay in 16-bit even for fp8 weights

/** The GPU rates of a shipped profile (fractions of the datasheet) applied to one GPU's catalog entry. */
function shippedCoefficients(p: ShippedGpuProfile, spec: GpuSpec): Partial<LatencyCoefficients> {
  return {
    achievedTflops: p.fractionsOfDatasheet.gemm * spec.peakTflops,
    achievedHbmGBps: p.fractionsOfDatasheet.weightStream * spec.hbmBandwidthGBps,
    kvReadGBps: p.fractionsOfDatasheet.kvRead * spec.hbmBandwidthGBps,
    attentionTflops: p.fractionsOfDatasheet.attention * spec.peakTflops,
    nonGemmGBps: p.fractionsOfDatasheet.nonGemm * spec.hbmBandwidthGBps,
    ...p.coefficients,
    ...p.engine,
  };
}

/**
 * Activations the element-wise kernels of one layer read and write per token (elements): add+RMSNorm twice (4·h
 * each), RoPE over q and k with the KV write (2·(h + 2·kvDim) + 2·kvDim), SiLU·mul (3·ffn).
 */
export function nonGemmElementsPerTokenLayer(model: DerivedModel): number {
  const { hiddenSize: h, heads, kvHeads } = model.shape;
  const kvDim = (kvHeads * h) / heads;
  const mlpMatrices = model.shape.gatedMlp ? 3 : 2;
  const ffn =
    model.shape.intermediateSize ?? Math.max(0, (model.layerParams - 2 * h * h - 2 * h * kvDim) / (mlpMatrices * h));
  return 10 * h + 6 * kvDim + (model.shape.gatedMlp ? 3 : 2) * ffn;
}

/** (a^p + b^p)^(1/p) without overflow: the smoothed roofline of one kernel's memory and compute times. */
export function smoothRoofline(memoryMs: number, computeMs: number, p: number): number {
  const big = Math.max(memoryMs, computeMs);
  if (big === 0) return 0;
  const small = Math.min(memoryMs, computeMs);
  return big * (1 + (small / big) ** p) ** (1 / p);
}

const MEMO_COUNTS = 1 << 13; // 64 KiB a table: the planner builds a latency model per candidate configuration

/** f over non-negative integer counts, remembered below MEMO_COUNTS (a Float64Array, NaN = not yet computed). */
function memoByCount(f: (count: number) => number): (count: number) => number {
  let table: Float64Array | undefined;
  return (count) => {
    if (!(Number.isInteger(count) && count >= 0 && count < MEMO_COUNTS)) return f(count);
    table ??= new Float64Array(MEMO_COUNTS).fill(Number.NaN);
    const hit = table[count]!;
    if (!Number.isNaN(hit)) return hit;
    const value = f(count);
    table[count] = value;
    return value;
  };
}

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
  const p = coeffs.rooflineSharpness;
  // Each rank does 1/TP of the work, less efficiently the more ranks share it (published TP scaling).
  const tpWork = (1 + coeffs.tpOverheadPerRank * (tp - 1)) / tp;
  const fp8 = model.shape.dtype === "fp8" ? coeffs.fp8ComputeSpeedup : 1;
  const gemmFlopsPerMs = coeffs.achievedTflops * 1e9 * fp8;
  const attentionFlopsPerMs = coeffs.attentionTflops * 1e9;
  const weightBytesPerMs = coeffs.achievedHbmGBps * 1e6;
  const kvBytesPerMs = coeffs.kvReadGBps * 1e6;
  const nonGemmBytesPerMs = coeffs.nonGemmGBps * 1e6;
  // KV heads are split over TP; beyond kvHeads ranks each rank holds a replica.
  const kvShards = Math.min(tp, kvHeads);
  const kvBytesPerTokenLayer = (model.kvBytesPerToken / layers) * (tp / kvShards);
  const layerWeightBytes = model.layerParams * model.dtypeBytes;
  const headWeightBytes = vocabSize * h * model.dtypeBytes;
  const nonGemmBytesPerTokenLayer = nonGemmElementsPerTokenLayer(model) * ACTIVATION_BYTES;
  const allReduceBytesPerMs = coeffs.allReduceBusGBps * 1e6;
  const allReduceLatencyMs = coeffs.allReduceLatencyUs / 1000;
  const overheadMsPerLayer = coeffs.perLayerOverheadUs / 1000;
  const handoffBytesPerMs =
    (links.sameNode ? coeffs.p2pNvlinkGBps : links.nicGBpsPerGpu * coeffs.nicEfficiency * tp) * 1e6;

  // The smoothed roofline costs two powers; the simulator's inner loop asks for the same token and sequence counts
  // over and over, so each GEMM's time is remembered per count (counts past the table are computed each time).
  const layerGemm = memoByCount((tokens) =>
    smoothRoofline(layerWeightBytes / weightBytesPerMs, (2 * model.layerParams * tokens) / gemmFlopsPerMs, p),
  );
  const headGemm = memoByCount((rows) =>
    smoothRoofline(headWeightBytes / weightBytesPerMs, (2 * h * vocabSize * rows) / gemmFlopsPerMs, p),
  );

  const stageMs = (stageLayers: number, withHead: boolean, batch: ForwardBatch): number => {
    // Dense GEMMs (QKV/O projections, MLP), weights streamed once per pass; the LM head is its own GEMM.
    const layerGemmMs = layerGemm(batch.newTokens);
    const headMs = withHead ? headGemm(batch.sequences) : 0;
    // Attention: QKᵀ and A·V over the pairs, reading the cached KV and writing the new tokens' KV.
    const attentionMs =
      Math.max(
        (4 * h * batch.attentionPairs) / attentionFlopsPerMs,
        (kvBytesPerTokenLayer * (batch.kvReadTokens + batch.newTokens)) / kvBytesPerMs,
      ) +
      (batch.sequences * coeffs.attentionUsPerSequence) / 1000;
    const nonGemmMs = (nonGemmBytesPerTokenLayer * batch.newTokens) / nonGemmBytesPerMs;
    const allReduceMs =
      tp > 1
        ? stageLayers *
          2 *
          (allReduceLatencyMs +
            ((2 * (tp - 1)) / tp) * ((batch.newTokens * h * ACTIVATION_BYTES) / allReduceBytesPerMs))
        : 0;
    return (
      (stageLayers * (layerGemmMs + attentionMs + nonGemmMs) + headMs) * tpWork +
      allReduceMs +
      stageLayers * overheadMsPerLayer
    );
  };

  const iterationMs = (batch: ForwardBatch): number =>
    batch.newTokens > batch.sequences ? coeffs.prefillIterationMs : coeffs.decodeIterationMs;
  // An engine that issues prefill launches from the host cannot finish a step before the host has issued it.
  const hostFloorMs = (batch: ForwardBatch): number =>
    batch.newTokens > batch.sequences && coeffs.prefillHostMs > 0
      ? coeffs.prefillHostMs + coeffs.prefillHostMsPerSequence * batch.sequences
      : 0;

  const pass = (batch: ForwardBatch, floor: number): ForwardLatency => {
    const fixed = iterationMs(batch);
    const handoffMs = pp > 1 ? allReduceLatencyMs + (batch.newTokens * h * ACTIVATION_BYTES) / handoffBytesPerMs : 0;
    const big = stageMs(bigLayers, pp === 1, batch);
    if (pp === 1) {
      const total = Math.max(floor, big + fixed);
      return { totalMs: total, bottleneckStageMs: total };
    }
    const last = stageMs(lastLayers, true, batch);
    const bigStages = layers % pp === 0 ? pp - 1 : layers % pp;
    const midStages = pp - 1 - bigStages;
    const totalMs =
      bigStages * big + midStages * stageMs(lastLayers, false, batch) + last + (pp - 1) * handoffMs + fixed;
    return {
      totalMs: Math.max(floor, totalMs),
      bottleneckStageMs: Math.max(floor, Math.max(big, last) + handoffMs + fixed),
    };
  };

  return {
    parallelism,
    forward(batch: ForwardBatch): ForwardLatency {
      const graphTokens = prefillGraphTokens(coeffs, batch);
      if (graphTokens === undefined) return pass(batch, hostFloorMs(batch));
      // The padding is one more prompt in the graph's varlen attention: its own causal pairs.
      const pad = graphTokens - batch.newTokens;
      return pass(
        { ...batch, newTokens: graphTokens, attentionPairs: batch.attentionPairs + (pad * (pad + 1)) / 2 },
        0,
      );
    },
    gpuForward: (batch: ForwardBatch): ForwardLatency => pass(batch, 0),
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
  return instanceLatencyModel(model, latencyCoefficients(gpuModel, overrides), parallelism).forward(
    prefillBatch(promptTokens),
  );
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
export function instanceMemory(
  model: DerivedModel,
  coeffs: LatencyCoefficients,
  parallelism: Parallelism,
): InstanceMemory {
  const { tp, pp } = parallelism;
  const gib = 2 ** 30;
  // The embedding and LM head sit on the first and last stages; charge the larger stage one of them.
  const weightBytesPerGpu =
    (Math.ceil(model.shape.layers / pp) * model.layerParams * model.dtypeBytes +
      model.shape.vocabSize * model.shape.hiddenSize * model.dtypeBytes) /
    tp;
  const freePerGpu =
    coeffs.memoryGiB * gib * coeffs.memoryUtilization - coeffs.activationReserveGiB * gib - weightBytesPerGpu;
  if (freePerGpu <= 0) return { weightBytesPerGpu, kvCapacityTokens: 0 };
  const kvShards = Math.min(tp, model.shape.kvHeads);
  const kvCapacityTokens = Math.floor((freePerGpu * kvShards * pp) / model.kvBytesPerToken);
  return { weightBytesPerGpu, kvCapacityTokens };
}
