/**
 * ServingDeployment reconciler: check → plan → apply, inside the shared lifecycle (runtime/lifecycle.ts). Thin by
 * design: what to run is decided by pure code (controller-checks.ts, the DistServe planner, pools, rollout); the
 * plan step applies it.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { wouldChange, type ConditionUpdate } from "../../../crds/src/conditions.js";
import { Reason, ServingCondition } from "../../../crds/src/reasons.js";
import {
  ServingDeploymentNames,
  ServingPhase,
  type ServingDeployment,
  type ServingDeploymentStatus,
} from "../../../crds/src/serving-deployment.js";
import { capacityOf, type ClusterCapacity } from "../cluster/capacity.js";
import type { ReconcileResult, Reconciler } from "../runtime/controller.js";
import type { ResilientInformer } from "../runtime/informer.js";
import { reconcileResource, type LifecycleDeps, type StepOutcome } from "../runtime/lifecycle.js";
import { checkServingSpec } from "./controller-checks.js";

/** What the executor returns to the reconciler: status fields, conditions and events beyond the checks. */
export type ServingExecutorOutcome = StepOutcome<ServingDeploymentStatus>;

/**
 * Fetches, plans, applies and reports the pools of a deployment whose spec passed the checks (the DistServe pools);
 * executor/executor.ts.
 */
export type ServingExecutor = (
  sd: ServingDeployment,
  capacity: ClusterCapacity,
  gpuModels: string[],
) => Promise<ServingExecutorOutcome>;

export interface ServingReconcilerDeps extends LifecycleDeps {
  servingDeployments: ResilientInformer<ServingDeployment>;
  nodes: Pick<ResilientInformer<V1Node>, "list">;
  pods: Pick<ResilientInformer<V1Pod>, "list">;
  executor: ServingExecutor;
}

const TARGET = {
  group: API_GROUP,
  version: API_VERSION,
  plural: ServingDeploymentNames.plural,
  kind: ServingDeploymentNames.kind,
};

export class ServingDeploymentReconciler implements Reconciler {
  readonly name = "servingdeployment";

  constructor(private readonly deps: ServingReconcilerDeps) {}

  reconcile(key: string): Promise<ReconcileResult> {
    return reconcileResource({
      key,
      informer: this.deps.servingDeployments,
      target: TARGET,
      deps: this.deps,
      decide: (sd) => this.decide(sd),
    });
  }

  private async decide(sd: ServingDeployment): Promise<ServingExecutorOutcome> {
    const capacity = capacityOf(this.deps.nodes, this.deps.pods);
    const check = checkServingSpec(sd.spec, capacity.nodes);
    if (check.ok) return this.deps.executor(sd, capacity, check.gpuModels);
    // Running pools stay: a bad edit must not take down a deployment that serves traffic.
    const planned: ConditionUpdate = {
      type: ServingCondition.Planned,
      status: "False",
      reason: check.reason,
      message: check.message,
    };
    return {
      status: { phase: ServingPhase.Pending },
      conditions: [
        planned,
        {
          type: ServingCondition.InsufficientCapacity,
          status: check.reason === Reason.InsufficientCapacity ? "True" : "False",
          reason: check.reason,
          message: check.message,
        },
        { type: ServingCondition.Available, status: "False", reason: check.reason, message: "no plan" },
      ],
      events: wouldChange(sd.status?.conditions, planned)
        ? [{ type: "Warning", reason: check.reason, message: check.message }]
        : [],
    };
  }
}
