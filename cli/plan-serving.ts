/**
 * `gpufleet plan -f sd.yaml`: what the operator would deploy for a ServingDeployment, computed with the operator's
 * own code and nothing else: the spec checks (controller-checks.ts), the planner input from spec and capacity
 * (planner-bridge.ts), the DistServe planner (run on the operator's planner thread, planner-thread.ts), and the
 * conversion to status.plan with spec.scaling applied (executor/choose-plan.ts). `plan` below is exactly the
 * status.plan the operator writes for a deployment that runs no plan yet; the rest explains it.
 */
import type { GpuProfile } from "../crds/src/gpu-profile.js";
import type { V1Pod } from "@kubernetes/client-node";
import type { ServingDeployment, ServingDeploymentSpec } from "../crds/src/serving-deployment.js";
import { gpuSpec } from "../common/src/hardware/catalog.js";
import { instanceMemory, latencyCoefficients } from "../common/src/models/latency.js";
import { deriveModel } from "../common/src/models/model-shapes.js";
import { checkServingSpec } from "../operator/src/serving/controller-checks.js";
import type {
  ColocatedPlan,
  DisaggregatedSummary,
  ServingPlanInput,
  ServingPlanResult,
} from "../operator/src/serving/distserve/planner.js";
import type { TraceRecord } from "../operator/src/serving/distserve/workload.js";
import { candidatePlan } from "../operator/src/serving/executor/choose-plan.js";
import { clusterNodes, plannerInput } from "../operator/src/serving/planner-bridge.js";
import type { ClusterCapacity } from "../operator/src/cluster/capacity.js";
import { withEngine } from "../operator/src/serving/engines/pod.js";
import { commandLine } from "../operator/src/serving/engines/render.js";
import { placementNodes } from "../operator/src/serving/planner-bridge.js";
import {
  planGroups,
  planHash,
  planSummary,
  placeGroups,
  podObject,
  type StatusPlan,
} from "../operator/src/serving/pools.js";
import { observePod, type ObservedPod } from "../operator/src/serving/rollout.js";
import { capacityByModel, type ClusterView } from "./cluster.js";

export type PlanFn = (input: ServingPlanInput) => Promise<ServingPlanResult>;

export interface PlanAlternative {
  /** disaggregated | vllm (colocated, prefill-first) | chunked (colocated, Sarathi chunked prefill). */
  kind: "disaggregated" | "vllm" | "chunked";
  /** The best shape of this kind, e.g. "P TP1×PP1 + D TP1×PP1, high affinity (unit 5P:3D)". */
  shape: string;
  goodputPerGpu: number;
  /** Whether the deployed plan is of this kind and shape. */
  chosen: boolean;
}

export interface PlanBound {
  limit: "SLO" | "memory" | "capacity";
  /** Whether this limit decided the plan (the others held with room to spare). */
  binding: boolean;
  detail: string;
}

export interface ServingPreview {
  kind: "ServingDeployment";
  namespace: string;
  name: string;
  cluster: { source: string; gpus: ReturnType<typeof capacityByModel> };
  workload: { arrivalRatePerSec: number; lengths: string };
  slo: ServingDeploymentSpec["slo"];
  /** status.plan as the operator writes it; absent when there is no plan. */
  plan?: StatusPlan;
  /** status.planSummary (the printer column). */
  planSummary?: string;
  /** Why there is no plan: the reason of the Planned=False condition and its message. */
  failure?: { reason: string; message: string };
  alternatives: PlanAlternative[];
  bounds: PlanBound[];
  gpuProfile?: {
    /** The GpuProfile the plan used (as status.plan.gpuProfile); absent: the shipped defaults. */
    name?: string;
    gpuModel: string;
    memoryGiB: number;
    peakTflops: number;
    hbmBandwidthGBps: number;
    nvlinkGBpsPerDirection: number;
    achievedTflops: number;
    achievedHbmGBps: number;
    memoryUtilization: number;
  };
  placement: { nodeName: string; gpus: number }[];
  /**
   * For spec.engine.kind vllm or sglang: the engine container's command of each pod the plan would create, as the
   * operator renders it (engines/pod.ts) on the nodes the rollout would pick.
   */
  engineCommands?: { pod: string; role: string; node: string; command: string; env: Record<string, string> }[];
}

