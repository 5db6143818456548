/**
 * Between the autoscale policy (common/src/scheduler/autoscale-policy.ts, pure) and the deployment (pure too):
 * the policy's input from what the operator sees, and its decision as new desired counts.
 *
 * - Pools: one per role of the plan, with the instances that report load; an instance this operator is draining
 *   counts as draining even before its report says so (one scale-in at a time). Instances wanted but not yet
 *   reporting are `startingInstances`.
 * - Bounds: spec.scaling's minInstances and maxInstances per pool; maxGpus and the free GPUs both go into
 *   `capacityInstances`, the number of further instances of the pool the cluster can place now: the pool's
 *   groups are placed by the same packer and free-GPU figures the rollout creates pods with (pools.ts placeGroups
 *   over planner-bridge.ts placementNodes), after the instances wanted but not created yet, so the operator never
 *   asks for GPUs the cluster cannot give.
 * - The plan's replicas are the P:D ratio the policy bounds disaggregated pools by.
 * Low node-affinity plans are placed by unit (a prefill and a decode segment per stage on one node); scaling them
 * is not done (they hold, and the decision says so).
 */
import type { InstanceLoad } from "../../../../common/src/scheduler/freeness.js";
import type { FreeNode } from "../distserve/packing.js";
import { placeGroups, planRoles, type PlannedGroup, type Role, type StatusPlan } from "../pools.js";
import type { LiveInstance } from "./instances.js";
import type { ScalingDecision, ScalingInput, ScalingPool, SloAttainment } from "./policy.js";

export type Desired = Partial<Record<Role, number>>;

export interface ScalingBounds {
  minInstances: number;
  maxInstances?: number;
  maxGpus?: number;
}

/** How far ahead capacity is counted: enough for any one decision, bounded so a huge cluster costs nothing. */
const MAX_COUNTED_INSTANCES = 16;

export interface PoolsInput {
  plan: StatusPlan;
  desired: Desired;
  bounds: ScalingBounds;
  instances: readonly LiveInstance[];
  /** Leader pods of instances being drained (or drained, pods still there). */
  drainingPods: ReadonlySet<string>;
  /** Those instances per role. */
  drainingPerRole: Partial<Record<Role, number>>;
  /** GPUs free now on the nodes of the plan's GPU model. */
  free: readonly FreeNode[];
  sdName: string;
  hash: string;
  /** Indices of the plan's pods per role that exist now (new instances take the lowest free ones). */
  usedIndices: Partial<Record<Role, readonly number[]>>;
  /** Instances per role whose pods exist and are not being deleted (created or not Ready yet included). */
  podsPerRole: Partial<Record<Role, number>>;
  slo(role: Role): SloAttainment | undefined;
  nowMs: number;
  lastScaledAtMs: number | undefined;
}

export function scalingInput(input: PoolsInput): ScalingInput {
  const { plan } = input;
  const pools: ScalingPool[] = planRoles(plan).map((role) => {
    const ofRole = input.instances.filter((i) => i.role === role);
    const instances = ofRole.map((i) => ({
      id: i.id,
      load: input.drainingPods.has(i.podName) ? ({ ...i.load, draining: true } satisfies InstanceLoad) : i.load,
      waitingDemandBlocks: i.waitingDemandBlocks,
    }));
    const open = instances.filter((i) => !i.load.draining).length;
    const desired = input.desired[role] ?? 0;
    return {
      role,
      instances,
      startingInstances: Math.max(0, desired - open),
      minInstances: input.bounds.minInstances,
      maxInstances: input.bounds.maxInstances ?? Number.MAX_SAFE_INTEGER,
      capacityInstances: capacityInstances(input, role),
      slo: input.slo(role),
    };
  });
  return {
    nowMs: input.nowMs,
    lastScaledAtMs: input.lastScaledAtMs,
    pools,
    planReplicas:
      plan.mode === "disaggregated" && plan.prefill && plan.decode
        ? { prefill: plan.prefill.replicas, decode: plan.decode.replicas }
        : undefined,
  };
}

/**
 * Further instances of `role` the cluster can place now, within maxGpus: instances wanted whose pods do not exist
 * yet are placed first (their GPUs are as good as taken), then as many more as fit, up to MAX_COUNTED_INSTANCES.
 */
