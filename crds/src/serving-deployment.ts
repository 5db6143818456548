/**
 * ServingDeployment: an LLM served under TTFT/TPOT SLOs. gpufleet plans separate prefill and decode pools
 * (DistServe) or one colocated pool, whichever gives more goodput per GPU, and runs them.
 *
 * No scale subresource: the planner owns instance counts (they follow from SLOs, arrival rate and hardware), so
 * `kubectl scale` would fight it; users bound the size with spec.scaling instead.
 */
import { Type, type Static } from "@sinclair/typebox";
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { ConditionsSchema, type Condition } from "./conditions.js";
import { EnvSchema } from "./common.js";
import { StringEnum, cel } from "./schema-helpers.js";
import { GpuModels } from "./topology.js";

export const ServingMode = { disaggregated: "disaggregated", colocated: "colocated", auto: "auto" } as const;
export type ServingMode = (typeof ServingMode)[keyof typeof ServingMode];

export const WorkloadPreset = { chatbot: "chatbot", codeCompletion: "code-completion", summarization: "summarization" } as const;
export type WorkloadPreset = (typeof WorkloadPreset)[keyof typeof WorkloadPreset];

export const ModelDtype = ["bf16", "fp16", "fp8"] as const;

const positiveInt = (description: string) => Type.Integer({ minimum: 1, description });

export const ModelSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 253, description: "Model name, e.g. meta-llama/Llama-3-70B." }),
    layers: positiveInt("Transformer layers."),
    hiddenSize: positiveInt("Hidden (model) dimension."),
    heads: positiveInt("Attention heads."),
    kvHeads: Type.Optional(positiveInt("Key/value heads (grouped-query attention); defaults to heads.")),
    vocabSize: positiveInt("Vocabulary size."),
    intermediateSize: Type.Optional(positiveInt("MLP intermediate dimension; defaults to 4 × hiddenSize.")),
    dtype: StringEnum(ModelDtype, { default: "bf16", description: "Weight and KV-cache data type." }),
    paramsBillions: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: "Parameter count in billions." })),
    weightBytes: Type.Optional(Type.Integer({ minimum: 1, description: "Total weight bytes, if known exactly." })),
  },
  cel(
    // Guarded against heads/kvHeads below 1: the API server runs these rules even after the minimum failed, and a
    // division by zero would be reported as a rule evaluation error instead of the field's own bound.
    { rule: "self.heads < 1 || self.hiddenSize % self.heads == 0", message: "model.hiddenSize must be divisible by model.heads" },
    { rule: "!has(self.kvHeads) || self.kvHeads < 1 || (self.kvHeads <= self.heads && self.heads % self.kvHeads == 0)", message: "model.kvHeads must divide model.heads", fieldPath: ".kvHeads" },
    { rule: "has(self.paramsBillions) || has(self.weightBytes)", message: "model needs paramsBillions or weightBytes" },
  ),
);

export const SloSchema = Type.Object({
  ttftMs: Type.Number({ exclusiveMinimum: 0, description: "Time-to-first-token target in milliseconds." }),
  tpotMs: Type.Number({ exclusiveMinimum: 0, description: "Time-per-output-token target in milliseconds." }),
  attainmentPercent: Type.Number({ exclusiveMinimum: 0, maximum: 100, default: 90, description: "Share of requests that must meet both targets." }),
});

const TokenDistributionSchema = Type.Object(
  {
    mean: Type.Integer({ minimum: 1, description: "Mean token count." }),
    max: Type.Optional(Type.Integer({ minimum: 1, description: "Largest token count." })),
  },
  cel({ rule: "!has(self.max) || self.max >= self.mean", message: "max must be at least mean" }),
);

