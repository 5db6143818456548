/**
 * Status (pure): what a reconcile of a ServingDeployment reports — phase, plan, readiness, conditions — and the
 * Events for what changed since the conditions it read (`previous`). The reconciler writes the status, and emits
 * the Events only after that write succeeded.
 */
import { findCondition, type Condition } from "../../../../crds/src/conditions.js";
import { Reason, ServingCondition } from "../../../../crds/src/reasons.js";
import { ServingPhase } from "../../../../crds/src/serving-deployment.js";
import type { PendingEvent } from "../../runtime/status.js";
import type { ServingExecutorOutcome } from "../controller.js";
import type { PlanDecision } from "../hysteresis.js";
import { planSummary, type StatusPlan } from "../pools.js";
import type { ObservedPod, RolloutStep } from "../rollout.js";
import type { PlanFailure } from "./choose-plan.js";

type ConditionOut = ServingExecutorOutcome["conditions"][number];

export interface StatusContext {
  /** The conditions the deployment had when this reconcile read it. */
  previous: readonly Condition[] | undefined;
  /** Requeue for a rollout in progress. */
  rolloutRetryMs: number;
  /** Requeue for a deployment waiting on capacity or a ConfigMap: nothing else wakes it. */
  capacityRetryMs: number;
}

/** The spec names something that is not there or not valid (a trace ConfigMap): no plan, and the running pods stay. */
export function invalidSpecOutcome(ctx: StatusContext, message: string): ServingExecutorOutcome {
  const flipped =
    flipsTo(ctx, ServingCondition.Planned, "False", Reason.InvalidSpec) ||
    findCondition(ctx.previous, ServingCondition.Planned)?.message !== message;
  return {
    status: { phase: ServingPhase.Pending },
    conditions: [
      { type: ServingCondition.Planned, status: "False", reason: Reason.InvalidSpec, message },
      { type: ServingCondition.Available, status: "False", reason: Reason.InvalidSpec, message: "no plan" },
    ],
    events: flipped ? [{ type: "Warning", reason: Reason.InvalidSpec, message }] : [],
    // A ConfigMap created or fixed later wakes no event for this deployment.
    requeueAfterMs: ctx.capacityRetryMs,
  };
}

/** Neither a running plan to keep nor a new one: say why, and which pods keep serving. */
export function noPlanOutcome(
  ctx: StatusContext,
  why: PlanFailure,
  dropped: StatusPlan | undefined,
  observed: readonly ObservedPod[],
): ServingExecutorOutcome {
  const capacityShort = why.reason === Reason.InsufficientCapacity;
  const events: PendingEvent[] = [];
  if (flipsTo(ctx, ServingCondition.Planned, "False", why.reason))
    events.push({ type: "Warning", reason: why.reason, message: why.message });
  const left = observed.filter((p) => !p.deleting).length;
  const keeping =
    left > 0
      ? `; ${left} pod(s) of ${dropped ? `the previous plan (${planSummary(dropped)})` : "an earlier plan"} keep serving`
      : "";
  return {
    status: {
      phase: ServingPhase.Pending,
      plan: undefined,
      planSummary: undefined,
      ready: undefined,
      readyInstances: undefined,
      desiredInstances: undefined,
    },
    conditions: [
      { type: ServingCondition.Planned, status: "False", reason: why.reason, message: why.message },
      {
        type: ServingCondition.InsufficientCapacity,
        status: capacityShort ? "True" : "False",
        reason: capacityShort ? Reason.InsufficientCapacity : Reason.AsExpected,
        message: capacityShort ? why.message + keeping : "",
      },
      {
        type: ServingCondition.Available,
        status: "False",
        reason: why.reason,
        message: `no plan for this spec${keeping}`,
      },
      { type: ServingCondition.Progressing, status: "False", reason: why.reason, message: "no plan to roll out" },
    ],
    events,
    requeueAfterMs: capacityShort ? ctx.capacityRetryMs : undefined,
  };
}