export function capacityInstances(
  input: Pick<
    PoolsInput,
    "plan" | "desired" | "bounds" | "free" | "sdName" | "hash" | "usedIndices" | "podsPerRole" | "drainingPerRole"
  >,
  role: Role,
): number {
  const { plan } = input;
  const roles = planRoles(plan);
  const draining = (r: Role) => input.drainingPerRole[r] ?? 0;
  // Draining instances hold their GPUs until their pods are gone.
  const heldGpus = roles.reduce(
    (sum, r) => sum + ((input.desired[r] ?? 0) + draining(r)) * plan[r]!.tp * plan[r]!.pp,
    0,
  );
  const perInstance = plan[role]!.tp * plan[role]!.pp;
  const budget =
    input.bounds.maxGpus === undefined
      ? MAX_COUNTED_INSTANCES
      : Math.max(0, Math.floor((input.bounds.maxGpus - heldGpus) / perInstance));
  const pending: PlannedGroup[] = [];
  const extra: PlannedGroup[] = [];
  for (const r of roles) {
    const missing = Math.max(0, (input.desired[r] ?? 0) + draining(r) - (input.podsPerRole[r] ?? 0));
    const more = r === role ? Math.min(budget, MAX_COUNTED_INSTANCES) : 0;
    const indices = freeIndices(input.usedIndices[r] ?? [], missing + more);
    pending.push(...indices.slice(0, missing).map((i) => group(plan, r, i)));
    extra.push(...indices.slice(missing).map((i) => group(plan, r, i)));
  }
  if (extra.length === 0) return 0;
  const { placed } = placeGroups(input.sdName, input.hash, [...pending, ...extra], input.free);
  const placedKeys = new Set(placed.map((g) => g.key));
  // The instances already wanted come first: if they do not all fit, there is no room for more.
  if (pending.some((g) => !placedKeys.has(g.key))) return 0;
  return extra.filter((g) => placedKeys.has(g.key)).length;
}

/** The policy's decision as what to do: the new desired counts, and for a scale-in the instance to drain. */
export type ScalingAction =
  | { kind: "up"; role: Role; reason: string; desired: Desired }
  | { kind: "down"; role: Role; reason: string; desired: Desired; drain: LiveInstance }
  | { kind: "hold"; role: string; reason: string };

export function actionFor(
  decision: ScalingDecision,
  plan: StatusPlan,
  desired: Desired,
  instances: readonly LiveInstance[],
): ScalingAction {
  if (decision.kind === "hold") return { kind: "hold", role: decision.role, reason: decision.reason };
  const role = decision.role as Role;
  if (!planRoles(plan).includes(role))
    return { kind: "hold", role: decision.role, reason: `${decision.reason}; the plan has no ${decision.role} pool` };
  if (plan.affinity === "low")
    return {
      kind: "hold",
      role,
      reason: `${decision.reason}; not scaled: low node-affinity plans are placed by unit, which the autoscaler does not scale`,
    };
  const now = desired[role] ?? 0;
  if (decision.kind === "up")
    return { kind: "up", role, reason: decision.reason, desired: { ...desired, [role]: now + 1 } };
  const drain = instances.find((i) => i.id === decision.drainInstanceId && i.role === role);
  if (!drain)
    return {
      kind: "hold",
      role,
      reason: `${decision.reason}; instance ${decision.drainInstanceId ?? "(none named)"} does not report load`,
    };
  return { kind: "down", role, reason: decision.reason, desired: { ...desired, [role]: now - 1 }, drain };
}

export function gpusOf(plan: StatusPlan, desired: Desired): number {
  return planRoles(plan).reduce((sum, r) => sum + (desired[r] ?? 0) * plan[r]!.tp * plan[r]!.pp, 0);
}

/** The `count` lowest indices not in `used`. */
export function freeIndices(used: readonly number[], count: number): number[] {
  const taken = new Set(used);
  const out: number[] = [];
  for (let i = 0; out.length < count; i++) if (!taken.has(i)) out.push(i);
  return out;
}

const group = (plan: StatusPlan, role: Role, index: number): PlannedGroup => {
  const { tp, pp } = plan[role]!;
  return { key: `${role}-${index}`, instances: [{ role, index, tp, pp }], gpus: tp * pp };
};
