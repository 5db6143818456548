/**
 * Transformer model shapes and the quantities the latency model derives from them.
 *
 * Sources: OPT shapes from Zhang et al., "OPT: Open Pre-trained Transformer Language Models" (2022), Table 1
 * (layers, heads, d_model; FFN = 4·d_model; 2,048-token context; 50,272-token vocabulary). Llama-3 shapes from
 * Meta's published model configs for Llama-3-8B and Llama-3-70B (grouped-query attention with 8 KV heads,
 * gated SwiGLU MLP, 128,256-token vocabulary, 8,192-token context). LLaMA-7B from Touvron et al., "LLaMA: Open and
 * Efficient Foundation Language Models" (2023), Table 2 (6.7B parameters, dimension 4,096, 32 heads, 32 layers) and
 * §2.2/the released config (SwiGLU MLP of width 11,008, 32,000-token vocabulary, 2,048-token context, no GQA): the
 * model of the Llumnix artifact (OSDI'24 §6.1).
 *
 * Parameter count per layer (Kaplan et al. 2020 §2.1, extended for GQA and gated MLPs):
 *   attention: h·h (Q) + 2·h·kvHeads·headDim (K, V) + h·h (O); MLP: 2·h·ffn (standard) or 3·h·ffn (gated).
 * KV cache bytes per token (DistServe §4.3 / vLLM): 2 (K and V) · layers · kvHeads · headDim · dtypeBytes.
 */

export const Dtype = { bf16: "bf16", fp16: "fp16", fp8: "fp8" } as const;
export type Dtype = (typeof Dtype)[keyof typeof Dtype];

export const DTYPE_BYTES: Readonly<Record<Dtype, number>> = { bf16: 2, fp16: 2, fp8: 1 };

/** A model as the planner sees it. At least one of paramsBillions, weightBytes or intermediateSize is needed. */
export interface ModelShape {
  name: string;
  layers: number;
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  dtype: Dtype;
  paramsBillions?: number;
  weightBytes?: number;
  /** MLP inner width; when given with gatedMlp the per-layer parameter count is computed exactly. */
  intermediateSize?: number;
  /** SwiGLU-style MLP with three matrices (Llama) instead of two (OPT). Default false. */
  gatedMlp?: boolean;
  /** Longest sequence (prompt + output) the model accepts; default 4,096. */
  maxContextTokens?: number;
}

/** Numbers every latency and memory formula uses, computed once per model. */
export interface DerivedModel {
  shape: ModelShape;
  dtypeBytes: number;
  headDim: number;
  totalParams: number;
  /** Parameters in one transformer block (the part that is split by PP and TP). */
  layerParams: number;
  weightBytes: number;
  kvBytesPerToken: number;
  maxContextTokens: number;
}

export class InvalidModelShapeError extends Error {
  override name = "InvalidModelShapeError";
  constructor(
    readonly modelName: string,
    message: string,
  ) {
    super(`model ${modelName || "(unnamed)"}: ${message}`);
  }
}

const positiveInteger = (value: unknown): boolean => typeof value === "number" && Number.isInteger(value) && value > 0;

