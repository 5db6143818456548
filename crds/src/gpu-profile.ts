/**
 * GpuProfile: measured latency coefficients of one serving engine on one GPU model, cluster-scoped, written by
 * `npm run calibrate` and read by the operator's serving planner (docs/latency-model.md).
 *
 * Why a resource and not a ConfigMap: the planner trusts these numbers to size fleets, so a typo (a negative
 * bandwidth, a GPU model the catalog lacks, an efficiency above 1) must fail at `kubectl apply`, which the API
 * server's schema and CEL rules give and a ConfigMap's string does not; the operator also watches it and re-plans
 * when a profile changes. Cluster-scoped because a GPU's speed is a fact of the cluster, not of a namespace: every
 * ServingDeployment on that GPU model plans with the same profile, and the deployment's status names it.
 *
 * Every coefficient is optional: what a profile leaves out comes from the shipped defaults of its GPU model
 * (common/src/hardware/gpu-profiles.ts). Field names are those of LatencyCoefficients
 * (common/src/models/latency.ts), so the reader maps them one to one.
 */
import { Type, type Static } from "@sinclair/typebox";
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { ConditionsSchema } from "./conditions.js";
import { StringEnum, cel } from "./schema-helpers.js";
import { GpuModels } from "./topology.js";

const positive = (description: string, maximum?: number) =>
  Type.Optional(Type.Number({ exclusiveMinimum: 0, ...(maximum ? { maximum } : {}), description }));
const fraction = (description: string) => Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description }));
const atLeastZero = (description: string, maximum: number) =>
  Type.Optional(Type.Number({ minimum: 0, maximum, description }));

export const GpuProfileCoefficientsSchema = Type.Object({
  achievedTflops: positive("Dense bf16 GEMM rate reached by large GEMMs, TFLOP/s per GPU.", 100_000),
  achievedHbmGBps: positive("Rate at which GEMMs stream weights from HBM, GB/s per GPU.", 100_000),
  kvReadGBps: positive("Rate at which decode attention streams the KV cache, GB/s per GPU.", 100_000),
  attentionTflops: positive("Prefill (FlashAttention) rate over the causal pairs, TFLOP/s per GPU.", 100_000),
  rooflineSharpness: Type.Optional(
    Type.Number({
      minimum: 1,
      maximum: 64,
      description:
        "p of the smoothed roofline (t_mem^p + t_compute^p)^(1/p) of one GEMM: 1 adds the two, large p is the plain max.",
    }),
  ),
  nonGemmGBps: positive(
    "Rate of the element-wise kernels (norms, RoPE, SiLU, residual adds) over their activation bytes, GB/s.",
    100_000,
  ),
  allReduceBusGBps: positive("Ring all-reduce bus bandwidth inside a node, GB/s per GPU.", 100_000),
  allReduceLatencyUs: positive("Fixed cost of one all-reduce, microseconds.", 10_000),
  p2pNvlinkGBps: positive("Point-to-point bandwidth for PP hand-offs and same-node KV transfers, GB/s.", 100_000),
  tpOverheadPerRank: atLeastZero(
    "GPU work of a TP rank grows by this fraction per extra rank: work/TP × (1 + a·(TP−1)) (published TP scaling, docs/latency-model.md).",
    4,
  ),
  memoryUtilization: fraction("Share of HBM the engine may use."),
  activationReserveGiB: atLeastZero("HBM kept for activations and workspace per GPU, GiB.", 1024),
});
export type GpuProfileCoefficients = Static<typeof GpuProfileCoefficientsSchema>;

