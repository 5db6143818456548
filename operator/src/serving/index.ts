/**
 * Serving planner (DistServe) public surface: the planner the ServingDeployment reconciler calls, the latency
 * model with its overridable coefficients, the simulator, workloads and the model-shape table.
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
} from "./plan.js";
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
export { measureDisaggregatedGoodputPerGpu, type DisaggregatedPlanShape } from "./plan.js";
export { MODEL_SHAPES, deriveModel, type DerivedModel, type KnownModel, type ModelShape } from "../../../common/src/models/model-shapes.js";
export { attainment, ColocatedPolicy, simulateColocated, simulateDisaggregated, type SimOutcome, type Slo } from "./simulate.js";
export { maxRateMeeting, meanTtftMdOneMs } from "./goodput.js";
export {
  NamedWorkload,
  parseAzureTraceCsv,
  sampleWorkload,
  type LengthDistributions,
  type TraceRecord,
  type WorkloadLengths,
  type WorkloadSample,
} from "./workload.js";
export { type InstancePlacement, type StagePlacement } from "./placement.js";