export interface ServingPreviewOptions {
  plan: PlanFn;
  /** A user's trace (Azure CSV) replacing the spec's workload lengths. */
  trace?: { path: string; records: readonly TraceRecord[] };
  /** The deployment's own pods in a live cluster: their GPUs are free to it, as the operator gives them back. */
  ownPods?: readonly V1Pod[];
  /** The cluster's GpuProfiles (--live): the planner picks the one the operator would, by GPU model and image. */
  gpuProfiles?: readonly GpuProfile[];
}

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;
const tpPp = (p: { tp: number; pp: number }): string => `TP${p.tp}×PP${p.pp}`;

export async function previewServing(
  sd: ServingDeployment,
  cluster: ClusterView,
  options: ServingPreviewOptions,
): Promise<ServingPreview> {
  const spec = options.trace ? withTrace(sd.spec, options.trace.path) : sd.spec;
  const base: ServingPreview = {
    kind: "ServingDeployment",
    namespace: sd.metadata.namespace ?? "default",
    name: sd.metadata.name!,
    cluster: { source: cluster.source, gpus: capacityByModel(cluster.capacity) },
    workload: { arrivalRatePerSec: spec.workload.arrivalRatePerSec, lengths: describeLengths(sd.spec, options.trace) },
    slo: spec.slo,
    alternatives: [],
    bounds: [],
    placement: [],
  };
  const check = checkServingSpec(spec, cluster.capacity.nodes);
  if (!check.ok) return { ...base, failure: { reason: check.reason, message: check.message } };
  const own = (options.ownPods ?? [])
    .map((p) => observePod(p, { deleting: p.metadata?.deletionTimestamp != null }))
    .filter((p): p is ObservedPod => p !== undefined);
  const input = plannerInput(
    spec,
    clusterNodes(cluster.capacity.nodes, check.gpuModels, own),
    options.trace?.records,
    options.gpuProfiles,
  );
  const result = await options.plan(input);
  const { candidate, failure } = candidatePlan(result, spec.scaling);
  const preview: ServingPreview = { ...base, ...(failure ? { failure } : {}) };
  if (!result.ok) return { ...preview, bounds: failureBounds(failure?.reason ?? result.reason, result.message) };
  const coeffs = latencyCoefficients(result.gpuModel, input.coefficientOverrides);
  const gpu = gpuSpec(result.gpuModel);
  preview.gpuProfile = {
    ...(result.gpuProfile ? { name: result.gpuProfile } : {}),
    gpuModel: gpu.model,
    memoryGiB: gpu.memoryGiB,
    peakTflops: gpu.peakTflops,
    hbmBandwidthGBps: gpu.hbmBandwidthGBps,
    nvlinkGBpsPerDirection: gpu.nvlinkGBpsPerDirection,
    achievedTflops: round(coeffs.achievedTflops, 1),
    achievedHbmGBps: round(coeffs.achievedHbmGBps, 1),
    memoryUtilization: coeffs.memoryUtilization,
  };
  preview.alternatives = alternatives(result, candidate);
  preview.placement = result.gpusByNode;
  if (candidate) {
    preview.plan = candidate;
    preview.planSummary = planSummary(candidate);
    if (sd.spec.engine.kind && sd.spec.engine.kind !== "reference")
      preview.engineCommands = engineCommands(sd, candidate, cluster.capacity);
  }
  preview.bounds = bounds(spec, input, result, candidate, cluster);
  return preview;
}