/** The engine's own cost per iteration: launches, scheduling, sampling. Engines differ here, GPUs less. */
export const GpuProfileEngineSchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 128,
      description: "Engine the profile was measured with, e.g. gpufleet-reference-worker.",
    }),
    imagePrefix: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 1024,
        description:
          "Applies to deployments whose spec.engine.image starts with this; unset: to any engine on the GPU model without a more specific profile.",
      }),
    ),
    decodeIterationMs: atLeastZero("Fixed GPU-side cost of one decode step (graph launch gaps, sampling), ms.", 10_000),
    prefillIterationMs: atLeastZero("Fixed GPU-side cost of one prefill step, ms.", 10_000),
    perLayerOverheadUs: atLeastZero("Launch gaps per transformer layer per forward pass, microseconds.", 10_000),
    attentionUsPerSequence: atLeastZero(
      "Attention's fixed cost per sequence per layer, whatever its context, microseconds.",
      10_000,
    ),
    prefillHostMs: atLeastZero(
      "Host time to issue one eager prefill step (the step takes at least this), ms.",
      100_000,
    ),
    prefillHostMsPerSequence: atLeastZero("Host time per prompt in an eager prefill step, ms.", 100_000),
    prefillGraphMaxTokens: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000,
        description:
          "Prefill steps of at most this many new tokens (and prefillGraphMaxPrompts prompts), none over a cached prefix, replay a CUDA graph: no host floor, tokens padded to a multiple of prefillGraphTokenStep. 0: always eager.",
      }),
    ),
    prefillGraphTokenStep: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1_000_000, description: "Token bucket of the prefill graphs (default 1)." }),
    ),
    prefillGraphMaxPrompts: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 100_000, description: "Prompts one prefill graph holds." }),
    ),
  },
  { description: "The engine the profile was measured with, and its fixed costs per iteration." },
);
export type GpuProfileEngine = Static<typeof GpuProfileEngineSchema>;

export const GpuProfileSpecSchema = Type.Object(
  {
    gpuModel: StringEnum(GpuModels, { description: "GPU model (catalog key) the profile was measured on." }),
    engine: GpuProfileEngineSchema,
    coefficients: Type.Object(GpuProfileCoefficientsSchema.properties, {
      default: {},
      description: "Latency model coefficients; any left out come from the GPU model's shipped defaults.",
    }),
    measured: Type.Optional(
      Type.Object(
        {
          gpuName: Type.Optional(Type.String({ maxLength: 256, description: "The device's own name (nvidia-smi)." })),
          matmulTflops: positive("8192^3 bf16 matmul on random data, same run.", 100_000),
          copyGBps: positive("Device-to-device copy, bytes read + written, same run.", 100_000),
          at: Type.Optional(Type.String({ format: "date-time", description: "When the sweep ran." })),
        },
        { description: "The ceilings measured in the same run as the sweep." },
      ),
    ),
    calibration: Type.Optional(
      Type.Object(
        {
          points: Type.Integer({ minimum: 1, description: "Swept steps the fit was checked against." }),
          maxErrorPercent: Type.Number({
            minimum: 0,
            description: "Largest |model − measured| / measured over those points.",
          }),
          meanErrorPercent: Type.Optional(
            Type.Number({ minimum: 0, description: "Mean |model − measured| / measured over those points." }),
          ),
          source: Type.Optional(Type.String({ maxLength: 1024, description: "Where the raw sweep is kept." })),
        },
        { description: "How well the fitted model matches the sweep it was fitted on." },
      ),
    ),
  },
  cel({
    rule: "!has(self.engine.prefillHostMsPerSequence) || has(self.engine.prefillHostMs)",
    message: "engine.prefillHostMsPerSequence needs engine.prefillHostMs",
    fieldPath: ".engine",
  }),
);
export type GpuProfileSpec = Static<typeof GpuProfileSpecSchema>;

export const GpuProfileStatusSchema = Type.Object({
  observedGeneration: Type.Optional(
    Type.Integer({ description: "The metadata.generation this status was computed for." }),
  ),
  conditions: Type.Optional(ConditionsSchema),
});
export type GpuProfileStatus = Static<typeof GpuProfileStatusSchema>;

export interface GpuProfile {
  apiVersion: "gpufleet.io/v1alpha1";
  kind: "GpuProfile";
  metadata: V1ObjectMeta;
  spec: GpuProfileSpec;
  status?: GpuProfileStatus;
}

export const GpuProfileNames = {
  kind: "GpuProfile",
  listKind: "GpuProfileList",
  plural: "gpuprofiles",
  singular: "gpuprofile",
  shortNames: ["gpuprof"],
} as const;
