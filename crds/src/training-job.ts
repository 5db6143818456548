/**
 * TrainingJob: a gang of GPU pods for one distributed training run, placed NIC-aware (Holmes), restarted whole
 * from its last checkpoint on failure.
 *
 * No scale subresource: a job's size is fixed by its parallelism (tp × pp × dp = nodes × gpusPerNode), so
 * scaling one means a new plan and a restart, which is a spec change, not `kubectl scale`.
 */
import { CloneType, Type, type Static } from "@sinclair/typebox";
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { ConditionsSchema, type Condition } from "./conditions.js";
import { EnvSchema } from "./common.js";
import { StringEnum, cel, type CelRule } from "./schema-helpers.js";
import { GpuModels } from "./topology.js";

/** Largest gang: nodes × gpusPerNode at their maxima; no parallel degree can exceed it. */
export const MAX_NODES = 8192;
export const MAX_GPUS_PER_NODE = 16;
export const MAX_RANKS = MAX_NODES * MAX_GPUS_PER_NODE;

export const ParallelismSchema = Type.Object({
  tp: Type.Integer({
    minimum: 1,
    maximum: MAX_GPUS_PER_NODE,
    default: 1,
    description: "Tensor-parallel degree (inside a node, over NVLink).",
  }),
  pp: Type.Integer({ minimum: 1, maximum: MAX_RANKS, default: 1, description: "Pipeline-parallel stages." }),
  dp: Type.Integer({ minimum: 1, maximum: MAX_RANKS, description: "Data-parallel replicas." }),
});

/**
 * The API server evaluates CEL rules even when a field already failed its OpenAPI bounds, so a rule that
 * multiplies or divides must guard itself: out of bounds it passes and the bound's own error names the field
 * (found by test/integration/security/cr-validation.property.test.ts: `dp: -2^62` gave "integer overflow
 * evaluating rule").
 */
const inRange = (path: string, max: number) => `${path} >= 1 && ${path} <= ${max}`;
const SHAPE_IN_BOUNDS = [
  inRange("self.parallelism.tp", MAX_GPUS_PER_NODE),
  inRange("self.parallelism.pp", MAX_RANKS),
  inRange("self.parallelism.dp", MAX_RANKS),
  inRange("self.nodes", MAX_NODES),
  inRange("self.gpusPerNode", MAX_GPUS_PER_NODE),
].join(" && ");

export const TrainingModelSchema = Type.Object({
  paramsBillions: Type.Number({ exclusiveMinimum: 0, description: "Parameter count in billions." }),
  layers: Type.Integer({ minimum: 1, description: "Transformer layers (split over the pipeline stages)." }),
  hiddenSize: Type.Integer({
    minimum: 1,
    description: "Hidden (model) dimension: sets activation and gradient message sizes.",
  }),
  seqLength: Type.Integer({ minimum: 1, default: 2048, description: "Tokens per training sequence." }),
  globalBatchSequences: Type.Integer({ minimum: 1, default: 512, description: "Sequences per optimizer step." }),
  microBatchSequences: Type.Integer({ minimum: 1, default: 1, description: "Sequences per pipeline micro-batch." }),
});

export const CheckpointSchema = Type.Object({
  path: Type.String({
    minLength: 1,
    maxLength: 1024,
    description: "Where workers write checkpoints (a shared volume or object store URL).",
  }),
  intervalSteps: Type.Integer({ minimum: 1, default: 1000, description: "Steps between checkpoints." }),
});

export const FaultPolicySchema = Type.Object(
  {
    maxRestarts: Type.Integer({
      minimum: 0,
      default: 3,
      description: "Whole-gang restarts before the job fails. Never resets by itself.",
    }),
    slowRankTolerancePercent: Type.Number({
      exclusiveMinimum: 0,
      default: 30,
      description: "A rank this much slower than its group's median is slow.",
    }),
    hangTimeoutSeconds: Type.Integer({
      minimum: 1,
      default: 60,
      description: "A collective unfinished this long marks its laggard rank hung.",
    }),
    restartBackoffSeconds: Type.Integer({
      minimum: 0,
      default: 10,
      description: "First restart delay; doubles per restart.",
    }),
  },
  { default: {} },
);

export const PlacementPolicySchema = Type.Object(
  {
    nicAware: Type.Boolean({ default: true, description: "Holmes placement: DP groups inside one NIC island." }),
    gpuModel: Type.Optional(StringEnum(GpuModels, { description: "Only nodes with this GPU model." })),
  },
  { default: {} },
);

