/**
 * The engine a serving pod describes, from the planner's own models: step times from instanceLatencyModel and KV
 * capacity from instanceMemory (common/src/models/latency.ts) for the pod's model shape, TP×PP and its node's
 * GPU model, with the coefficients of the GpuProfile the plan used when the pod carries one (the same
 * latencyCoefficients merge the planner does, so the simulated instance steps as the plan predicted). Scheduler
 * limits are vLLM's defaults without chunked prefill: 16-token blocks, max_num_seqs 256, max_num_batched_tokens =
 * max(context length, 2048) so any admissible prompt fits one prefill.
 */
import {
  instanceLatencyModel,
  instanceMemory,
  latencyCoefficients,
  type InstanceLinks,
  type Parallelism,
} from "../../../../common/src/models/latency.js";
import { plannedOverrides, type PlannedGpuProfile } from "../../../../common/src/hardware/planned-profile.js";
import { deriveModel, type ModelShape } from "../../../../common/src/models/model-shapes.js";
import type { EngineConfig, ServingRole } from "./engine.js";

export const VLLM_DEFAULTS = { blockSizeTokens: 16, maxNumSeqs: 256, minBatchedTokens: 2048 } as const;

export interface ServingWorkerModel {
  role: ServingRole;
  shape: ModelShape;
  parallelism: Parallelism;
  gpuModel: string;
  links?: InstanceLinks;
  /** The GpuProfile the plan was made with (pod env GPUFLEET_GPU_PROFILE); absent: the shipped defaults. */
  gpuProfile?: PlannedGpuProfile;
}

export class EngineConfigError extends Error {
  override name = "EngineConfigError";
}

export function servingEngineConfig(w: ServingWorkerModel): EngineConfig {
  const model = deriveModel(w.shape);
  const profile = w.gpuProfile;
  // A profile measured on another GPU model says nothing about this one; running the defaults instead would
  // simulate a fleet other than the planned one without a word.
  if (profile && profile.gpuModel !== w.gpuModel)
    throw new EngineConfigError(
      `the pod's GpuProfile ${profile.name} is for ${profile.gpuModel}, but its node has ${w.gpuModel} GPUs`,
    );
  const coeffs = latencyCoefficients(w.gpuModel, plannedOverrides(profile));
  const memory = instanceMemory(model, coeffs, w.parallelism);
  if (memory.kvCapacityTokens <= 0) {
    throw new EngineConfigError(
      `${w.shape.name} at TP=${w.parallelism.tp} PP=${w.parallelism.pp} does not fit ${w.gpuModel}: ${(memory.weightBytesPerGpu / 2 ** 30).toFixed(1)} GiB of weights per GPU leave no room for KV`,
    );
  }
  return {
    role: w.role,
    modelName: w.shape.name,
    latency: instanceLatencyModel(model, coeffs, w.parallelism, w.links),
    kvBytesPerToken: model.kvBytesPerToken,
    kvCapacityTokens: memory.kvCapacityTokens,
    blockSizeTokens: VLLM_DEFAULTS.blockSizeTokens,
    maxNumSeqs: VLLM_DEFAULTS.maxNumSeqs,
    maxBatchedTokens: Math.max(model.maxContextTokens, VLLM_DEFAULTS.minBatchedTokens),
    maxContextTokens: model.maxContextTokens,
  };
}
