/**
 * Checks of a ServingDeployment the schema cannot express, because they depend on the cluster: is there a GPU type
 * the user allows, and can its GPUs hold the model's weights at all. Pure; the planner then decides the real plan.
 */
import type { ServingDeploymentSpec } from "../../../crds/src/serving-deployment.js";
import { Reason } from "../../../crds/src/reasons.js";
import { gpuSpec } from "../../../common/src/hardware/catalog.js";
import { describeCapacity, type NodeCapacity } from "../cluster/capacity.js";

export type SpecCheck = { ok: true; gpuModels: string[] } | { ok: false; reason: Reason; message: string };

const DTYPE_BYTES = { bf16: 2, fp16: 2, fp8: 1 } as const;
/** Share of GPU memory weights may take; the rest is activations and KV cache (vLLM's default utilization is 0.9). */
const WEIGHT_MEMORY_FRACTION = 0.9;
const GiB = 1024 ** 3;

export function modelWeightBytes(model: ServingDeploymentSpec["model"]): number {
  return model.weightBytes ?? Math.round((model.paramsBillions ?? 0) * 1e9 * DTYPE_BYTES[model.dtype]);
}

export function checkServingSpec(spec: ServingDeploymentSpec, nodes: readonly NodeCapacity[]): SpecCheck {
  const allowed = nodes.filter(
    (n) =>
      (!spec.gpu.model || n.gpuModel === spec.gpu.model) &&
      (!spec.gpu.minMemoryGiB || gpuSpec(n.gpuModel).memoryGiB >= spec.gpu.minMemoryGiB),
  );
  if (allowed.length === 0) {
    const wanted = [
      spec.gpu.model && `GPU model ${spec.gpu.model}`,
      spec.gpu.minMemoryGiB && `≥${spec.gpu.minMemoryGiB} GiB per GPU`,
    ]
      .filter(Boolean)
      .join(" with ");
    return {
      ok: false,
      reason: Reason.NoMatchingNodes,
      message: `no node offers ${wanted || "GPUs"}; ${describeCapacity(nodes)}`,
    };
  }
  const weightBytes = modelWeightBytes(spec.model);
  const gpuModels = [...new Set(allowed.map((n) => n.gpuModel))].sort();
  const fitting = gpuModels.filter((model) => {
    const gpus = allowed.filter((n) => n.gpuModel === model).reduce((sum, n) => sum + n.gpusAllocatable, 0);
    return weightBytes <= gpus * gpuSpec(model).memoryGiB * GiB * WEIGHT_MEMORY_FRACTION;
  });
  if (fitting.length === 0) {
    return {
      ok: false,
      reason: Reason.ModelDoesNotFit,
      message: `${spec.model.name} needs ${(weightBytes / GiB).toFixed(0)} GiB for weights, more than all GPUs of any allowed type can hold; ${describeCapacity(allowed)}`,
    };
  }
  if (spec.scaling.maxGpus !== undefined) {
    const minGpus = Math.min(
      ...fitting.map((model) => Math.ceil(weightBytes / (gpuSpec(model).memoryGiB * GiB * WEIGHT_MEMORY_FRACTION))),
    );
    if (minGpus > spec.scaling.maxGpus) {
      return {
        ok: false,
        reason: Reason.InvalidSpec,
        message: `scaling.maxGpus is ${spec.scaling.maxGpus} but ${spec.model.name}'s weights alone need at least ${minGpus} GPUs`,
      };
    }
  }
  return { ok: true, gpuModels: fitting };
}