export const TrainingJobSpecSchema = Type.Object(
  {
    image: Type.String({
      minLength: 1,
      maxLength: 1024,
      description: "Training container image, run by every pod of the gang.",
    }),
    command: Type.Array(Type.String({ maxLength: 4096 }), {
      minItems: 1,
      maxItems: 64,
      description: "Container entrypoint of every pod.",
    }),
    args: Type.Array(Type.String({ maxLength: 4096 }), {
      maxItems: 128,
      default: [],
      description: "Arguments to the command.",
    }),
    env: CloneType(EnvSchema, {
      description: "Extra environment variables for every pod (the operator adds its rank and NCCL settings).",
    }),
    nodes: Type.Integer({ minimum: 1, maximum: MAX_NODES, description: "Nodes in the gang." }),
    gpusPerNode: Type.Integer({
      minimum: 1,
      maximum: MAX_GPUS_PER_NODE,
      default: 8,
      description: "GPUs each pod takes (one pod per node).",
    }),
    parallelism: CloneType(ParallelismSchema, {
      description: "How the model is split: tp × pp × dp must equal nodes × gpusPerNode.",
    }),
    model: CloneType(TrainingModelSchema, { description: "Model shape, for the placement's step-time estimate." }),
    checkpoint: CloneType(CheckpointSchema, {
      description: "Where and how often the workers checkpoint; restarts resume from the last one.",
    }),
    faultPolicy: CloneType(FaultPolicySchema, {
      description: "When C4D calls a rank slow or hung, and how often the gang may restart.",
    }),
    placement: CloneType(PlacementPolicySchema, {
      description: "Which nodes the gang may use and whether placement is NIC-aware.",
    }),
  },
  cel(
    {
      rule: `!(${SHAPE_IN_BOUNDS}) || self.parallelism.tp * self.parallelism.pp * self.parallelism.dp == self.nodes * self.gpusPerNode`,
      message: "parallelism.tp × pp × dp must equal nodes × gpusPerNode",
      fieldPath: ".parallelism",
    },
    {
      rule: "self.parallelism.tp in [1, 2, 4, 8, 16]",
      message: "parallelism.tp must be a power of two",
      fieldPath: ".parallelism.tp",
    },
    {
      rule: "self.parallelism.tp < 1 || (self.parallelism.tp <= self.gpusPerNode && self.gpusPerNode % self.parallelism.tp == 0)",
      message: "parallelism.tp must divide gpusPerNode (a TP group stays inside one node)",
      fieldPath: ".parallelism.tp",
    },
    {
      rule: "self.parallelism.pp <= self.model.layers",
      message: "parallelism.pp cannot exceed model.layers",
      fieldPath: ".parallelism.pp",
    },
  ),
);
export type TrainingJobSpec = Static<typeof TrainingJobSpecSchema>;

/**
 * Spec fields that are frozen once a checkpoint exists (status.lastCheckpointStep > 0). A spec change re-places
 * the gang, and the new pods resume from status.lastCheckpointStep at spec.checkpoint.path; a checkpoint is one
 * file per rank (agent/worker: `<path>/step-N/rank-R.pt`) of one model. A new model, another path, or another
 * rank layout (nodes × gpusPerNode ranks split tp × pp × dp) cannot resume from it, and the operator cannot
 * convert checkpoints. Before the first checkpoint every field may change (the gang starts over at step 0).
 * These are transition rules at the root, because the condition reads status (oldSelf.status); status writes
 * never change spec, so they pass them.
 */
export const TRAINING_JOB_FROZEN_FIELDS = [
  { field: "model", why: "the checkpoint holds another model's weights" },
  { field: "checkpoint.path", why: "the resume step's checkpoint is under the old path" },
  { field: "nodes", why: "the checkpoint has one file per rank of the old gang" },
  { field: "gpusPerNode", why: "the checkpoint has one file per rank of the old gang" },
  { field: "parallelism", why: "the checkpoint's shards follow the old tp × pp × dp layout" },
] as const;

export const TrainingJobRootRules: CelRule[] = TRAINING_JOB_FROZEN_FIELDS.map(({ field, why }) => ({
  rule: `!has(oldSelf.status) || !has(oldSelf.status.lastCheckpointStep) || oldSelf.status.lastCheckpointStep == 0 || self.spec.${field} == oldSelf.spec.${field}`,
  message: `spec.${field} is immutable once a checkpoint exists (status.lastCheckpointStep > 0): ${why}; create a new TrainingJob instead`,
  fieldPath: `.spec.${field}`,
}));

export const TrainingPhase = {
  Pending: "Pending",
  Placed: "Placed",
  Running: "Running",
  Restarting: "Restarting",
  Succeeded: "Succeeded",
  Failed: "Failed",
} as const;
export type TrainingPhase = (typeof TrainingPhase)[keyof typeof TrainingPhase];