export interface PlannedInput {
  target: StatusPlan;
  decision: PlanDecision;
  step: RolloutStep;
  /** Why the planner found no new plan, when it did not (the target is then the running plan). */
  failure: PlanFailure | undefined;
  /** The plan the status showed before this reconcile. */
  before: StatusPlan | undefined;
}

/**
 * A plan is being rolled out or runs: readiness, progress, and Events for a new plan, full readiness, or no room to
 * repair.
 */
export function plannedOutcome(
  ctx: StatusContext,
  { target, decision, step, failure, before }: PlannedInput,
): ServingExecutorOutcome {
  const summary = planSummary(target);
  const ready = `${step.readyInstances}/${step.desiredInstances}`;
  const allReady = step.readyInstances === step.desiredInstances;
  const events: PendingEvent[] = [];
  if (decision.changed) {
    events.push(
      before
        ? {
            type: "Normal",
            reason: Reason.PlanChanged,
            message: `${planSummary(before)} → ${summary} (${decision.reason}): ${target.explanation ?? ""}`,
          }
        : { type: "Normal", reason: Reason.PlanReady, message: `${summary}: ${target.explanation ?? ""}` },
    );
  }
  // The running plan is kept but cannot be repaired, and the planner finds nothing better that fits.
  const short = failure?.reason === Reason.InsufficientCapacity && step.blocked.length > 0;
  const shortMessage = short ? `${summary} cannot be repaired: ${failure.message}` : "";
  if (short && flipsTo(ctx, ServingCondition.InsufficientCapacity, "True", Reason.InsufficientCapacity)) {
    events.push({ type: "Warning", reason: Reason.InsufficientCapacity, message: shortMessage });
  }
  const readyMessage = `all ${step.desiredInstances} instances of ${summary} are ready`;
  if (allReady && conditionChanges(ctx, ServingCondition.Available, "True", Reason.PodsReady, readyMessage)) {
    events.push({ type: "Normal", reason: Reason.PodsReady, message: readyMessage });
  }
  const conditions: ConditionOut[] = [
    {
      type: ServingCondition.Planned,
      status: "True",
      reason: Reason.PlanReady,
      message: `${summary}: ${target.explanation ?? ""}`,
    },
    short
      ? {
          type: ServingCondition.InsufficientCapacity,
          status: "True",
          reason: Reason.InsufficientCapacity,
          message: shortMessage,
        }
      : { type: ServingCondition.InsufficientCapacity, status: "False", reason: Reason.AsExpected, message: "" },
    allReady
      ? { type: ServingCondition.Available, status: "True", reason: Reason.PodsReady, message: readyMessage }
      : {
          type: ServingCondition.Available,
          status: "False",
          reason: Reason.PodsPending,
          message: `${ready} instances of ${summary} ready`,
        },
    step.complete
      ? {
          type: ServingCondition.Progressing,
          status: "False",
          reason: Reason.AsExpected,
          message: `${summary} is rolled out`,
        }
      : {
          type: ServingCondition.Progressing,
          status: "True",
          reason: Reason.PodsPending,
          message: `rolling out ${summary}: ${ready} ready${step.waiting ? `; ${step.waiting}` : ""}`,
        },
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
    requeueAfterMs: step.complete ? undefined : step.waiting ? ctx.capacityRetryMs : ctx.rolloutRetryMs,
  };
}

/** Whether a condition would differ in status, reason or message. */
function conditionChanges(ctx: StatusContext, type: string, status: string, reason: string, message: string): boolean {
  const c = findCondition(ctx.previous, type);
  return c?.status !== status || c.reason !== reason || c.message !== message;
}

/**
 * Whether a condition newly takes this status and reason. Warnings about capacity fire on this, not on every
 * new message: the planner's message carries the cluster's free GPU count, which moves with other workloads.
 */
function flipsTo(ctx: StatusContext, type: string, status: string, reason: string): boolean {
  const c = findCondition(ctx.previous, type);
  return c?.status !== status || c.reason !== reason;
}
