/**
 * Between the ServingDeployment API and the DistServe planner (pure): the planner's input from the spec and the
 * cluster's capacity, and its answer as the status's plan.
 *
 * The deployment's own pods hold GPUs the cluster capacity counts as used; for planning they are free to it (it
 * may re-plan onto them), or a re-plan would see the deployment crowding itself out.
 */
import type { ServingDeploymentSpec } from "../../../crds/src/serving-deployment.js";
import type { NodeCapacity } from "../cluster/capacity.js";
import { profilesForPlanning, type GpuProfileLike } from "../../../common/src/hardware/gpu-profile-reader.js";
import type { ModelShape } from "../../../common/src/models/model-shapes.js";
import type { ClusterNode, ServingPlanInput, ServingPlanOk } from "./distserve/planner.js";
import type { StatusPlan } from "./pools.js";
import type { ObservedPod } from "./rollout.js";
import type { TraceRecord, WorkloadLengths } from "./distserve/workload.js";

/** The planner's default context length; raised when the spec's token maxima need more. */
const DEFAULT_CONTEXT_TOKENS = 4096;

/**
 * The spec's model as the planner's shape. The API has no MLP-kind field: with paramsBillions and
 * intermediateSize both given, the MLP is taken as gated (three matrices, Llama) when that parameter count is
 * the closer one to paramsBillions, else standard (two, OPT).
 */
export function modelShape(
  model: ServingDeploymentSpec["model"],
  maxContextTokens = DEFAULT_CONTEXT_TOKENS,
): ModelShape {
  const kvHeads = model.kvHeads ?? model.heads;
  let gatedMlp: boolean | undefined;
  if (model.intermediateSize !== undefined && model.paramsBillions !== undefined) {
    const h = model.hiddenSize;
    const kvDim = (kvHeads * h) / model.heads;
    const total = (matrices: number) =>
      model.layers * (2 * h * h + 2 * h * kvDim + matrices * h * model.intermediateSize!) + model.vocabSize * h;
    const target = model.paramsBillions * 1e9;
    gatedMlp = Math.abs(total(3) - target) < Math.abs(total(2) - target);
  }
  return {
    name: model.name,
    layers: model.layers,
    hiddenSize: model.hiddenSize,
    heads: model.heads,
    kvHeads,
    vocabSize: model.vocabSize,
    dtype: model.dtype,
    paramsBillions: model.paramsBillions,
    weightBytes: model.weightBytes,
    intermediateSize: model.intermediateSize,
    gatedMlp,
    maxContextTokens,
  };
}

/** Request lengths from the spec; `trace` is the parsed traceRef when the spec names one. */
export function workloadLengths(
  workload: ServingDeploymentSpec["workload"],
  trace?: readonly TraceRecord[],
): WorkloadLengths {
  if (workload.traceRef) {
    if (!trace)
      throw new Error(`workload.traceRef ${workload.traceRef.configMapName}/${workload.traceRef.key} was not read`);
    return { trace };
  }
  if (workload.promptTokens && workload.outputTokens)
    return { prompt: { ...workload.promptTokens }, output: { ...workload.outputTokens } };
  return workload.preset ?? "chatbot";
}

/** Context tokens the workload needs: the planner samples up to this many per sequence. */
export function contextTokens(workload: ServingDeploymentSpec["workload"], trace?: readonly TraceRecord[]): number {
  let longest = 0;
  if (workload.promptTokens && workload.outputTokens) {
    longest =
      (workload.promptTokens.max ?? workload.promptTokens.mean) +
      (workload.outputTokens.max ?? workload.outputTokens.mean);
  }
  for (const r of trace ?? []) longest = Math.max(longest, r.promptTokens + r.outputTokens);
  return Math.max(DEFAULT_CONTEXT_TOKENS, longest);
}

/**
 * GPU nodes as the planner sees them: schedulable nodes of the allowed GPU models, with the GPUs the deployment's
 * own counted pods hold given back to it.
 */
export function clusterNodes(
  nodes: readonly NodeCapacity[],
  gpuModels: readonly string[],
  ownPods: readonly ObservedPod[],
): ClusterNode[] {
  const own = new Map<string, number>();
  for (const p of ownPods) if (p.counted) own.set(p.nodeName, (own.get(p.nodeName) ?? 0) + p.gpus);
  return nodes
    .filter((n) => n.schedulable && gpuModels.includes(n.gpuModel) && n.gpusAllocatable > 0)
    .map((n) => {
      const gpuCount = n.gpusAllocatable;
      return {
        nodeName: n.nodeName,
        gpuModel: n.gpuModel,
        gpuCount,
        // Our own pods' GPUs are ours to re-plan; everyone else's stay taken, even where the node is overcommitted
        // (our pod pinned there is Pending because others got the GPUs first).
        gpusFree: Math.max(
          0,
          Math.min(gpuCount, gpuCount - ((n.gpusRequested ?? gpuCount - n.gpusFree) - (own.get(n.nodeName) ?? 0))),
        ),
        nicType: n.nicType,
        nicBandwidthGbps: n.nicBandwidthGbps,
        nicCount: n.nicCount,
      };
    });
}

