/**
 * What the operator does with the autoscale policy's decision (pure): the decision (common/src/scheduler/
 * autoscale-policy.ts) says a role is too loaded or too idle; this applies the bounds the policy does not know of.
 *
 * - spec.scaling: every pool keeps at least minInstances and at most maxInstances; the whole deployment holds at
 *   most maxGpus GPUs.
 * - Capacity: a scale-up happens only when the new instances fit in the GPUs free now, placed by the same packer
 *   and free-GPU figures the rollout creates pods with (pools.ts placeGroups over planner-bridge.ts
 *   placementNodes), so the operator never asks for GPUs the cluster cannot give.
 * - Disaggregated plans keep the planner's P:D ratio as a bound: neither pool may grow past what the other pool's
 *   size implies at that ratio, rounded up (D ≤ ⌈P·d/p⌉ and P ≤ ⌈D·p/d⌉). A scale-up of one pool that would cross
 *   it adds the other pool's instances too (in one step, if both fit); a scale-down that would cross it holds.
 * - One scale-in at a time: while an instance drains, nothing else scales.
 */
import type { FreeNode } from "../distserve/packing.js";
import { placeGroups, planRoles, type PlannedGroup, type Role, type StatusPlan } from "../pools.js";
import type { ScalingDecision } from "./policy.js";

export type Desired = Partial<Record<Role, number>>;

export interface ScalingBounds {
  minInstances: number;
  maxInstances?: number;
  maxGpus?: number;
}

export interface BoundInput {
  decision: ScalingDecision;
  plan: StatusPlan;
  desired: Desired;
  bounds: ScalingBounds;
  /** GPUs free now on the nodes the plan's GPU model offers. */
  free: readonly FreeNode[];
  sdName: string;
  hash: string;
  /** Instances (leader pod names) of each role that exist now; new instances take the lowest free indices. */
  usedIndices: Partial<Record<Role, readonly number[]>>;
  /** An instance is draining: scale-in in progress. */
  draining: boolean;
  /** Running requests per instance id of the role to scale in (to check or choose the instance to drain). */
  runningById: ReadonlyMap<string, { role: Role; running: number }>;
}

export type ScalingAction =
  | { kind: "up"; role: Role; reason: string; desired: Desired; added: Partial<Record<Role, number>> }
  | { kind: "down"; role: Role; reason: string; desired: Desired; drainInstanceId: string }
  | { kind: "hold"; role: string; reason: string };

export function boundScaling(input: BoundInput): ScalingAction {
  const { decision, plan } = input;
  const hold = (reason: string): ScalingAction => ({ kind: "hold", role: decision.role, reason });
  if (decision.kind === "hold") return hold(decision.reason);
  if (plan.affinity === "low") return hold(`${decision.reason}; not scaled: low node-affinity plans scale by whole units, which the autoscaler does not do yet`);
  const role = decision.role as Role;
  if (!planRoles(plan).includes(role)) return hold(`${decision.reason}; not scaled: the plan has no ${decision.role} pool`);
  if (input.draining) return hold(`${decision.reason}; not scaled: an instance is still draining`);
  return decision.kind === "up" ? scaleUp(input, role) : scaleDown(input, role);
}