/** Validates a shape and derives parameter, weight and KV sizes; throws InvalidModelShapeError naming the field. */
export function deriveModel(shape: ModelShape): DerivedModel {
  const fail = (message: string): never => {
    throw new InvalidModelShapeError(shape.name, message);
  };
  for (const field of ["layers", "hiddenSize", "heads", "kvHeads", "vocabSize"] as const) {
    if (!positiveInteger(shape[field])) fail(`${field} must be a positive integer, got ${String(shape[field])}`);
  }
  if (!(shape.dtype in DTYPE_BYTES))
    fail(`dtype must be one of ${Object.keys(DTYPE_BYTES).join(", ")}, got "${String(shape.dtype)}"`);
  if (shape.hiddenSize % shape.heads !== 0)
    fail(`hiddenSize ${shape.hiddenSize} is not a multiple of heads ${shape.heads}`);
  if (shape.heads % shape.kvHeads !== 0) fail(`heads ${shape.heads} is not a multiple of kvHeads ${shape.kvHeads}`);
  if (shape.paramsBillions !== undefined && !(shape.paramsBillions > 0))
    fail(`paramsBillions must be > 0, got ${shape.paramsBillions}`);
  if (shape.weightBytes !== undefined && !(shape.weightBytes > 0))
    fail(`weightBytes must be > 0, got ${shape.weightBytes}`);
  if (shape.intermediateSize !== undefined && !positiveInteger(shape.intermediateSize)) {
    fail(`intermediateSize must be a positive integer, got ${shape.intermediateSize}`);
  }
  if (shape.maxContextTokens !== undefined && !positiveInteger(shape.maxContextTokens)) {
    fail(`maxContextTokens must be a positive integer, got ${shape.maxContextTokens}`);
  }
  const dtypeBytes = DTYPE_BYTES[shape.dtype];
  const h = shape.hiddenSize;
  const headDim = h / shape.heads;
  const kvDim = shape.kvHeads * headDim;
  const embeddingParams = shape.vocabSize * h;

  let totalParams: number;
  if (shape.paramsBillions !== undefined) totalParams = shape.paramsBillions * 1e9;
  else if (shape.weightBytes !== undefined) totalParams = shape.weightBytes / dtypeBytes;
  else if (shape.intermediateSize !== undefined) {
    totalParams =
      shape.layers * exactLayerParams(h, kvDim, shape.intermediateSize, shape.gatedMlp ?? false) + embeddingParams;
  } else {
    return fail("needs one of paramsBillions, weightBytes or intermediateSize to size the weights");
  }
  const layerParams =
    shape.intermediateSize !== undefined
      ? exactLayerParams(h, kvDim, shape.intermediateSize, shape.gatedMlp ?? false)
      : Math.max(0, totalParams - embeddingParams) / shape.layers;
  if (!(layerParams > 0)) fail(`parameter count ${totalParams} leaves nothing for the ${shape.layers} layers`);

  return {
    shape,
    dtypeBytes,
    headDim,
    totalParams,
    layerParams,
    weightBytes: shape.weightBytes ?? totalParams * dtypeBytes,
    kvBytesPerToken: 2 * shape.layers * shape.kvHeads * headDim * dtypeBytes,
    maxContextTokens: shape.maxContextTokens ?? 4096,
  };
}

function exactLayerParams(h: number, kvDim: number, ffn: number, gated: boolean): number {
  return 2 * h * h + 2 * h * kvDim + (gated ? 3 : 2) * h * ffn;
}

/** Public architecture numbers of the models the benchmark and samples use. */
export const MODEL_SHAPES = {
  "OPT-13B": {
    name: "OPT-13B",
    layers: 40,
    hiddenSize: 5120,
    heads: 40,
    kvHeads: 40,
    vocabSize: 50272,
    dtype: "fp16",
    paramsBillions: 12.85,
    intermediateSize: 20480,
    maxContextTokens: 2048,
  },
  "OPT-66B": {
    name: "OPT-66B",
    layers: 64,
    hiddenSize: 9216,
    heads: 72,
    kvHeads: 72,
    vocabSize: 50272,
    dtype: "fp16",
    paramsBillions: 65.7,
    intermediateSize: 36864,
    maxContextTokens: 2048,
  },
  "OPT-175B": {
    name: "OPT-175B",
    layers: 96,
    hiddenSize: 12288,
    heads: 96,
    kvHeads: 96,
    vocabSize: 50272,
    dtype: "fp16",
    paramsBillions: 174.6,
    intermediateSize: 49152,
    maxContextTokens: 2048,
  },
  "LLaMA-7B": {
    name: "LLaMA-7B",
    layers: 32,
    hiddenSize: 4096,
    heads: 32,
    kvHeads: 32,
    vocabSize: 32000,
    dtype: "fp16",
    paramsBillions: 6.74,
    intermediateSize: 11008,
    gatedMlp: true,
    maxContextTokens: 2048,
  },
  "Llama-3-8B": {
    name: "Llama-3-8B",
    layers: 32,
    hiddenSize: 4096,
    heads: 32,
    kvHeads: 8,
    vocabSize: 128256,
    dtype: "bf16",
    paramsBillions: 8.03,
    intermediateSize: 14336,
    gatedMlp: true,
    maxContextTokens: 8192,
  },
  "Llama-3-70B": {
    name: "Llama-3-70B",
    layers: 80,
    hiddenSize: 8192,
    heads: 64,
    kvHeads: 8,
    vocabSize: 128256,
    dtype: "bf16",
    paramsBillions: 70.6,
    intermediateSize: 28672,
    gatedMlp: true,
    maxContextTokens: 8192,
  },
} as const satisfies Record<string, ModelShape>;
export type KnownModel = keyof typeof MODEL_SHAPES;