export const WorkloadSchema = Type.Object(
  {
    arrivalRatePerSec: Type.Number({ exclusiveMinimum: 0, description: "Expected request arrival rate." }),
    preset: Type.Optional(StringEnum(Object.values(WorkloadPreset), { description: "A named workload shape (DistServe's)." })),
    promptTokens: Type.Optional(TokenDistributionSchema),
    outputTokens: Type.Optional(TokenDistributionSchema),
    traceRef: Type.Optional(
      Type.Object({
        configMapName: Type.String({ minLength: 1, maxLength: 253 }),
        key: Type.String({ minLength: 1, maxLength: 253, description: "CSV with ContextTokens,GeneratedTokens columns." }),
      }),
    ),
  },
  cel(
    { rule: "[has(self.preset), has(self.promptTokens), has(self.traceRef)].exists_one(x, x)", message: "workload needs exactly one of preset, promptTokens/outputTokens or traceRef" },
    { rule: "has(self.promptTokens) == has(self.outputTokens)", message: "workload.promptTokens and workload.outputTokens go together" },
  ),
);

export const GpuSelectionSchema = Type.Object(
  {
  model: Type.Optional(StringEnum(GpuModels, { description: "GPU model to run on; any model that fits when unset." })),
  minMemoryGiB: Type.Optional(Type.Integer({ minimum: 1, description: "Smallest GPU memory acceptable." })),
  },
  { default: {} },
);

export const EngineSchema = Type.Object({
  image: Type.String({ minLength: 1, maxLength: 1024, description: "Serving engine image (vLLM, SGLang, …)." }),
  args: Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64, default: [] }),
  port: Type.Integer({ minimum: 1, maximum: 65535, default: 8000 }),
  env: EnvSchema,
});

export const ScalingSchema = Type.Object(
  {
    minInstances: Type.Integer({ minimum: 1, default: 1, description: "Fewest serving instances per pool." }),
    maxInstances: Type.Optional(Type.Integer({ minimum: 1, description: "Most instances per pool." })),
    maxGpus: Type.Optional(Type.Integer({ minimum: 1, description: "Most GPUs the deployment may hold." })),
    autoscale: Type.Optional(Type.Boolean({
      default: false,
      description: "Scale each pool on measured load (Llumnix freeness, SLO attainment) within these bounds and the free GPUs; scale-in drains an instance by migration before its pod goes. Off: the planner's replica counts.",
    })),
  },
  { ...cel({ rule: "!has(self.maxInstances) || self.minInstances <= self.maxInstances", message: "scaling.minInstances must not exceed scaling.maxInstances" }), default: {} },
);

export const ServingDeploymentSpecSchema = Type.Object({
  model: ModelSchema,
  slo: SloSchema,
  workload: WorkloadSchema,
  gpu: GpuSelectionSchema,
  mode: StringEnum(Object.values(ServingMode), { default: "auto", description: "Separate prefill/decode pools, one pool, or whichever plans more goodput." }),
  engine: EngineSchema,
  scaling: ScalingSchema,
});
export type ServingDeploymentSpec = Static<typeof ServingDeploymentSpecSchema>;

const PhasePlanSchema = Type.Object({
  tp: Type.Integer(),
  pp: Type.Integer(),
  replicas: Type.Integer(),
  gpus: Type.Integer(),
});

export const ServingPhase = { Pending: "Pending", Progressing: "Progressing", Available: "Available", Degraded: "Degraded", Failed: "Failed" } as const;
export type ServingPhase = (typeof ServingPhase)[keyof typeof ServingPhase];

/** Roles a serving instance can have (the plan's pools). */
export const ServingRoles = ["prefill", "decode", "colocated"] as const;

/** How the autoscaler's last decision went (operator/src/serving/scheduler/). */
export const ScalingDecisionKind = { up: "up", down: "down", hold: "hold" } as const;
export type ScalingDecisionKind = (typeof ScalingDecisionKind)[keyof typeof ScalingDecisionKind];

/** Where a scale-in drain stands: requests moving out, or empty (or past its deadline) and its pods going. */
export const DrainState = { Draining: "Draining", Drained: "Drained" } as const;
export type DrainState = (typeof DrainState)[keyof typeof DrainState];

const InstancesPerRoleSchema = Type.Object({
  prefill: Type.Optional(Type.Integer({ minimum: 0 })),
  decode: Type.Optional(Type.Integer({ minimum: 0 })),
  colocated: Type.Optional(Type.Integer({ minimum: 0 })),
});