/** C4D fault classes (operator/src/training/c4d/), plus `ambiguous` for evidence that blamed no single component. */
export const FaultClasses = [
  "hang",
  "unfinished",
  "slow-sender",
  "slow-receiver",
  "slow-link",
  "straggler",
  "job-hang",
  "ambiguous",
] as const;
export type FaultClass = (typeof FaultClasses)[number];

/** What the operator did about a fault: taint the node, mark one of its NICs, only restart the gang, or nothing. */
export const FaultActions = ["isolate-node", "mark-nic", "restart-only", "none"] as const;
export type FaultAction = (typeof FaultActions)[number];

/** One fault C4D found in a gang attempt, with the evidence it acted on (status.faults keeps the last few). */
export const FaultRecordSchema = Type.Object({
  id: Type.String({
    maxLength: 253,
    description: "Stable id: <attempt>-<class>-<node>[-<nic>]; the same fault is never acted on twice.",
  }),
  attempt: Type.Integer({
    minimum: 0,
    description: "The gang attempt (status.restarts when its pods were made) the fault was seen in.",
  }),
  faultClass: StringEnum(FaultClasses, { description: "What C4D found (docs/c4d.md lists the classes)." }),
  action: StringEnum(FaultActions, {
    description: "What the operator did: isolate-node (taint), mark-nic, restart-only, or none.",
  }),
  node: Type.Optional(Type.String({ maxLength: 253, description: "The node blamed (tainted for isolate-node)." })),
  nic: Type.Optional(Type.String({ maxLength: 64, description: "The NIC blamed (mark-nic)." })),
  peerNode: Type.Optional(Type.String({ maxLength: 253, description: "The other end of a blamed link." })),
  ranks: Type.Array(Type.Integer({ minimum: 0 }), { maxItems: 64, description: "Ranks blamed (first 64)." }),
  communicator: Type.String({ maxLength: 256, description: "NCCL communicator the evidence came from." }),
  collective: Type.String({ maxLength: 64, description: "Collective operation of the evidence (AllReduce, …)." }),
  sequence: Type.Integer({ minimum: 0, description: "Collective sequence number of the evidence." }),
  evidenceRanks: Type.Array(Type.Integer({ minimum: 0 }), {
    maxItems: 64,
    description: "Ranks the evidence is about (first 64).",
  }),
  detail: Type.String({ maxLength: 1024, description: "The evidence in words." }),
  timesMs: Type.Record(Type.String({ maxLength: 64 }), Type.Number(), {
    maxProperties: 16,
    description: "Named times of the evidence in ms (durations, timeouts, baselines).",
  }),
  firstAffectedTime: Type.String({
    format: "date-time",
    description: "Start of the first collective the fault affected.",
  }),
  detectedTime: Type.String({ format: "date-time", description: "When C4D concluded." }),
  actedTime: Type.String({
    format: "date-time",
    description: "When the operator tainted/marked (or decided not to act).",
  }),
});
export type FaultRecord = Static<typeof FaultRecordSchema>;

/** How many fault records status keeps (newest last). */
export const MAX_FAULT_RECORDS = 16;

/** How many planned flows status lists (the count is complete; the list is a sample, busiest first). */
export const MAX_TRAFFIC_FLOWS_SHOWN = 32;

export const TrafficStatusSchema = Type.Object({
  fabric: Type.String({ maxLength: 253, description: "FabricTopology the job's traffic is planned on." }),
  plannedTime: Type.String({ format: "date-time", description: "When the plan in force was computed." }),
  connections: Type.Integer({ minimum: 0, description: "Inter-leaf connections of the job pinned to a path." }),
  intraLeafConnections: Type.Integer({
    minimum: 0,
    description: "Connections of the job that stay under one leaf (nothing to pin).",
  }),
  unroutable: Type.Integer({ minimum: 0, description: "Connections with no live spine path." }),
  qpsPerConnection: Type.Integer({
    minimum: 1,
    description: "QPs per connection (NCCL_IB_QPS_PER_CONNECTION) the plan gives the job.",
  }),
  maxLinkLoad: Type.Number({
    minimum: 0,
    description:
      "Predicted load (demand ÷ capacity) of the busiest fabric link under the plan, all jobs on the fabric.",
  }),
  ecmpMaxLinkLoad: Type.Number({
    minimum: 0,
    description: "The same under ECMP hashing (one QP per connection), mean over seeds.",
  }),
  loadRatioToEcmp: Type.Number({ minimum: 0, description: "maxLinkLoad ÷ ecmpMaxLinkLoad." }),
  nodes: Type.Integer({ minimum: 0, description: "Nodes sending planned flows of the job." }),
  nodesApplied: Type.Integer({
    minimum: 0,
    description: "Of those, nodes whose agent reports the current plan applied.",
  }),
  qpsPlanned: Type.Integer({
    minimum: 0,
    description: "QPs the plan pins for the job (connections × qpsPerConnection).",
  }),
  qpsApplied: Type.Integer({ minimum: 0, description: "QPs the agents report applied (source port set)." }),
  qpsOnPlannedPath: Type.Integer({
    minimum: 0,
    description: "Of those, QPs the fabric's hash puts on their planned path, as the agents read it back.",
  }),
  flows: Type.Array(
    Type.Object({
      connection: Type.String({
        maxLength: 256,
        description: "Connection id: job/communicator[/channel]/from-rank>to-rank.",
      }),
      from: Type.String({ maxLength: 253, description: "Sending node." }),
      to: Type.String({ maxLength: 253, description: "Receiving node." }),
      nic: Type.String({ maxLength: 64, description: "Sending NIC." }),
      paths: Type.Array(Type.String({ maxLength: 160 }), {
        maxItems: 16,
        description: "Per QP: spine#uplinkPort>#downlinkPort @ UDP source port.",
      }),
    }),
    { maxItems: MAX_TRAFFIC_FLOWS_SHOWN, description: "The first planned flows of the job, with each QP's path." },
  ),
});
export type TrafficStatus = Static<typeof TrafficStatusSchema>;