/** The spec with its workload lengths taken from a trace file (the operator reads a traceRef the same way). */
function withTrace(spec: ServingDeploymentSpec, path: string): ServingDeploymentSpec {
  const { preset: _p, promptTokens: _i, outputTokens: _o, ...workload } = spec.workload;
  return { ...spec, workload: { ...workload, traceRef: { configMapName: "(file)", key: path } } };
}

function describeLengths(spec: ServingDeploymentSpec, trace: ServingPreviewOptions["trace"]): string {
  if (trace) return `trace ${trace.path} (${trace.records.length} requests, --trace)`;
  const w = spec.workload;
  if (w.traceRef) return `trace ConfigMap ${w.traceRef.configMapName}/${w.traceRef.key}`;
  if (w.promptTokens && w.outputTokens)
    return `prompt mean ${w.promptTokens.mean}, output mean ${w.outputTokens.mean} tokens`;
  return `preset ${w.preset ?? "chatbot"}`;
}

function disaggShape(d: DisaggregatedSummary): string {
  return `P ${tpPp(d.prefill)} + D ${tpPp(d.decode)}, ${d.affinity} affinity (unit ${d.unit.prefill}P:${d.unit.decode}D, ${d.unit.gpus} GPU)`;
}
const colocShape = (c: ColocatedPlan): string => `${tpPp(c)}, ${c.batchTokens} batch tokens`;

function alternatives(
  result: Extract<ServingPlanResult, { ok: true }>,
  plan: StatusPlan | undefined,
): PlanAlternative[] {
  const a = result.alternatives;
  const rows: PlanAlternative[] = [];
  const same = (x: { tp: number; pp: number } | null | undefined, y: { tp: number; pp: number } | undefined) =>
    !!x && !!y && x.tp === y.tp && x.pp === y.pp;
  if (a.disaggregated) {
    const d = a.disaggregated;
    const chosen =
      plan?.mode === "disaggregated" &&
      same(d.prefill, plan.prefill) &&
      same(d.decode, plan.decode) &&
      d.affinity === plan.affinity;
    rows.push({ kind: "disaggregated", shape: disaggShape(d), goodputPerGpu: round(d.goodputPerGpu), chosen });
  }
  for (const kind of ["vllm", "chunked"] as const) {
    const c = a[kind];
    if (!c) continue;
    const chosen = plan?.mode === "colocated" && result.colocated?.policy === kind && same(c, plan.colocated);
    rows.push({ kind, shape: colocShape(c), goodputPerGpu: round(c.goodputPerGpu), chosen });
  }
  return rows;
}