/**
 * The autoscaler's state, kept in status so a new leader continues from it: instances wanted per role (the
 * planner's replicas at first, then the autoscaler's), its last decision, and the instances being drained for a
 * scale-in. Reset to the planner's replicas when the plan or the spec changes.
 */
export const ServingScalingStatusSchema = Type.Object({
  /** Hash of the plan (with the engine) these counts apply to: the running pods' gpufleet.io/plan-hash. */
  planHash: Type.String(),
  /** metadata.generation these counts were set for; a spec change resets them to the planner's. */
  generation: Type.Integer(),
  /** Instances wanted per role; the planner's replicas until the autoscaler decides otherwise. */
  desired: InstancesPerRoleSchema,
  lastDecision: Type.Optional(
    Type.Object({
      kind: StringEnum(Object.values(ScalingDecisionKind)),
      role: Type.String(),
      reason: Type.String(),
      time: Type.String({ format: "date-time" }),
    }),
  ),
  /** Instances leaving by scale-in: drained by migration, their pods deleted once empty (or past the deadline). */
  draining: Type.Optional(
    Type.Array(
      Type.Object({
        pod: Type.String({ description: "Leader pod of the instance." }),
        role: StringEnum(ServingRoles),
        index: Type.Integer({ minimum: 0 }),
        state: StringEnum(Object.values(DrainState)),
        startedTime: Type.String({ format: "date-time" }),
        deadlineTime: Type.String({ format: "date-time", description: "Past it the pod goes even with requests left (an Event counts them)." }),
        /** Requests the instance still held at its last report (running + queued). */
        requestsLeft: Type.Optional(Type.Integer({ minimum: 0 })),
      }),
      { maxItems: 64 },
    ),
  ),
});
export type ServingScalingStatus = Static<typeof ServingScalingStatusSchema>;

export const ServingDeploymentStatusSchema = Type.Object({
  observedGeneration: Type.Optional(Type.Integer()),
  phase: Type.Optional(StringEnum(Object.values(ServingPhase))),
  /** "ready/desired" instances, for the printer column. */
  ready: Type.Optional(Type.String()),
  /** One-line plan, for the printer column: e.g. "disagg P2×TP2 D4×TP1 (12 GPU)". */
  planSummary: Type.Optional(Type.String()),
  plan: Type.Optional(
    Type.Object({
      mode: StringEnum(["disaggregated", "colocated"] as const),
      gpuModel: Type.String(),
      affinity: Type.Optional(StringEnum(["high", "low"] as const)),
      prefill: Type.Optional(PhasePlanSchema),
      decode: Type.Optional(PhasePlanSchema),
      colocated: Type.Optional(PhasePlanSchema),
      totalGpus: Type.Integer(),
      goodputPerGpu: Type.Number({ description: "Predicted requests/s per GPU meeting both SLOs." }),
      predictedAttainmentPercent: Type.Optional(Type.Number()),
      colocatedGoodputPerGpu: Type.Optional(Type.Number({ description: "Best colocated plan's goodput per GPU, for comparison." })),
      explanation: Type.Optional(Type.String()),
    }),
  ),
  readyInstances: Type.Optional(Type.Integer()),
  desiredInstances: Type.Optional(Type.Integer()),
  scaling: Type.Optional(ServingScalingStatusSchema),
  conditions: Type.Optional(ConditionsSchema),
});
export type ServingDeploymentStatus = Static<typeof ServingDeploymentStatusSchema>;

export interface ServingDeployment {
  apiVersion: "gpufleet.io/v1alpha1";
  kind: "ServingDeployment";
  metadata: V1ObjectMeta;
  spec: ServingDeploymentSpec;
  status?: ServingDeploymentStatus & { conditions?: Condition[] };
}

export const ServingDeploymentNames = {
  kind: "ServingDeployment",
  listKind: "ServingDeploymentList",
  plural: "servingdeployments",
  singular: "servingdeployment",
  shortNames: ["sd"],
} as const;