/**
 * GPUs free right now for new pods of the plan, per schedulable node of its GPU model: the capacity's free count
 * less the deployment's pods it does not count yet (created but not yet in the cache).
 */
export function placementNodes(
  nodes: readonly NodeCapacity[],
  gpuModel: string,
  ownPods: readonly ObservedPod[],
): { nodeName: string; gpusFree: number }[] {
  const pending = new Map<string, number>();
  for (const p of ownPods)
    if (!p.counted && !p.failed) pending.set(p.nodeName, (pending.get(p.nodeName) ?? 0) + p.gpus);
  return nodes
    .filter((n) => n.schedulable && n.gpuModel === gpuModel)
    .map((n) => ({ nodeName: n.nodeName, gpusFree: Math.max(0, n.gpusFree - (pending.get(n.nodeName) ?? 0)) }));
}

/**
 * The planner's input for a deployment. `profiles` are the cluster's GpuProfiles: the one that applies on each GPU
 * model (common/src/hardware/gpu-profile-reader.ts) replaces that model's shipped latency coefficients, and the
 * plan names it.
 */
export function plannerInput(
  spec: ServingDeploymentSpec,
  nodes: readonly ClusterNode[],
  trace?: readonly TraceRecord[],
  profiles: readonly GpuProfileLike[] = [],
): ServingPlanInput {
  const measured = profilesForPlanning(profiles, spec.engine.image);
  return {
    ...(Object.keys(measured.names).length > 0
      ? { coefficientOverrides: measured.overrides, gpuProfiles: measured.names }
      : {}),
    model: modelShape(spec.model, contextTokens(spec.workload, trace)),
    slo: { ttftMs: spec.slo.ttftMs, tpotMs: spec.slo.tpotMs, attainmentPercent: spec.slo.attainmentPercent },
    workload: { arrivalRatePerSec: spec.workload.arrivalRatePerSec, lengths: workloadLengths(spec.workload, trace) },
    mode: spec.mode,
    maxGpus: spec.scaling.maxGpus,
    nodes,
    gpuModel: spec.gpu.model,
  };
}

/**
 * The planner's answer as status.plan, with spec.scaling applied: pools below minInstances are raised to it (for
 * low node-affinity plans by whole units), and a pool above maxInstances is an error naming it.
 */
export function toStatusPlan(
  result: ServingPlanOk,
  scaling: ServingDeploymentSpec["scaling"],
): { ok: true; plan: StatusPlan } | { ok: false; message: string } {
  const pool = (p: { tp: number; pp: number; replicas: number }) => ({
    tp: p.tp,
    pp: p.pp,
    replicas: p.replicas,
    gpus: p.tp * p.pp * p.replicas,
  });
  const min = scaling.minInstances;
  const plan: StatusPlan = {
    mode: result.mode,
    gpuModel: result.gpuModel,
    ...(result.gpuProfile ? { gpuProfile: result.gpuProfile } : {}),
    totalGpus: result.totalGpus,
    goodputPerGpu: round(result.goodputPerGpu),
    predictedAttainmentPercent: round(result.predictedAttainmentPercent),
    colocatedGoodputPerGpu: result.colocated ? round(result.colocated.goodputPerGpu) : undefined,
    explanation: result.explanation,
  };
  if (result.mode === "colocated" && result.colocated) {
    plan.colocated = pool({ ...result.colocated, replicas: Math.max(min, result.colocated.replicas) });
  } else if (result.prefill && result.decode) {
    plan.affinity = result.affinity ?? "high";
    let p = result.prefill.replicas;
    let d = result.decode.replicas;
    if (plan.affinity === "low") {
      const units = gcdOf(p, d);
      const [a, b] = [p / units, d / units];
      const wanted = Math.max(units, Math.ceil(min / a), Math.ceil(min / b));
      [p, d] = [wanted * a, wanted * b];
    } else {
      [p, d] = [Math.max(min, p), Math.max(min, d)];
    }
    plan.prefill = pool({ ...result.prefill, replicas: p });
    plan.decode = pool({ ...result.decode, replicas: d });
  }
  plan.totalGpus = (plan.prefill?.gpus ?? 0) + (plan.decode?.gpus ?? 0) + (plan.colocated?.gpus ?? 0);
  if (scaling.maxInstances !== undefined) {
    for (const role of ["prefill", "decode", "colocated"] as const) {
      const replicas = plan[role]?.replicas ?? 0;
      if (replicas > scaling.maxInstances) {
        return {
          ok: false,
          message: `the plan needs ${replicas} ${role} instances for ${result.explanation.split(";")[0]}, more than scaling.maxInstances ${scaling.maxInstances}`,
        };
      }
    }
  }
  return { ok: true, plan };
}

const gcdOf = (a: number, b: number): number => (b === 0 ? a : gcdOf(b, a % b));
/** Four significant decimals: enough for the printer and stable against float noise between runs. */
const round = (x: number): number => Math.round(x * 1e4) / 1e4;
