/**
 * The ServingDeployment plan step (issue 4): called by the reconciler after the spec checks pass. Thin: it reads
 * (pods from the cache, a trace ConfigMap from the API), asks pure code what to do, and does it.
 *
 *   planner input   spec + capacity, the deployment's own GPUs given back to it      (planner-input.ts)
 *   plan            planServing, kept or replaced by hysteresis                       (plan.ts, hysteresis.ts)
 *   objects         pods per instance/stage pinned to their nodes, Services per role  (pools.ts)
 *   rollout         this step's creates and deletes, surge first                      (rollout.ts)
 *   apply           server-side apply / delete under the operator's field manager; every object has the
 *                   ServingDeployment as controller owner, so deleting it garbage-collects them
 *   status          plan, summary, readiness, conditions, and Events for plan changes
 *
 * The caches lag our own writes, so created pods are remembered until the pod cache shows them (their GPUs are
 * taken and their groups not missing) and deleted pods until it stops showing them (never counted as serving).
 * Entries expire, and all of it is recoverable from the API: a new leader only re-learns it from the caches.
 */
import { CoreV1Api, type KubeConfig, type V1ConfigMap, type V1Pod, type V1Service } from "@kubernetes/client-node";
import { API_GROUP_VERSION } from "../../../crds/src/common.js";
import { findCondition } from "../../../crds/src/conditions.js";
import { OwnedLabel, Reason, ServingCondition } from "../../../crds/src/reasons.js";
import { ServingDeploymentNames, ServingPhase, type ServingDeployment } from "../../../crds/src/serving-deployment.js";
import type { ClusterCapacity } from "../cluster/capacity.js";
import type { Applier } from "../runtime/apply.js";
import type { Clock } from "../runtime/clock.js";
import { isNotFound, kubeCall } from "../runtime/errors.js";
import type { Logger } from "../runtime/logger.js";
import type { PendingEvent } from "../runtime/status.js";
import type { ServingPlanOutcome, ServingPlanStep } from "./controller.js";
import { decidePlan, type PlanDecision } from "./hysteresis.js";
import { planServing, type ServingPlanInput, type ServingPlanResult } from "./plan.js";
import { PlannerThread } from "./planner-thread.js";
import { clusterNodes, placementNodes, plannerInput, toStatusPlan } from "./planner-input.js";
import { planGroups, planHash, planRoles, planSummary, podObject, serviceObjects, type Role, type StatusPlan } from "./pools.js";
import { observePod, planRollout, runningPlanFits, type ObservedPod, type RolloutStep } from "./rollout.js";
import { parseAzureTraceCsv, type TraceRecord } from "./workload.js";

export interface ServingPlanStepDeps {
  applier: Pick<Applier, "apply" | "delete">;
  /** The pod cache (all namespaces); the deployment's pods are those labelled with and owned by it. */
  pods: { list(): readonly V1Pod[] };
  /** Reads a ConfigMap; undefined when it does not exist. */
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  /** The deployment's Services (by its label). */
  listServices(namespace: string, sdName: string): Promise<V1Service[]>;
  clock: Pick<Clock, "now">;
  logger?: Pick<Logger, "info" | "debug">;
  /** The planner; planServing on this thread unless another is given (the operator runs it on a worker thread). */
  plan?: (input: ServingPlanInput) => ServingPlanResult | Promise<ServingPlanResult>;
  /** A new plan must beat the running one by more than this (goodput per GPU or GPUs); default 10. */
  bandPercent?: number;
  /** Old instances per role in flight out at once during a rollout; default 1. */
  maxUnavailable?: number;
  /** Host directory of the agent's worker socket, mounted into serving pods (default /var/run/gpufleet). */
  workerSocketDir?: string;
  /** Re-check a rollout this often, in case a pod event is missed; default 2 s. */
  rolloutRetryMs?: number;
  /** Re-plan a deployment waiting for GPUs this often (other workloads' pods wake no event for it); default 15 s. */
  capacityRetryMs?: number;
  /** How long written-but-unseen pods are remembered; default 60 s. */
  memoryTtlMs?: number;
}

type ConditionOut = ServingPlanOutcome["conditions"][number];

