/**
 * Plan, part two (pure): the planner's answer as a status plan, and whether it replaces the plan the deployment
 * runs (hysteresis.ts decides; here its inputs are gathered from the spec, the status and the observed pods).
 */
import { findCondition } from "../../../../crds/src/conditions.js";
import { Reason, ServingCondition } from "../../../../crds/src/reasons.js";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import type { ClusterCapacity } from "../../cluster/capacity.js";
import type { ServingPlanResult } from "../distserve/planner.js";
import { decidePlan, type PlanDecision } from "../hysteresis.js";
import { placementNodes, toStatusPlan } from "../planner-bridge.js";
import { planHash, type StatusPlan } from "../pools.js";
import { runningPlanFits, type ObservedPod } from "../rollout.js";

/** Why no new plan came out of the planner (it may still keep the running plan). */
export interface PlanFailure {
  reason: Reason;
  message: string;
}

export interface PlanChoice {
  decision: PlanDecision;
  failure?: PlanFailure;
}

const PLANNER_REASON: Record<string, Reason> = {
  InsufficientCapacity: Reason.InsufficientCapacity,
  ModelDoesNotFit: Reason.ModelDoesNotFit,
  InvalidInput: Reason.InvalidSpec,
  PlanningBudgetExhausted: Reason.PlanningBudgetExhausted,
};

/** The planner's answer with spec.scaling applied, or why there is none. */
export function candidatePlan(
  result: ServingPlanResult,
  scaling: ServingDeployment["spec"]["scaling"],
): { candidate?: StatusPlan; failure?: PlanFailure } {
  if (!result.ok)
    return { failure: { reason: PLANNER_REASON[result.reason] ?? Reason.InvalidSpec, message: result.message } };
  const converted = toStatusPlan(result, scaling);
  return converted.ok
    ? { candidate: converted.plan }
    : { failure: { reason: Reason.InvalidSpec, message: converted.message } };
}

export interface ChoosePlanInput {
  sd: ServingDeployment;
  result: ServingPlanResult;
  capacity: ClusterCapacity;
  observed: readonly ObservedPod[];
  lostNodes: ReadonlySet<string>;
  bandPercent: number;
}

/** Keep the running plan or move to the candidate. */
export function choosePlan({ sd, result, capacity, observed, lostNodes, bandPercent }: ChoosePlanInput): PlanChoice {
  const { candidate, failure } = candidatePlan(result, sd.spec.scaling);
  const running = sd.status?.plan;
  const planFresh =
    running !== undefined &&
    sd.status?.observedGeneration === (sd.metadata.generation ?? 0) &&
    findCondition(sd.status?.conditions, ServingCondition.Planned)?.status === "True";
  const decision = decidePlan({
    current: running,
    specChanged: !planFresh,
    candidate,
    currentFits:
      running !== undefined &&
      runningPlanFits({
        sdName: sd.metadata.name!,
        plan: running,
        hash: planHash(running, sd.spec.engine),
        pods: observed,
        free: placementNodes(capacity.nodes, running.gpuModel, observed).filter((n) => !lostNodes.has(n.nodeName)),
        lostNodes,
      }),
    arrivalRatePerSec: sd.spec.workload.arrivalRatePerSec,
    bandPercent,
  });
  return { decision, failure };
}
