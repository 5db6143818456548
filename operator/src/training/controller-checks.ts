/**
 * Checks of a TrainingJob the schema cannot express, because they depend on the cluster: are there enough nodes of
 * the right kind at all (free or not), and can tp × pp GPUs hold the model. Waiting for GPUs to free up is the
 * gang placement's business (Unschedulable); these checks catch specs no amount of waiting will satisfy.
 */
import type { TrainingJobSpec } from "../../../crds/src/training-job.js";
import { Reason } from "../../../crds/src/reasons.js";
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import { describeCapacity, type NodeCapacity } from "../cluster/capacity.js";

export type SpecCheck = { ok: true; candidateNodes: NodeCapacity[] } | { ok: false; reason: Reason; message: string };

/** bf16 weights + bf16 gradients: the least any GPU of a tp × pp shard holds, before optimizer state. */
const MIN_TRAINING_BYTES_PER_PARAM = 4;
const GiB = 1024 ** 3;

export function checkTrainingSpec(spec: TrainingJobSpec, nodes: readonly NodeCapacity[]): SpecCheck {
  const ofModel = nodes.filter((n) => !spec.placement.gpuModel || n.gpuModel === spec.placement.gpuModel);
  if (ofModel.length === 0) {
    return {
      ok: false,
      reason: Reason.NoMatchingNodes,
      message: `no node has GPU model ${spec.placement.gpuModel}; ${describeCapacity(nodes)}`,
    };
  }
  const bigEnough = ofModel.filter((n) => n.gpusAllocatable >= spec.gpusPerNode);
  if (bigEnough.length === 0) {
    const largest = Math.max(...ofModel.map((n) => n.gpusAllocatable));
    return {
      ok: false,
      reason: Reason.InvalidSpec,
      message: `gpusPerNode is ${spec.gpusPerNode} but the largest node has ${largest} GPUs`,
    };
  }
  if (bigEnough.length < spec.nodes) {
    return {
      ok: false,
      reason: Reason.InsufficientCapacity,
      message: `needs ${spec.nodes} nodes with ${spec.gpusPerNode} GPUs (${spec.nodes * spec.gpusPerNode} GPUs); the cluster has ${bigEnough.length} such nodes (${describeCapacity(ofModel)})`,
    };
  }
  const { tp, pp } = spec.parallelism;
  const perGpuBytes = (spec.model.paramsBillions * 1e9 * MIN_TRAINING_BYTES_PER_PARAM) / (tp * pp);
  const largestMemoryGiB = Math.max(...bigEnough.map((n) => gpuSpec(n.gpuModel).memoryGiB));
  if (perGpuBytes > largestMemoryGiB * GiB) {
    return {
      ok: false,
      reason: Reason.ModelDoesNotFit,
      message: `each GPU would hold at least ${(perGpuBytes / GiB).toFixed(0)} GiB of weights and gradients (${spec.model.paramsBillions}B params over tp×pp=${tp * pp}), more than ${largestMemoryGiB} GiB; raise tp or pp`,
    };
  }
  return { ok: true, candidateNodes: bigEnough };
}
