/**
 * ServingDeployment: an LLM served under TTFT/TPOT SLOs. gpufleet plans separate prefill and decode pools
 * (DistServe) or one colocated pool, whichever gives more goodput per GPU, and runs them.
 *
 * No scale subresource: the planner owns instance counts (they follow from SLOs, arrival rate and hardware), so
 * `kubectl scale` would fight it; users bound the size with spec.scaling instead.
 */
import { CloneType, Type, type Static } from "@sinclair/typebox";
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { ConditionsSchema, type Condition } from "./conditions.js";
import { EnvSchema } from "./common.js";
import { StringEnum, cel } from "./schema-helpers.js";
import { GpuModels } from "./topology.js";

export const ServingMode = { disaggregated: "disaggregated", colocated: "colocated", auto: "auto" } as const;
export type ServingMode = (typeof ServingMode)[keyof typeof ServingMode];

export const WorkloadPreset = {
  chatbot: "chatbot",
  codeCompletion: "code-completion",
  summarization: "summarization",
} as const;
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
    {
      rule: "self.heads < 1 || self.hiddenSize % self.heads == 0",
      message: "model.hiddenSize must be divisible by model.heads",
    },
    {
      rule: "!has(self.kvHeads) || self.kvHeads < 1 || (self.kvHeads <= self.heads && self.heads % self.kvHeads == 0)",
      message: "model.kvHeads must divide model.heads",
      fieldPath: ".kvHeads",
    },
    { rule: "has(self.paramsBillions) || has(self.weightBytes)", message: "model needs paramsBillions or weightBytes" },
  ),
);

export const SloSchema = Type.Object({
  ttftMs: Type.Number({ exclusiveMinimum: 0, description: "Time-to-first-token target in milliseconds." }),
  tpotMs: Type.Number({ exclusiveMinimum: 0, description: "Time-per-output-token target in milliseconds." }),
  attainmentPercent: Type.Number({
    exclusiveMinimum: 0,
    maximum: 100,
    default: 90,
    description: "Share of requests that must meet both targets.",
  }),
});

const TokenDistributionSchema = Type.Object(
  {
    mean: Type.Integer({ minimum: 1, description: "Mean token count." }),
    max: Type.Optional(Type.Integer({ minimum: 1, description: "Largest token count." })),
  },
  cel({ rule: "!has(self.max) || self.max >= self.mean", message: "max must be at least mean" }),
);
const tokenDistribution = (description: string) => CloneType(TokenDistributionSchema, { description });

export const WorkloadSchema = Type.Object(
  {
    arrivalRatePerSec: Type.Number({ exclusiveMinimum: 0, description: "Expected request arrival rate." }),
    preset: Type.Optional(
      StringEnum(Object.values(WorkloadPreset), { description: "A named workload shape (DistServe's)." }),
    ),
    promptTokens: Type.Optional(tokenDistribution("Prompt lengths of the expected requests; goes with outputTokens.")),
    outputTokens: Type.Optional(tokenDistribution("Output lengths of the expected requests; goes with promptTokens.")),
    traceRef: Type.Optional(
      Type.Object(
        {
          configMapName: Type.String({
            minLength: 1,
            maxLength: 253,
            description: "ConfigMap in the deployment's namespace holding the trace.",
          }),
          key: Type.String({
            minLength: 1,
            maxLength: 253,
            description: "CSV with ContextTokens,GeneratedTokens columns.",
          }),
        },
        { description: "A request-length trace (Azure LLM trace CSV format) the planner samples lengths from." },
      ),
    ),
  },
  cel(
    {
      rule: "[has(self.preset), has(self.promptTokens), has(self.traceRef)].exists_one(x, x)",
      message: "workload needs exactly one of preset, promptTokens/outputTokens or traceRef",
    },
    {
      rule: "has(self.promptTokens) == has(self.outputTokens)",
      message: "workload.promptTokens and workload.outputTokens go together",
    },
  ),
);

export const GpuSelectionSchema = Type.Object(
  {
    model: Type.Optional(
      StringEnum(GpuModels, { description: "GPU model to run on; any model that fits when unset." }),
    ),
    minMemoryGiB: Type.Optional(Type.Integer({ minimum: 1, description: "Smallest GPU memory acceptable." })),
  },
  { default: {}, description: "Which GPUs the deployment may use." },
);

/**
 * Which engine the pods run. reference: gpufleet's own instance contract (docs/engine-api.md; the simulated and
 * Python workers), the container's args as given. vllm / sglang: the operator renders the engine's documented
 * serve command for the pod's role and parallelism (operator/src/serving/engines/, docs/engines.md) before
 * spec.engine.args, and a sidecar turns the engine's Prometheus metrics into gpufleet load reports. These engines
 * cannot migrate running requests, so the scheduler never asks them to.
 */