function scaleUp(input: BoundInput, role: Role): ScalingAction {
  const { decision, plan, bounds } = input;
  const desired: Desired = { ...input.desired };
  desired[role] = (desired[role] ?? 0) + 1;
  keepRatio(plan, desired, role);
  const hold = (why: string): ScalingAction => ({ kind: "hold", role, reason: `${decision.reason}; not scaled up: ${why}` });
  for (const r of planRoles(plan)) {
    if (bounds.maxInstances !== undefined && (desired[r] ?? 0) > bounds.maxInstances) return hold(`${r} would have ${desired[r]} instances, more than scaling.maxInstances ${bounds.maxInstances}`);
  }
  const gpus = gpusOf(plan, desired);
  if (bounds.maxGpus !== undefined && gpus > bounds.maxGpus) return hold(`${gpus} GPUs would exceed scaling.maxGpus ${bounds.maxGpus}`);
  const added: Partial<Record<Role, number>> = {};
  const groups: PlannedGroup[] = [];
  for (const r of planRoles(plan)) {
    const more = (desired[r] ?? 0) - (input.desired[r] ?? 0);
    if (more <= 0) continue;
    added[r] = more;
    for (const index of freeIndices(input.usedIndices[r] ?? [], more)) {
      const { tp, pp } = plan[r]!;
      groups.push({ key: `${r}-${index}`, instances: [{ role: r, index, tp, pp }], gpus: tp * pp });
    }
  }
  const { blocked } = placeGroups(input.sdName, input.hash, groups, input.free);
  if (blocked.length > 0) {
    const needed = groups.map((g) => `${g.key} ${g.gpus} GPU`).join(", ");
    const freeGpus = input.free.reduce((s, n) => s + n.gpusFree, 0);
    return hold(`the cluster has no room (${needed} wanted; ${freeGpus} ${plan.gpuModel} GPUs free, none placeable for ${blocked.map((g) => g.key).join(", ")})`);
  }
  const also = Object.entries(added).filter(([r]) => r !== role).map(([r, n]) => ` and ${n} ${r} for the P:D ratio`).join("");
  return { kind: "up", role, reason: `${decision.reason}: +1 ${role}${also}`, desired, added };
}

function scaleDown(input: BoundInput, role: Role): ScalingAction {
  const { decision, plan, bounds } = input;
  const hold = (why: string): ScalingAction => ({ kind: "hold", role, reason: `${decision.reason}; not scaled down: ${why}` });
  const now = input.desired[role] ?? 0;
  if (now - 1 < bounds.minInstances) return hold(`${role} is at scaling.minInstances ${bounds.minInstances}`);
  const desired: Desired = { ...input.desired, [role]: now - 1 };
  const other = otherRole(role);
  if (plan.mode === "disaggregated" && other && !withinRatio(plan, desired)) {
    return hold(`${now - 1} ${role} would be too few for ${desired[other]} ${other} at the plan's P:D ratio ${plan.prefill!.replicas}:${plan.decode!.replicas}`);
  }
  const ofRole = [...input.runningById].filter(([, v]) => v.role === role);
  if (ofRole.length === 0) return hold(`no ${role} instance reports load`);
  const asked = decision.drainInstanceId;
  // The policy picks the instance with the fewest running requests; if it names one we do not know, pick it here.
  const chosen = asked && ofRole.some(([id]) => id === asked) ? asked : [...ofRole].sort((a, b) => a[1].running - b[1].running || a[0].localeCompare(b[0]))[0]![0];
  return { kind: "down", role, reason: `${decision.reason}: −1 ${role}, draining ${chosen}`, desired, drainInstanceId: chosen };
}

const otherRole = (role: Role): Role | undefined => (role === "prefill" ? "decode" : role === "decode" ? "prefill" : undefined);

/** D ≤ ⌈P·d/p⌉ and P ≤ ⌈D·p/d⌉ for the plan's p:d (always true for colocated plans). */
export function withinRatio(plan: StatusPlan, desired: Desired): boolean {
  if (plan.mode !== "disaggregated" || !plan.prefill || !plan.decode) return true;
  const p = plan.prefill.replicas;
  const d = plan.decode.replicas;
  const P = desired.prefill ?? 0;
  const D = desired.decode ?? 0;
  return D <= Math.ceil((P * d) / p - 1e-9) && P <= Math.ceil((D * p) / d - 1e-9);
}

/** Grows the other pool of a disaggregated plan until the ratio bound holds again after `role` grew. */
function keepRatio(plan: StatusPlan, desired: Desired, role: Role): void {
  const other = otherRole(role);
  if (plan.mode !== "disaggregated" || !other) return;
  while (!withinRatio(plan, desired)) desired[other] = (desired[other] ?? 0) + 1;
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
