/**
 * The ServingDeployment executor (issue 4): called by the reconciler after the spec checks pass. Thin: each part
 * below reads or writes, and asks pure code what to do (LWS's planner/executor split).
 *
 *   fetch    our pods (cache + what we just wrote, observe.ts) and the trace ConfigMap   (trace-reader.ts)
 *   plan     planner input from spec + capacity, the deployment's own GPUs given back    (../planner-bridge.ts)
 *            planServing, re-run only when its input changed                            (planner-cache.ts)
 *            keep or replace the running plan                                           (choose-plan.ts, ../hysteresis)
 *            instances per role: the plan's, or the autoscaler's with its drains       (../scheduler/groups.ts)
 *            this step's creates and deletes, surge first                               (../rollout.ts)
 *   apply    pods per instance/stage pinned to their nodes, Services per role           (apply.ts, ../pools.ts)
 *   status   plan, summary, readiness, conditions, and Events for plan changes          (status.ts)
 *
 * The caches lag our own writes, so created pods are remembered until the pod cache shows them and deleted pods
 * until it stops showing them (write-memory.ts).
 */
import type { V1ConfigMap, V1Pod, V1Service } from "@kubernetes/client-node";
import { API_GROUP_VERSION } from "../../../../crds/src/common.js";
import { plannedProfile } from "../../../../common/src/hardware/planned-profile.js";
import { Reason } from "../../../../crds/src/reasons.js";
import type { GpuProfile } from "../../../../crds/src/gpu-profile.js";
import { ServingDeploymentNames, type ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import type { ClusterCapacity } from "../../cluster/capacity.js";
import type { Applier } from "../../runtime/apply.js";
import type { Clock } from "../../runtime/clock.js";
import type { Logger } from "../../runtime/logger.js";
import type { ServingExecutor, ServingExecutorOutcome } from "../controller.js";
import { planServing } from "../distserve/planner.js";
import { clusterNodes, placementNodes, plannerInput } from "../planner-bridge.js";
import { planGroups, planHash, planRoles, type Role, type StatusPlan } from "../pools.js";
import { planRollout, type ObservedPod } from "../rollout.js";
import { scaledGroups } from "../scheduler/groups.js";
import type { ScalingMemory } from "../scheduler/state.js";
import { ServingApplier } from "./apply.js";
import { choosePlan } from "./choose-plan.js";
import { lostNodesOf, observeOwnPods } from "./observe.js";
import { PlannerCache, type PlanFn } from "./planner-cache.js";
import { invalidSpecOutcome, noPlanOutcome, plannedOutcome, type StatusContext } from "./status.js";
import { TraceReader, type TraceRead } from "./trace-reader.js";
import { WriteMemory } from "./write-memory.js";

export interface ServingExecutorDeps {
  applier: Pick<Applier, "apply" | "delete">;
  /** The pod cache (all namespaces); the deployment's pods are those labelled with and owned by it. */
  pods: { list(): readonly V1Pod[] };
  /** The GpuProfile cache: measured latency coefficients the planner uses instead of the shipped defaults. */
  gpuProfiles?: { list(): readonly GpuProfile[] };
  /** Reads a ConfigMap; undefined when it does not exist. */
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** The deployment's Services (by its label). */
  listServices(namespace: string, sdName: string): Promise<V1Service[]>;
  clock: Pick<Clock, "now">;
  logger?: Pick<Logger, "info" | "debug">;
  /** The planner; planServing on this thread unless another is given (the operator runs it on a worker thread). */
  plan?: PlanFn;
  /** A new plan must beat the running one by more than this (goodput per GPU or GPUs); default 10. */
  bandPercent?: number;
  /** Old instances per role in flight out at once during a rollout; default 1. */
  maxUnavailable?: number;
  /** Host directory of the agent's worker socket, mounted into serving pods (default /var/run/gpufleet). */
  workerSocketDir?: string;
  /** Image of the load adapter sidecar of vLLM / SGLang pods (default: the chart's gpufleet image). */
  engineAdapterImage?: string;
  /** Re-check a rollout this often, in case a pod event is missed; default 2 s. */
  rolloutRetryMs?: number;
  /** Re-plan a deployment waiting for GPUs this often (other workloads' pods wake no event for it); default 15 s. */
  capacityRetryMs?: number;
  /** How long written-but-unseen pods are remembered; default 60 s. */
  memoryTtlMs?: number;
  /**
   * The autoscaler's desired instances per role and drains (scheduler/state.ts), shared with the scheduler loop:
   * the rollout keeps those counts instead of the plan's replicas and status.scaling shows them. Without it the
   * plan's replicas are rolled out as they are.
   */
  scaling?: ScalingMemory;
}

export function createServingExecutor(deps: ServingExecutorDeps): ServingExecutor {
  const bandPercent = deps.bandPercent ?? 10;
  const maxUnavailable = deps.maxUnavailable ?? 1;
  const rolloutRetryMs = deps.rolloutRetryMs ?? 2_000;
  const capacityRetryMs = deps.capacityRetryMs ?? 15_000;
  const memory = new WriteMemory(deps.memoryTtlMs ?? 60_000);
  const planner = new PlannerCache(deps.plan ?? planServing);
  const traces = new TraceReader((namespace, name) => deps.readConfigMap(namespace, name));
  const applier = new ServingApplier(deps, memory);

  return async (
    cached: ServingDeployment,
    capacity: ClusterCapacity,
    gpuModels: string[],
  ): Promise<ServingExecutorOutcome> => {
    // Informer objects may lack TypeMeta; owner references need it.
    const sd: ServingDeployment = { ...cached, apiVersion: API_GROUP_VERSION, kind: ServingDeploymentNames.kind };
    const nowMs = deps.clock.now();
    const status: StatusContext = { previous: sd.status?.conditions, rolloutRetryMs, capacityRetryMs };

    // Fetch.
    const observed = observeOwnPods(sd, deps.pods.list(), memory, nowMs);
    const trace = await readTraceOf(sd);
    if (!trace.ok) return invalidSpecOutcome(status, trace.message);

    // Plan: the planner's answer, kept or not, then the rollout step towards the plan chosen.
    const result = await planner.planFor(
      sd.metadata.uid!,
      plannerInput(sd.spec, clusterNodes(capacity.nodes, gpuModels, observed), trace.records, deps.gpuProfiles?.list()),
    );
    const lostNodes = lostNodesOf(observed, capacity);
    const { decision, failure } = choosePlan({ sd, result, capacity, observed, lostNodes, bandPercent });
    deps.logger?.debug(
      {
        sd: `${sd.metadata.namespace}/${sd.metadata.name}`,
        decision: decision.reason,
        changed: decision.changed,
        failure: failure?.reason,
      },
      "serving plan decided",
    );
    const running = sd.status?.plan;
    if (!decision.plan)
      return noPlanOutcome(
        status,
        failure ?? { reason: Reason.InsufficientCapacity, message: "the planner found no plan" },
        running,
        observed,
      );
    const target = decision.plan;
    const hash = planHash(target, sd.spec.engine);
    const scaling = deps.scaling?.resolve(sd, target, hash, observed);
    const step = planRollout({
      sdName: sd.metadata.name!,
      targetHash: hash,
      groups: scaling ? scaledGroups(target, scaling, observed, hash) : planGroups(target),
      pods: observed,
      free: placementNodes(capacity.nodes, target.gpuModel, observed).filter((n) => !lostNodes.has(n.nodeName)),
      lostNodes,
      maxUnavailable,
    });

    // Apply. New pods carry the profile the target plan names, so simulated engines step with its numbers.
    const gpuProfile = plannedProfile(deps.gpuProfiles?.list() ?? [], target);
    const nodes = new Map(capacity.nodes.map((n) => [n.nodeName, n]));
    await applier.applyRollout(sd, step, hash, target, nowMs, nodes, gpuProfile);
    await applier.syncServices(sd, liveRoles(target, observed, step.delete));

    // Status.
    const outcome = plannedOutcome(status, { target, decision, step, failure, before: running });
    return scaling ? { ...outcome, status: { ...outcome.status, scaling } } : outcome;
  };

  /** The trace the spec's workload names, if any (no records when it names none). */
  async function readTraceOf(sd: ServingDeployment): Promise<TraceRead | { ok: true; records: undefined }> {
    const ref = sd.spec.workload.traceRef;
    if (!ref) return { ok: true, records: undefined };
    return traces.read(sd.metadata.namespace!, ref.configMapName, ref.key);
  }
}

/** Roles that keep a Service: the target plan's, and those of pods still serving after this step's deletes. */
function liveRoles(target: StatusPlan, observed: readonly ObservedPod[], deleted: readonly string[]): Role[] {
  return [
    ...new Set<Role>([
      ...planRoles(target),
      ...observed.filter((p) => !p.deleting && !deleted.includes(p.name)).map((p) => p.role),
    ]),
  ];
}
