/**
 * Condition types and reasons, the vocabulary `kubectl describe` and alerts are written against. Changing a value
 * here is an API change.
 */

/** Condition types of a ServingDeployment. */
export const ServingCondition = {
  /** The spec passed semantic checks and the planner found a plan that fits the cluster. */
  Planned: "Planned",
  /** Every planned instance is ready to serve. */
  Available: "Available",
  /** Pods are being created, replaced or rolled to a new plan. */
  Progressing: "Progressing",
  /** True when the cluster lacks the GPUs the plan needs; the message names what is missing. */
  InsufficientCapacity: "InsufficientCapacity",
} as const;
export type ServingCondition = (typeof ServingCondition)[keyof typeof ServingCondition];

/** Condition types of a TrainingJob. */
export const TrainingCondition = {
  /** The whole gang has a placement and its pods exist. */
  Placed: "Placed",
  /** True while the gang cannot be placed; the message says what is missing. Nothing is bound meanwhile. */
  Unschedulable: "Unschedulable",
  /** Every pod of the gang is running. */
  Running: "Running",
  /** The gang was torn down after a failure and will be re-placed from the last checkpoint. */
  Restarting: "Restarting",
  /** Terminal: all ranks finished. */
  Succeeded: "Succeeded",
  /** Terminal: the restart budget is spent or the job cannot run; the reason says which. */
  Failed: "Failed",
} as const;
export type TrainingCondition = (typeof TrainingCondition)[keyof typeof TrainingCondition];

/** CamelCase reasons shared by both resources' conditions and Events. */
export const Reason = {
  /** The spec is well-formed but asks for something impossible (a check the schema cannot express). */
  InvalidSpec: "InvalidSpec",
  /** No GPU type in the cluster has the memory to hold the model with the allowed parallelism. */
  ModelDoesNotFit: "ModelDoesNotFit",
  /** The cluster has too few suitable GPUs (free or in total). */
  InsufficientCapacity: "InsufficientCapacity",
  /** No node matches the requested GPU model or labels. */
  NoMatchingNodes: "NoMatchingNodes",
  /** A plan was computed and applied. */
  PlanReady: "PlanReady",
  /** The plan changed (spec or capacity changed beyond the hysteresis band). */
  PlanChanged: "PlanChanged",
  /** Pods are being created or replaced. */
  PodsPending: "PodsPending",
  /** All pods are ready. */
  PodsReady: "PodsReady",
  /** Everything is as desired. */
  AsExpected: "AsExpected",
  /** A gang member failed or its node was isolated. */
  GangMemberFailed: "GangMemberFailed",
  /** The job used up faultPolicy.maxRestarts. */
  RestartBudgetExhausted: "RestartBudgetExhausted",
  /** Waiting out the restart backoff. */
  BackoffPending: "BackoffPending",
  /** All workers exited successfully. */
  Completed: "Completed",
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Labels gpufleet puts on the objects it owns. */
export const OwnedLabel = {
  managedBy: "app.kubernetes.io/managed-by",
  servingDeployment: "gpufleet.io/serving-deployment",
  trainingJob: "gpufleet.io/training-job",
  role: "gpufleet.io/role",
  instance: "gpufleet.io/instance",
  planHash: "gpufleet.io/plan-hash",
} as const;

/** Field manager for everything the operator applies. */
export const OPERATOR_FIELD_MANAGER = "gpufleet-operator";