export const TrainingJobStatusSchema = Type.Object({
  observedGeneration: Type.Optional(
    Type.Integer({ description: "The metadata.generation this status was computed for." }),
  ),
  phase: Type.Optional(
    StringEnum(Object.values(TrainingPhase), {
      description: "Pending, Placed, Running, Restarting, Succeeded or Failed.",
    }),
  ),
  ready: Type.Optional(Type.String({ description: "running/total pods, for the printer column." })),
  planSummary: Type.Optional(Type.String({ description: "One-line placement, for the printer column." })),
  restarts: Type.Optional(
    Type.Integer({ minimum: 0, description: "Whole-gang restarts so far (bounded by faultPolicy.maxRestarts)." }),
  ),
  lastCheckpointStep: Type.Optional(
    Type.Integer({
      minimum: 0,
      description: "Last step the workers reported a complete checkpoint for; restarts resume from it.",
    }),
  ),
  nextRestartTime: Type.Optional(
    Type.String({ format: "date-time", description: "When the pending restart's backoff ends." }),
  ),
  avoidNodes: Type.Optional(
    Type.Array(Type.String(), {
      maxItems: 8192,
      description:
        "Nodes of the failed attempt's members (failed or isolated), avoided by the next placement when it can be; cleared once the gang is placed. Kept in status so a new leader avoids them too.",
    }),
  ),
  placement: Type.Optional(
    Type.Object(
      {
        islands: Type.Array(Type.String(), {
          maxItems: 1024,
          description: "NIC islands (gpufleet.io/island) the gang uses.",
        }),
        ranksPerIsland: Type.Record(Type.String(), Type.Integer(), {
          description: "Ranks (GPUs) placed in each island.",
        }),
        layersPerStage: Type.Array(Type.Integer(), {
          maxItems: 1024,
          description: "Model layers of each pipeline stage, first stage first.",
        }),
        nodes: Type.Array(Type.String(), { maxItems: 8192, description: "Nodes of the gang in rank order." }),
        predictedStepMs: Type.Number({ description: "Predicted training step time of this placement." }),
        obliviousStepMs: Type.Optional(
          Type.Number({ description: "Predicted step time of a NIC-oblivious placement, for comparison." }),
        ),
      },
      { description: "Where the gang runs (Holmes placement) and its predicted step time." },
    ),
  ),
  faults: Type.Optional(
    Type.Array(FaultRecordSchema, {
      maxItems: MAX_FAULT_RECORDS,
      description: "The last faults C4D found (newest last), with their evidence and what was done.",
    }),
  ),
  traffic: Type.Optional({
    ...TrafficStatusSchema,
    description: "C4P: the job's planned fabric paths and what the agents applied (operator/src/traffic/).",
  }),
  conditions: Type.Optional(ConditionsSchema),
});
export type TrainingJobStatus = Static<typeof TrainingJobStatusSchema>;

export interface TrainingJob {
  apiVersion: "gpufleet.io/v1alpha1";
  kind: "TrainingJob";
  metadata: V1ObjectMeta;
  spec: TrainingJobSpec;
  status?: TrainingJobStatus & { conditions?: Condition[] };
}

export const TrainingJobNames = {
  kind: "TrainingJob",
  listKind: "TrainingJobList",
  plural: "trainingjobs",
  singular: "trainingjob",
  shortNames: ["tj"],
} as const;