/** What limited the plan: the SLOs (per-instance goodput), GPU memory (smallest instance), the free GPUs. */
function bounds(
  spec: ServingDeploymentSpec,
  input: ServingPlanInput,
  result: Extract<ServingPlanResult, { ok: true }>,
  plan: StatusPlan | undefined,
  cluster: ClusterView,
): PlanBound[] {
  const out: PlanBound[] = [];
  const slo = `TTFT ≤ ${spec.slo.ttftMs} ms and TPOT ≤ ${spec.slo.tpotMs} ms for ${spec.slo.attainmentPercent}% of requests`;
  if (result.mode === "disaggregated" && result.prefill && result.decode) {
    out.push({
      limit: "SLO",
      binding: true,
      detail: `${slo}: one prefill ${tpPp(result.prefill)} instance keeps them up to ${result.prefill.goodputPerInstance.toFixed(2)} req/s, one decode ${tpPp(result.decode)} up to ${result.decode.goodputPerInstance.toFixed(2)} req/s; ${spec.workload.arrivalRatePerSec} req/s needs ${result.prefill.replicas} + ${result.decode.replicas}`,
    });
  } else if (result.colocated) {
    const c = result.colocated;
    out.push({
      limit: "SLO",
      binding: true,
      detail: `${slo}: one colocated ${tpPp(c)} instance (${c.policy}) keeps them up to ${c.goodputPerInstance.toFixed(2)} req/s; ${spec.workload.arrivalRatePerSec} req/s needs ${c.replicas}`,
    });
  }
  // Memory: does the smallest instance (one GPU) hold the weights and the longest sequence's KV?
  const model = deriveModel(input.model);
  const coeffs = latencyCoefficients(result.gpuModel, input.coefficientOverrides);
  const one = instanceMemory(model, coeffs, { tp: 1, pp: 1 });
  const longest = input.model.maxContextTokens ?? 0;
  const fitsOne = one.kvCapacityTokens >= longest;
  out.push({
    limit: "memory",
    // Binding when one GPU cannot hold an instance: the smallest plan is then set by memory, not by the SLOs.
    binding: !fitsOne,
    detail: `${spec.model.name} weights take ${(one.weightBytesPerGpu / 2 ** 30).toFixed(1)} GiB of a ${coeffs.memoryGiB} GiB ${result.gpuModel} at TP1, leaving KV room for ${one.kvCapacityTokens} tokens (sequences up to ${longest}): ${fitsOne ? "one GPU holds an instance" : "an instance needs more than one GPU"}`,
  });
  const free = cluster.capacity.nodes
    .filter((n) => n.schedulable && n.gpuModel === result.gpuModel)
    .reduce((sum, n) => sum + n.gpusFree, 0);
  const budget = Math.min(free, spec.scaling.maxGpus ?? Infinity);
  const used = plan?.totalGpus ?? result.totalGpus;
  out.push({
    limit: "capacity",
    binding: used >= budget,
    detail: `the plan takes ${used} of ${free} free ${result.gpuModel} GPUs${spec.scaling.maxGpus !== undefined ? ` (scaling.maxGpus ${spec.scaling.maxGpus})` : ""}`,
  });
  return out;
}

function failureBounds(reason: string, message: string): PlanBound[] {
  const limit =
    reason === "InsufficientCapacity"
      ? "capacity"
      : reason === "ModelDoesNotFit" && !message.includes("SLO") && !message.includes("TTFT")
        ? "memory"
        : reason === "ModelDoesNotFit"
          ? "SLO"
          : undefined;
  return limit ? [{ limit, binding: true, detail: message }] : [];
}

/** The pods the first rollout would create, with the engine rendered into them (the executor's own functions). */
function engineCommands(
  planned: ServingDeployment,
  plan: StatusPlan,
  capacity: ClusterCapacity,
): NonNullable<ServingPreview["engineCommands"]> {
  // Pods carry an owner reference; a file's deployment has no uid yet.
  const sd: ServingDeployment = {
    ...planned,
    metadata: { ...planned.metadata, uid: planned.metadata.uid ?? "not-created-yet" },
  };
  const hash = planHash(plan, sd.spec.engine);
  const { placed } = placeGroups(
    sd.metadata.name!,
    hash,
    planGroups(plan),
    placementNodes(capacity.nodes, plan.gpuModel, []),
  );
  const nodes = new Map(capacity.nodes.map((n) => [n.nodeName, n]));
  return placed.flatMap((g) =>
    g.pods.map((placement) => {
      const pod = withEngine(
        podObject(sd, placement, hash, plan.gpuModel),
        sd,
        placement,
        plan.gpuModel,
        nodes.get(placement.nodeName) ?? { nicType: "ethernet", nicCount: 1 },
      );
      const engine = pod.spec!.containers[0]!;
      const env = Object.fromEntries(
        (engine.env ?? [])
          .filter((e) => !e.name.startsWith("GPUFLEET_"))
          .map((e) => [e.name, e.value ?? `(${e.valueFrom?.fieldRef?.fieldPath ?? "from the pod"})`]),
      );
      return {
        pod: pod.metadata!.name!,
        role: placement.role,
        node: placement.nodeName,
        command: commandLine({ command: engine.command ?? [], args: engine.args ?? [], env: [] }),
        env,
      };
    }),
  );
}
