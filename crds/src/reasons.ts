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
  /**
   * True when C4D blamed a component of the current gang attempt and the operator acted (the reason names the
   * fault class, the message the evidence); False once a fresh attempt runs (the message recalls the last fault).
   */
  FaultDetected: "FaultDetected",
  /** True when C4D saw anomalous collectives it could not pin on one component: nothing was tainted. */
  FaultSuspected: "FaultSuspected",
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
  /**
   * The serving planner ran out of its work budget before it found a plan meeting the SLOs (or before it verified
   * the one it found); the message names the search stage. A plan found before the budget ran out is still
   * PlanReady, its message saying the search was cut short.
   */
  PlanningBudgetExhausted: "PlanningBudgetExhausted",
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
  /** C4D: a rank never entered a collective its peers wait in. */
  CommunicationHang: "CommunicationHang",
  /** C4D: every rank entered a collective, transfers did not finish within the timeout. */
  UnfinishedTransfer: "UnfinishedTransfer",
  /** C4D: one rank's sends are slow to every peer. */
  SlowSender: "SlowSender",
  /** C4D: one rank's receives are slow from every peer. */
  SlowReceiver: "SlowReceiver",
  /** C4D: one link (a pair of ranks) is slow while both ends are fine with others. */
  SlowLink: "SlowLink",
  /** C4D: one rank is consistently last to enter collectives (slow compute). */
  Straggler: "Straggler",
  /** C4D: no rank progresses and no collective is open. */
  JobHang: "JobHang",
  /** C4D: anomalous collectives that blame no single component; nothing tainted. */
  AmbiguousEvidence: "AmbiguousEvidence",
  /** No fault detected in the current gang attempt. */
  NoFault: "NoFault",
  /** A node was tainted gpufleet.io/isolated by fault detection (Event on the node). */
  NodeIsolated: "NodeIsolated",
  /** A NIC of a node was marked degraded by fault detection (node condition and Event). */
  NicDegraded: "NicDegraded",
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