export const EngineKind = { reference: "reference", vllm: "vllm", sglang: "sglang" } as const;
export type EngineKind = (typeof EngineKind)[keyof typeof EngineKind];

export const EngineSchema = Type.Object({
  // Optional in the TypeScript type (the API server defaults it): objects written before the field existed and
  // hand-built specs read as the reference engine.
  kind: Type.Optional(
    StringEnum(Object.values(EngineKind), {
      default: "reference",
      description:
        "reference (gpufleet instance API, args as given) | vllm | sglang (the operator renders the engine's own P/D disaggregation and TP/PP flags; no live migration).",
    }),
  ),
  image: Type.String({ minLength: 1, maxLength: 1024, description: "Serving engine image (vLLM, SGLang, …)." }),
  args: Type.Array(Type.String({ maxLength: 4096 }), {
    maxItems: 64,
    default: [],
    description: "Arguments passed to the engine container.",
  }),
  port: Type.Integer({
    minimum: 1,
    maximum: 65535,
    default: 8000,
    description: "Port the engine serves HTTP on inside its pod.",
  }),
  env: CloneType(EnvSchema, { description: "Extra environment variables for the engine container." }),
});

export const ScalingSchema = Type.Object(
  {
    minInstances: Type.Integer({ minimum: 1, default: 1, description: "Fewest serving instances per pool." }),
    maxInstances: Type.Optional(Type.Integer({ minimum: 1, description: "Most instances per pool." })),
    maxGpus: Type.Optional(Type.Integer({ minimum: 1, description: "Most GPUs the deployment may hold." })),
    autoscale: Type.Optional(
      Type.Boolean({
        default: false,
        description:
          "Scale each pool on measured load (Llumnix freeness, SLO attainment) within these bounds and the free GPUs; scale-in drains an instance by migration before its pod goes. Off: the planner's replica counts.",
      }),
    ),
  },
  {
    ...cel({
      rule: "!has(self.maxInstances) || self.minInstances <= self.maxInstances",
      message: "scaling.minInstances must not exceed scaling.maxInstances",
    }),
    default: {},
    description: "Bounds on the instance counts the planner (and, with autoscale, the autoscaler) may choose.",
  },
);

export const ServingDeploymentSpecSchema = Type.Object({
  model: CloneType(ModelSchema, {
    description: "The model to serve, by shape: the planner's latency and memory model works from these numbers.",
  }),
  slo: CloneType(SloSchema, {
    description: "Latency targets each request is held to, and the share of requests that must meet them.",
  }),
  workload: CloneType(WorkloadSchema, {
    description: "The traffic to plan for: arrival rate, and request lengths as a preset, distributions or a trace.",
  }),
  gpu: GpuSelectionSchema,
  mode: StringEnum(Object.values(ServingMode), {
    default: "auto",
    description: "Separate prefill/decode pools, one pool, or whichever plans more goodput.",
  }),
  engine: CloneType(EngineSchema, { description: "The serving engine container every instance runs." }),
  scaling: ScalingSchema,
});
export type ServingDeploymentSpec = Static<typeof ServingDeploymentSpecSchema>;

const PhasePlanSchema = Type.Object({
  tp: Type.Integer({ description: "Tensor-parallel degree of each instance." }),
  pp: Type.Integer({ description: "Pipeline-parallel stages of each instance." }),
  replicas: Type.Integer({ description: "Instances in the pool." }),
  gpus: Type.Integer({ description: "GPUs of the whole pool (tp × pp × replicas)." }),
});
const phasePlan = (description: string) => CloneType(PhasePlanSchema, { description });

export const ServingPhase = {
  Pending: "Pending",
  Progressing: "Progressing",
  Available: "Available",
  Degraded: "Degraded",
  Failed: "Failed",
} as const;
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
  prefill: Type.Optional(Type.Integer({ minimum: 0, description: "Prefill instances." })),
  decode: Type.Optional(Type.Integer({ minimum: 0, description: "Decode instances." })),
  colocated: Type.Optional(
    Type.Integer({ minimum: 0, description: "Colocated (prefill and decode in one) instances." }),
  ),
});

/**
 * The autoscaler's state, kept in status so a new leader continues from it: instances wanted per role (the
 * planner's replicas at first, then the autoscaler's), its last decision, and the instances being drained for a
 * scale-in. Reset to the planner's replicas when the plan or the spec changes.
 */
