/**
 * The pure half of the TrainingJob feature: Holmes placement, layer partition, step-time model, gang pods, pod
 * env and restart policy. No Kubernetes client, clock or logger in here; the reconciler calls these.
 */
export * from "./types.js";
export {
  planTrainingPlacement,
  planObliviousPlacement,
  validateTrainingJob,
  classify,
  missingMessage,
  type PlacementInput,
} from "./placement.js";
export {
  partitionLayers,
  uniformLayers,
  layerRanges,
  maxStageMs,
  PartitionError,
  type StageTimeFn,
} from "./partition.js";
export {
  DEFAULT_LINK_MODEL,
  linkModelWith,
  stageCosts,
  estimateStep,
  stepShape,
  groupLink,
  sameFabric,
  type LinkModel,
  type StageCost,
  type StepEstimate,
  type GroupLink,
} from "./step-time.js";
export { DEFAULT_NCCL_OPTIONS, nodeNcclEnv, type NcclOptions } from "./nccl.js";
export { trainingPodEnv, trainingRankEnv, GpufleetEnv, TrainingEnvError, type PodEnvOptions } from "./env.js";
export {
  planGangPods,
  checkGangFits,
  gangPodName,
  placementStatus,
  type GangPod,
  type GangPodOptions,
  type GangFit,
} from "./gang.js";
export {
  decideRestart,
  RestartAction,
  DEFAULT_BACKOFF_MAX_MS,
  type RestartState,
  type RestartDecision,
  type PodPhase,
} from "./restart.js";
