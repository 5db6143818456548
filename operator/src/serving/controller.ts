/**
 * ServingDeployment reconciler: fetch → check → plan → apply → status. Thin by design: what to run is decided by
 * pure code (controller-checks.ts, the DistServe planner); this file reads caches, writes objects and status.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { conditionChanged, setCondition, type Condition } from "../../../crds/src/conditions.js";
import { Reason, ServingCondition } from "../../../crds/src/reasons.js";
import { ServingDeploymentNames, ServingPhase, type ServingDeployment, type ServingDeploymentStatus } from "../../../crds/src/serving-deployment.js";
import { summarizeCapacity, type ClusterCapacity } from "../cluster/capacity.js";
import type { Applier } from "../runtime/apply.js";
import type { Clock } from "../runtime/clock.js";
import type { ReconcileResult, Reconciler } from "../runtime/controller.js";
import type { EventSink } from "../runtime/events.js";
import { parseKey, type ResilientInformer } from "../runtime/informer.js";
import type { Logger } from "../runtime/logger.js";
import { commitStatus, type PendingEvent } from "../runtime/status.js";
import { checkServingSpec } from "./controller-checks.js";

/** What the planning step returns to the reconciler: status fields, conditions and events beyond the checks. */
export interface ServingPlanOutcome {
  status: Partial<ServingDeploymentStatus>;
  conditions: { type: string; status: "True" | "False" | "Unknown"; reason: string; message: string }[];
  events: PendingEvent[];
  requeueAfterMs?: number;
}

/** Plans and applies the pools of a deployment whose spec passed the checks (the DistServe pools, issue 4). */
export type ServingPlanStep = (sd: ServingDeployment, capacity: ClusterCapacity, gpuModels: string[]) => Promise<ServingPlanOutcome>;

export interface ServingReconcilerDeps {
  servingDeployments: ResilientInformer<ServingDeployment>;
  nodes: ResilientInformer<V1Node>;
  pods: ResilientInformer<V1Pod>;
  applier: Applier;
  events: EventSink;
  clock: Clock;
  logger: Logger;
  planStep?: ServingPlanStep;
}

export class ServingDeploymentReconciler implements Reconciler {
  readonly name = "servingdeployment";

  constructor(private readonly deps: ServingReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = parseKey(key);
    const sd = this.deps.servingDeployments.get(name, namespace);
    if (!sd || sd.metadata.deletionTimestamp) return {};
    const generation = sd.metadata.generation ?? 0;
    const now = new Date(this.deps.clock.now());
    const capacity = summarizeCapacity(this.deps.nodes.list(), this.deps.pods.list());
    const previous = sd.status?.conditions;
    let conditions: Condition[] = [...(previous ?? [])];
    const set = (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => {
      conditions = setCondition(conditions, { type, status, reason, message }, generation, now);
    };

    const check = checkServingSpec(sd.spec, capacity.nodes);
    let status: ServingDeploymentStatus;
    const events: PendingEvent[] = [];
    let requeueAfterMs: number | undefined;
    if (!check.ok) {
      set(ServingCondition.Planned, "False", check.reason, check.message);
      set(ServingCondition.InsufficientCapacity, check.reason === Reason.InsufficientCapacity ? "True" : "False", check.reason, check.message);
      set(ServingCondition.Available, "False", check.reason, "no plan");
      status = { ...sd.status, observedGeneration: generation, phase: ServingPhase.Pending, conditions };
      if (conditionChanged(previous, conditions, ServingCondition.Planned)) events.push({ type: "Warning", reason: check.reason, message: check.message });
    } else if (this.deps.planStep) {
      const outcome = await this.deps.planStep(sd, capacity, check.gpuModels);
      for (const c of outcome.conditions) set(c.type, c.status, c.reason, c.message);
      status = { ...sd.status, ...outcome.status, observedGeneration: generation, conditions };
      events.push(...outcome.events);
      requeueAfterMs = outcome.requeueAfterMs;
    } else {
      set(ServingCondition.Planned, "Unknown", "AwaitingPlanner", `spec accepted for ${check.gpuModels.join(", ")}; no planner is configured in this operator build`);
      status = { ...sd.status, observedGeneration: generation, phase: ServingPhase.Pending, conditions };
    }

    await commitStatus(
      this.deps,
      sd,
      { group: API_GROUP, version: API_VERSION, plural: ServingDeploymentNames.plural, kind: ServingDeploymentNames.kind, namespace, name },
      status,
      events,
    );
    return requeueAfterMs === undefined ? {} : { requeueAfterMs };
  }
}