export const ServingScalingStatusSchema = Type.Object({
  planHash: Type.String({
    description: "Hash of the plan (with the engine) these counts apply to: the running pods' gpufleet.io/plan-hash.",
  }),
  generation: Type.Integer({
    description: "metadata.generation these counts were set for; a spec change resets them to the planner's.",
  }),
  desired: CloneType(InstancesPerRoleSchema, {
    description: "Instances wanted per role; the planner's replicas until the autoscaler decides otherwise.",
  }),
  lastDecision: Type.Optional(
    Type.Object(
      {
        kind: StringEnum(Object.values(ScalingDecisionKind), { description: "Scale up, scale down, or hold." }),
        role: Type.String({ description: "The pool (prefill, decode or colocated) the decision was about." }),
        reason: Type.String({
          description: "Why, in words: the load or attainment that triggered it, or what held it back.",
        }),
        time: Type.String({ format: "date-time", description: "When the decision was made." }),
      },
      { description: "The autoscaler's most recent decision." },
    ),
  ),
  draining: Type.Optional(
    Type.Array(
      Type.Object({
        pod: Type.String({ description: "Leader pod of the instance." }),
        role: StringEnum(ServingRoles, { description: "Pool the instance belongs to." }),
        index: Type.Integer({
          minimum: 0,
          description: "Instance index within its pool (the number in its pod name).",
        }),
        state: StringEnum(Object.values(DrainState), {
          description: "Draining: requests moving out; Drained: empty (or past its deadline), its pods going.",
        }),
        startedTime: Type.String({ format: "date-time", description: "When the drain began." }),
        deadlineTime: Type.String({
          format: "date-time",
          description: "Past it the pod goes even with requests left (an Event counts them).",
        }),
        requestsLeft: Type.Optional(
          Type.Integer({
            minimum: 0,
            description: "Requests the instance still held at its last report (running + queued).",
          }),
        ),
      }),
      {
        maxItems: 64,
        description:
          "Instances leaving by scale-in: drained by migration, their pods deleted once empty (or past the deadline).",
      },
    ),
  ),
});
export type ServingScalingStatus = Static<typeof ServingScalingStatusSchema>;

export const ServingDeploymentStatusSchema = Type.Object({
  observedGeneration: Type.Optional(
    Type.Integer({ description: "The metadata.generation this status was computed for." }),
  ),
  phase: Type.Optional(
    StringEnum(Object.values(ServingPhase), {
      description: "Summary of the conditions: Pending, Progressing, Available, Degraded or Failed.",
    }),
  ),
  ready: Type.Optional(Type.String({ description: '"ready/desired" instances, for the printer column.' })),
  planSummary: Type.Optional(
    Type.String({ description: 'One-line plan, for the printer column: e.g. "disagg P2×TP2 D4×TP1 (12 GPU)".' }),
  ),
  plan: Type.Optional(
    Type.Object(
      {
        mode: StringEnum(["disaggregated", "colocated"] as const, {
          description: "Separate prefill and decode pools, or one colocated pool.",
        }),
        gpuModel: Type.String({ description: "GPU model the plan was made for." }),
        gpuProfile: Type.Optional(
          Type.String({
            description:
              "GpuProfile whose measured coefficients the plan was made with; unset: the shipped defaults of the GPU model.",
          }),
        ),
        affinity: Type.Optional(
          StringEnum(["high", "low"] as const, {
            description:
              "Disaggregated plans: high = KV cache crosses the NICs between nodes (DistServe §4.1); low = each prefill stage shares a node with its decode stage and KV moves over NVLink (§4.2).",
          }),
        ),
        prefill: Type.Optional(phasePlan("The prefill pool (disaggregated plans).")),
        decode: Type.Optional(phasePlan("The decode pool (disaggregated plans).")),
        colocated: Type.Optional(phasePlan("The one pool doing prefill and decode (colocated plans).")),
        totalGpus: Type.Integer({ description: "GPUs the plan uses in all." }),
        goodputPerGpu: Type.Number({ description: "Predicted requests/s per GPU meeting both SLOs." }),
        predictedAttainmentPercent: Type.Optional(
          Type.Number({
            description: "Share of requests the planner's simulation predicts meet both SLOs at the workload's rate.",
          }),
        ),
        colocatedGoodputPerGpu: Type.Optional(
          Type.Number({ description: "Best colocated plan's goodput per GPU, for comparison." }),
        ),
        explanation: Type.Optional(
          Type.String({ description: "Why this plan: the alternatives weighed and what bounded the choice." }),
        ),
      },
      { description: "The plan the operator runs: pools, their shapes, and the predicted goodput." },
    ),
  ),
  readyInstances: Type.Optional(Type.Integer({ description: "Serving instances whose pods are all ready." })),
  desiredInstances: Type.Optional(
    Type.Integer({ description: "Serving instances the plan (or the autoscaler) wants." }),
  ),
  scaling: Type.Optional(
    CloneType(ServingScalingStatusSchema, {
      description: "The autoscaler's state, kept in status so a new leader continues from it.",
    }),
  ),
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
