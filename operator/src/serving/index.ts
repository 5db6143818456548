/**
 * Serving planner (DistServe) public surface: the planner the ServingDeployment reconciler calls (distserve/), the
 * simulator and workloads it runs, and, re-exported from common/src/models/, the latency model with its
 * overridable coefficients and the model-shape table it shares with the agent's simulated workers.
 */
export {
  planServing,
  PlanFailureReason,
  ServingMode,
  type ClusterNode,
  type ColocatedPlan,
  type DisaggregatedSummary,
  type PlanAlternatives,
  type PoolPlan,
  type ServingPlanError,
  type ServingPlanInput,
  type ServingPlanOk,
  type ServingPlanOptions,
  type ServingPlanResult,
  type ServingSlo,
  type ServingWorkload,
} from "./distserve/planner.js";
export {
  DEFAULT_EFFICIENCY,
  decodeBatch,
  decodeStepLatencyMs,
  instanceLatencyModel,
  instanceMemory,
  latencyCoefficients,
  prefillBatch,
  prefillLatencyMs,
  saturatingPrefillTokens,
  type ForwardBatch,
  type ForwardLatency,
  type InstanceLatencyModel,
  type LatencyCoefficientOverrides,
  type LatencyCoefficients,
  type Parallelism,
} from "../../../common/src/models/latency.js";
export { measureDisaggregatedGoodputPerGpu, type DisaggregatedPlanShape } from "./distserve/planner.js";
export {
  MODEL_SHAPES,
  deriveModel,
  type DerivedModel,
  type KnownModel,
  type ModelShape,
} from "../../../common/src/models/model-shapes.js";
export {
  attainment,
  ColocatedPolicy,
  simulateColocated,
  simulateDisaggregated,
  type SimOutcome,
  type Slo,
} from "./distserve/simulator.js";
export { maxRateMeeting, meanTtftMdOneMs } from "./distserve/goodput.js";
export {
  NamedWorkload,
  parseAzureTraceCsv,
  sampleWorkload,
  type LengthDistributions,
  type TraceRecord,
  type WorkloadLengths,
  type WorkloadSample,
} from "./distserve/workload.js";
export { type InstancePlacement, type StagePlacement } from "./distserve/packing.js";