/** The plan step wired to a cluster: ConfigMaps and Services read with the core API. */
export function createClusterServingPlanStep(opts: Omit<ServingPlanStepDeps, "readConfigMap" | "listServices"> & { kubeConfig: KubeConfig }): ServingPlanStep {
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const planner = new PlannerThread();
  return createServingPlanStep({
    plan: (input) => planner.plan(input),
    ...opts,
    async readConfigMap(namespace, name) {
      try {
        return await kubeCall(`read ConfigMap ${namespace}/${name}`, () => core.readNamespacedConfigMap({ name, namespace }));
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async listServices(namespace, sdName) {
      const list = await kubeCall(`list Services of ${namespace}/${sdName}`, () => core.listNamespacedService({ namespace, labelSelector: `${OwnedLabel.servingDeployment}=${sdName}` }));
      return list.items;
    },
  });
}

const PLANNER_REASON: Record<string, Reason> = { InsufficientCapacity: Reason.InsufficientCapacity, ModelDoesNotFit: Reason.ModelDoesNotFit, InvalidInput: Reason.InvalidSpec };

export function createServingPlanStep(deps: ServingPlanStepDeps): ServingPlanStep {
  const plan = deps.plan ?? planServing;
  const bandPercent = deps.bandPercent ?? 10;
  const maxUnavailable = deps.maxUnavailable ?? 1;
  const rolloutRetryMs = deps.rolloutRetryMs ?? 2_000;
  const capacityRetryMs = deps.capacityRetryMs ?? 15_000;
  const memory = new WriteMemory(deps.memoryTtlMs ?? 60_000);
  // The planner simulates thousands of requests per candidate: run it again only when its input changed.
  const plans = new Map<string, { key: string; result: ServingPlanResult }>();
  const traces = new Map<string, { resourceVersion: string; records: TraceRecord[] }>();
  const appliedServices = new Map<string, string>();

  return async (cached: ServingDeployment, capacity: ClusterCapacity, gpuModels: string[]): Promise<ServingPlanOutcome> => {
    // Informer objects may lack TypeMeta; owner references need it.
    const sd: ServingDeployment = { ...cached, apiVersion: API_GROUP_VERSION, kind: ServingDeploymentNames.kind };
    const namespace = sd.metadata.namespace!;
    const name = sd.metadata.name!;
    const uid = sd.metadata.uid!;
    const generation = sd.metadata.generation ?? 0;
    const nowMs = deps.clock.now();
    const previous = sd.status?.conditions;

    // Observe our pods: the cache's, plus those we created that it does not show yet.
    const allPods = deps.pods.list();
    memory.sync(allPods, nowMs);
    const cachedOwn = allPods.filter((p) => p.metadata?.namespace === namespace && p.metadata.labels?.[OwnedLabel.servingDeployment] === name && p.metadata.ownerReferences?.some((o) => o.uid === uid));
    const observed: ObservedPod[] = [];
    for (const p of cachedOwn) {
      const o = observePod(p, { deleting: p.metadata?.deletionTimestamp !== undefined || memory.isDeleted(p.metadata?.uid), nowMs });
      if (o) observed.push(o);
    }
    for (const p of memory.assumedFor(uid)) {
      const o = observePod(p, { counted: false });
      if (o) observed.push(o);
    }

    // The workload's trace, when the spec names one.
    let trace: TraceRecord[] | undefined;
    const ref = sd.spec.workload.traceRef;
    if (ref) {
      const read = await readTrace(namespace, ref.configMapName, ref.key);
      if (!read.ok) return invalidSpec(read.message);
      trace = read.records;
    }

    // Plan, then keep or replace the running plan.
    const input = plannerInput(sd.spec, clusterNodes(capacity.nodes, gpuModels, observed), trace);
    const result = await planFor(uid, input);
    let candidate: StatusPlan | undefined;
    let failure: { reason: Reason; message: string } | undefined;
    if (result.ok) {
      const converted = toStatusPlan(result, sd.spec.scaling);
      if (converted.ok) candidate = converted.plan;
      else failure = { reason: Reason.InvalidSpec, message: converted.message };
    } else {
      failure = { reason: PLANNER_REASON[result.reason] ?? Reason.InvalidSpec, message: result.message };
    }
    const running = sd.status?.plan;
    const planFresh = running !== undefined && sd.status?.observedGeneration === generation && findCondition(previous, ServingCondition.Planned)?.status === "True";
    const lostNodes = lostNodesOf(observed, capacity);
    const decision = decidePlan({
      current: running,
      specChanged: !planFresh,
      candidate,
      currentFits:
        running !== undefined &&
        runningPlanFits({
          sdName: name,
          plan: running,
          hash: planHash(running, sd.spec.engine),
          pods: observed,
          free: placementNodes(capacity.nodes, running.gpuModel, observed).filter((n) => !lostNodes.has(n.nodeName)),
          lostNodes,
        }),
      arrivalRatePerSec: sd.spec.workload.arrivalRatePerSec,
      bandPercent,
    });
    deps.logger?.debug({ sd: `${namespace}/${name}`, decision: decision.reason, changed: decision.changed, failure: failure?.reason }, "serving plan decided");

    if (!decision.plan) return noPlan(failure ?? { reason: Reason.InsufficientCapacity, message: "the planner found no plan" }, running);

    // Roll the pods towards the plan.
    const target = decision.plan;
    const hash = planHash(target, sd.spec.engine);
    const step = planRollout({
      sdName: name,
      targetHash: hash,
      groups: planGroups(target),
      pods: observed,
      free: placementNodes(capacity.nodes, target.gpuModel, observed).filter((n) => !lostNodes.has(n.nodeName)),
      lostNodes,
      maxUnavailable,
    });
    await execute(sd, step, hash, target, nowMs);
    const liveRoles = new Set<Role>([...planRoles(target), ...observed.filter((p) => !p.deleting && !step.delete.includes(p.name)).map((p) => p.role)]);
    await syncServices(sd, [...liveRoles]);
    return planned(target, decision, step, failure, running);

    // ---- helpers closing over this reconcile ----

    function invalidSpec(message: string): ServingPlanOutcome {
      const flipped = flipsTo(ServingCondition.Planned, "False", Reason.InvalidSpec) || findCondition(previous, ServingCondition.Planned)?.message !== message;
      return {
        status: { phase: ServingPhase.Pending },
        conditions: [
          { type: ServingCondition.Planned, status: "False", reason: Reason.InvalidSpec, message },
          { type: ServingCondition.Available, status: "False", reason: Reason.InvalidSpec, message: "no plan" },
        ],
        events: flipped ? [{ type: "Warning", reason: Reason.InvalidSpec, message }] : [],
        // A ConfigMap created or fixed later wakes no event for this deployment.
        requeueAfterMs: capacityRetryMs,
      };
    }

    function noPlan(why: { reason: Reason; message: string }, dropped: StatusPlan | undefined): ServingPlanOutcome {
      const capacityShort = why.reason === Reason.InsufficientCapacity;
      const events: PendingEvent[] = [];
      if (flipsTo(ServingCondition.Planned, "False", why.reason)) events.push({ type: "Warning", reason: why.reason, message: why.message });
      const left = observed.filter((p) => !p.deleting).length;
      const keeping = left > 0 ? `; ${left} pod(s) of ${dropped ? `the previous plan (${planSummary(dropped)})` : "an earlier plan"} keep serving` : "";
      return {
        status: { phase: ServingPhase.Pending, plan: undefined, planSummary: undefined, ready: undefined, readyInstances: undefined, desiredInstances: undefined },
        conditions: [
          { type: ServingCondition.Planned, status: "False", reason: why.reason, message: why.message },
          { type: ServingCondition.InsufficientCapacity, status: capacityShort ? "True" : "False", reason: capacityShort ? Reason.InsufficientCapacity : Reason.AsExpected, message: capacityShort ? why.message + keeping : "" },
          { type: ServingCondition.Available, status: "False", reason: why.reason, message: `no plan for this spec${keeping}` },
          { type: ServingCondition.Progressing, status: "False", reason: why.reason, message: "no plan to roll out" },
        ],
        events,
        requeueAfterMs: capacityShort ? capacityRetryMs : undefined,
      };
    }

    function planned(target: StatusPlan, decision: PlanDecision, step: RolloutStep, failure: { reason: Reason; message: string } | undefined, before: StatusPlan | undefined): ServingPlanOutcome {
      const summary = planSummary(target);
      const ready = `${step.readyInstances}/${step.desiredInstances}`;
      const allReady = step.readyInstances === step.desiredInstances;
      const events: PendingEvent[] = [];
      if (decision.changed) {
        events.push(
          before
            ? { type: "Normal", reason: Reason.PlanChanged, message: `${planSummary(before)} → ${summary} (${decision.reason}): ${target.explanation ?? ""}` }
            : { type: "Normal", reason: Reason.PlanReady, message: `${summary}: ${target.explanation ?? ""}` },
        );
      }
      // The running plan is kept but cannot be repaired, and the planner finds nothing better that fits.
      const short = failure?.reason === Reason.InsufficientCapacity && step.blocked.length > 0;
      const shortMessage = short ? `${summary} cannot be repaired: ${failure.message}` : "";
      if (short && flipsTo(ServingCondition.InsufficientCapacity, "True", Reason.InsufficientCapacity)) {
        events.push({ type: "Warning", reason: Reason.InsufficientCapacity, message: shortMessage });
      }
      if (allReady && conditionFlips(ServingCondition.Available, "True", Reason.PodsReady, `all ${step.desiredInstances} instances of ${summary} are ready`)) {
        events.push({ type: "Normal", reason: Reason.PodsReady, message: `all ${step.desiredInstances} instances of ${summary} are ready` });
      }
      const conditions: ConditionOut[] = [
        { type: ServingCondition.Planned, status: "True", reason: Reason.PlanReady, message: `${summary}: ${target.explanation ?? ""}` },
        short
          ? { type: ServingCondition.InsufficientCapacity, status: "True", reason: Reason.InsufficientCapacity, message: shortMessage }
          : { type: ServingCondition.InsufficientCapacity, status: "False", reason: Reason.AsExpected, message: "" },
        allReady
          ? { type: ServingCondition.Available, status: "True", reason: Reason.PodsReady, message: `all ${step.desiredInstances} instances of ${summary} are ready` }
          : { type: ServingCondition.Available, status: "False", reason: Reason.PodsPending, message: `${ready} instances of ${summary} ready` },
        step.complete
          ? { type: ServingCondition.Progressing, status: "False", reason: Reason.AsExpected, message: `${summary} is rolled out` }
          : { type: ServingCondition.Progressing, status: "True", reason: Reason.PodsPending, message: `rolling out ${summary}: ${ready} ready${step.waiting ? `; ${step.waiting}` : ""}` },
      ];
      return {
        status: {
          phase: step.complete ? ServingPhase.Available : short ? ServingPhase.Degraded : ServingPhase.Progressing,
          plan: target,
          planSummary: summary,
          ready,
          readyInstances: step.readyInstances,
          desiredInstances: step.desiredInstances,
        },
        conditions,
        events,
        requeueAfterMs: step.complete ? undefined : step.waiting ? capacityRetryMs : rolloutRetryMs,
      };
    }

    function conditionFlips(type: string, status: string, reason: string, message: string): boolean {
      const c = findCondition(previous, type);
      return c?.status !== status || c.reason !== reason || c.message !== message;
    }

    /**
     * Whether a condition newly takes this status and reason. Warnings about capacity fire on this, not on every
     * new message: the planner's message carries the cluster's free GPU count, which moves with other workloads.
     */
    function flipsTo(type: string, status: string, reason: string): boolean {
      const c = findCondition(previous, type);
      return c?.status !== status || c.reason !== reason;
    }
  };

  async function readTrace(namespace: string, configMapName: string, key: string): Promise<{ ok: true; records: TraceRecord[] } | { ok: false; message: string }> {
    const where = `workload.traceRef: ConfigMap ${namespace}/${configMapName}`;
    const cm = await deps.readConfigMap(namespace, configMapName);
    if (!cm) return { ok: false, message: `${where} not found` };
    const text = cm.data?.[key];
    if (text === undefined) return { ok: false, message: `${where} has no key "${key}" (keys: ${Object.keys(cm.data ?? {}).sort().join(", ") || "none"})` };
    const cacheKey = `${namespace}/${configMapName}/${key}`;
    const hit = traces.get(cacheKey);
    const resourceVersion = cm.metadata?.resourceVersion ?? "";
    if (hit && hit.resourceVersion === resourceVersion && resourceVersion !== "") return { ok: true, records: hit.records };
    try {
      const records = parseAzureTraceCsv(text);
      if (records.length === 0) return { ok: false, message: `${where} key "${key}" holds no requests` };
      traces.set(cacheKey, { resourceVersion, records });
      return { ok: true, records };
    } catch (error) {
      return { ok: false, message: `${where} key "${key}": ${(error as Error).message}` };
    }
  }

  async function planFor(uid: string, input: ServingPlanInput): Promise<ServingPlanResult> {
    const key = JSON.stringify(input);
    const hit = plans.get(uid);
    if (hit?.key === key) return hit.result;
    const result = await plan(input);
    plans.set(uid, { key, result });
    if (plans.size > 1000) plans.delete(plans.keys().next().value as string);
    return result;
  }

  async function execute(sd: ServingDeployment, step: RolloutStep, hash: string, target: StatusPlan, nowMs: number): Promise<void> {
    const namespace = sd.metadata.namespace!;
    const uid = sd.metadata.uid!;
    if (step.delete.length > 0) {
      const uids = new Map(deps.pods.list().filter((p) => p.metadata?.namespace === namespace).map((p) => [p.metadata?.name ?? "", p.metadata?.uid]));
      for (const name of step.delete) {
        memory.markDeleted(name, namespace, uids.get(name), nowMs);
        await deps.applier.delete({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace } });
      }
      deps.logger?.info({ sd: `${namespace}/${sd.metadata.name}`, pods: step.delete }, "deleted serving pods");
    }
    for (const group of step.create) {
      const created: V1Pod[] = [];
      try {
        for (const placement of group.pods) {
          const pod = podObject(sd, placement, hash, target.gpuModel, deps.workerSocketDir);
          created.push(pod);
          await deps.applier.apply(pod);
          memory.assume(uid, pod, nowMs);
        }
      } catch (error) {
        // A group is all or nothing: take back what was created of it before the reconcile retries.
        for (const pod of created) await deps.applier.delete(pod).catch(() => undefined);
        throw error;
      }
    }
    if (step.create.length > 0) {
      deps.logger?.info({ sd: `${namespace}/${sd.metadata.name}`, groups: step.create.map((g) => g.key), hash }, "created serving pods");
    }
  }

  /**
   * Applies the Services every reconcile (level-based: one deleted by hand comes back; an unchanged apply is a
   * no-op), and lists and removes those of roles no longer served only when the set of roles changed.
   */
  async function syncServices(sd: ServingDeployment, roles: Role[]): Promise<void> {
    const namespace = sd.metadata.namespace!;
    const name = sd.metadata.name!;
    const wanted = serviceObjects(sd, roles.sort());
    for (const service of wanted) await deps.applier.apply(service);
    const key = JSON.stringify(roles);
    if (appliedServices.get(sd.metadata.uid!) === key) return;
    const names = new Set(wanted.map((s) => s.metadata?.name));
    for (const existing of await deps.listServices(namespace, name)) {
      const owned = existing.metadata?.ownerReferences?.some((o) => o.uid === sd.metadata.uid);
      if (owned && !names.has(existing.metadata?.name)) await deps.applier.delete({ apiVersion: "v1", kind: "Service", metadata: { name: existing.metadata?.name, namespace } });
    }
    appliedServices.set(sd.metadata.uid!, key);
  }
}

/** Nodes our pods sit on that are gone from the cluster or isolated by fault detection. */
function lostNodesOf(observed: readonly ObservedPod[], capacity: ClusterCapacity): Set<string> {
  const byName = new Map(capacity.nodes.map((n) => [n.nodeName, n]));
  const lost = new Set<string>();
  for (const p of observed) {
    if (!p.counted) continue;
    const node = byName.get(p.nodeName);
    if (!node || node.isolated) lost.add(p.nodeName);
  }
  return lost;
}

/**
 * Pods this step wrote that the pod cache does not reflect yet (client-go's "expectations", kept small): created
 * pods until the cache shows them, deleted pods until it no longer does. Entries expire after `ttlMs`.
 */
class WriteMemory {
  private readonly assumed = new Map<string, { ownerUid: string; pod: V1Pod; atMs: number }>();
  private readonly deleted = new Map<string, { uid?: string; atMs: number }>();

  constructor(private readonly ttlMs: number) {}

  sync(pods: readonly V1Pod[], nowMs: number): void {
    const byKey = new Map(pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.metadata?.uid]));
    for (const [key, a] of this.assumed) if (byKey.has(key) || nowMs - a.atMs > this.ttlMs) this.assumed.delete(key);
    for (const [key, d] of this.deleted) {
      const uid = byKey.get(key);
      if (uid === undefined || (d.uid !== undefined && uid !== d.uid) || nowMs - d.atMs > this.ttlMs) this.deleted.delete(key);
    }
  }

  assume(ownerUid: string, pod: V1Pod, nowMs: number): void {
    this.assumed.set(`${pod.metadata?.namespace}/${pod.metadata?.name}`, { ownerUid, pod, atMs: nowMs });
  }

  assumedFor(ownerUid: string): V1Pod[] {
    return [...this.assumed.values()].filter((a) => a.ownerUid === ownerUid).map((a) => a.pod);
  }

  markDeleted(name: string, namespace: string, uid: string | undefined, nowMs: number): void {
    const key = `${namespace}/${name}`;
    this.assumed.delete(key);
    this.deleted.set(key, { uid, atMs: nowMs });
  }

  isDeleted(uid: string | undefined): boolean {
    if (uid === undefined) return false;
    for (const d of this.deleted.values()) if (d.uid === uid) return true;
    return false;
  }
}
