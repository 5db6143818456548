/**
 * Whether to move a ServingDeployment to a freshly computed plan or keep the one it runs (pure).
 *
 * Free GPUs change with every pod in the cluster, and the planner's answer moves with them; following every such
 * move would roll pods for a few percent of goodput. So a running plan is kept while it is still a good answer:
 * - a spec change (new generation) always re-plans: the old plan answered a different question;
 * - a plan that no longer fits the cluster (its nodes lost, no room to repair it) or no longer carries the target
 *   rate is replaced by the candidate;
 * - otherwise the candidate must beat it by more than `bandPercent`: more goodput per GPU, or fewer GPUs for the
 *   same rate (the planner's own objective is fewest GPUs first, then goodput per GPU);
 * - a candidate that failed (no room for a new plan) never replaces a running plan.
 */
import type { StatusPlan } from "./pools.js";

export const PlanDecisionReason = {
  /** No plan yet. */
  Initial: "Initial",
  /** The spec changed since the current plan was made. */
  SpecChanged: "SpecChanged",
  /** The current plan cannot run on the cluster as it is now. */
  CurrentDoesNotFit: "CurrentDoesNotFit",
  /** The current plan's predicted goodput is below the target rate. */
  CurrentMissesTarget: "CurrentMissesTarget",
  /** The candidate is better than the current plan by more than the band. */
  Better: "Better",
  /** The candidate is the current plan. */
  Same: "Same",
  /** The candidate is not better by more than the band. */
  WithinBand: "WithinBand",
  /** The planner found nothing; the current plan keeps running. */
  CandidateFailed: "CandidateFailed",
} as const;
export type PlanDecisionReason = (typeof PlanDecisionReason)[keyof typeof PlanDecisionReason];

export interface HysteresisInput {
  /** The plan the deployment runs for its current spec; undefined when it has none. */
  current?: StatusPlan;
  /** The spec changed since `current` was made. */
  specChanged: boolean;
  /** The planner's answer now; undefined when it found none. */
  candidate?: StatusPlan;
  /** `current` can run on the cluster as it is (its pods' nodes alive, its missing groups placeable). */
  currentFits: boolean;
  arrivalRatePerSec: number;
  /** Required improvement, in percent, e.g. 10. */
  bandPercent: number;
}

export interface PlanDecision {
  /** The plan to run; undefined when there is none. */
  plan?: StatusPlan;
  /** Whether `plan` differs from `current`. */
  changed: boolean;
  reason: PlanDecisionReason;
}

/** Same pods: mode, GPU model, affinity and every pool's TP, PP and replicas. */
export function samePlanShape(a: StatusPlan, b: StatusPlan): boolean {
  const pool = (p: StatusPlan["prefill"]) => (p ? `${p.tp}/${p.pp}/${p.replicas}` : "-");
  const shape = (p: StatusPlan) =>
    [p.mode, p.gpuModel, p.affinity ?? "-", pool(p.prefill), pool(p.decode), pool(p.colocated)].join(" ");
  return shape(a) === shape(b);
}

export function decidePlan(input: HysteresisInput): PlanDecision {
  const { current, candidate } = input;
  const adopt = (reason: PlanDecisionReason): PlanDecision => ({
    plan: candidate,
    changed: !current || !candidate || !samePlanShape(current, candidate),
    reason,
  });
  const keep = (reason: PlanDecisionReason): PlanDecision => ({ plan: current, changed: false, reason });
  if (!current) return adopt(PlanDecisionReason.Initial);
  if (input.specChanged) return adopt(PlanDecisionReason.SpecChanged);
  if (!candidate) return keep(PlanDecisionReason.CandidateFailed);
  if (samePlanShape(current, candidate)) return keep(PlanDecisionReason.Same);
  if (!input.currentFits) return adopt(PlanDecisionReason.CurrentDoesNotFit);
  if (current.goodputPerGpu * current.totalGpus < input.arrivalRatePerSec)
    return adopt(PlanDecisionReason.CurrentMissesTarget);
  const band = input.bandPercent / 100;
  const moreGoodput = candidate.goodputPerGpu > current.goodputPerGpu * (1 + band);
  const fewerGpus = candidate.totalGpus < current.totalGpus * (1 - band);
  return moreGoodput || fewerGpus ? adopt(PlanDecisionReason.Better) : keep(PlanDecisionReason.WithinBand);
}
