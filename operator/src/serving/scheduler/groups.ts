/**
 * The groups the rollout keeps for a plan scaled by the autoscaler (pure). Pods are named by plan hash, role and
 * index, and the hash leaves the replica counts out of it only here: scaling a pool adds or removes instances of
 * the running plan, it does not roll every pod to a new one.
 *
 * Per role: instances being drained stay until they are Drained (then the rollout deletes them); of the others
 * the `desired` lowest indices stay (a group being repaired keeps its index, as in planGroups); missing ones
 * take the lowest indices no pod of the plan has (a pod still terminating keeps its name taken). Low node-affinity
 * plans are placed by unit and are not scaled: their
 * groups are the plan's.
 */
import { DrainState, type ServingScalingStatus } from "../../../../crds/src/serving-deployment.js";
import { planGroups, planRoles, type PlannedGroup, type StatusPlan } from "../pools.js";
import type { ObservedPod } from "../rollout.js";
import { freeIndices } from "./scaling.js";

export function scaledGroups(
  plan: StatusPlan,
  scaling: ServingScalingStatus | undefined,
  observed: readonly ObservedPod[],
  hash: string,
): PlannedGroup[] {
  if (!scaling || plan.affinity === "low") return planGroups(plan);
  const groups: PlannedGroup[] = [];
  for (const role of planRoles(plan)) {
    const { tp, pp } = plan[role]!;
    const desired = scaling.desired[role] ?? plan[role]!.replicas;
    const ofRole = observed.filter((p) => p.hash === hash && p.role === role);
    const drains = (scaling.draining ?? []).filter((d) => d.role === role);
    const drained = new Set(drains.filter((d) => d.state === DrainState.Drained).map((d) => d.index));
    const draining = new Set(drains.filter((d) => d.state === DrainState.Draining).map((d) => d.index));
    const live = [...new Set(ofRole.map((p) => p.index))]
      .filter((i) => !drained.has(i) && !draining.has(i))
      .sort((a, b) => a - b);
    const kept = live.slice(0, desired);
    const used = [...new Set(ofRole.map((p) => p.index)), ...drained, ...draining];
    const indices = [
      ...kept,
      ...freeIndices(used, Math.max(0, desired - kept.length)),
      ...[...draining].filter((i) => ofRole.some((p) => p.index === i)),
    ];
    for (const index of indices.sort((a, b) => a - b))
      groups.push({ key: `${role}-${index}`, instances: [{ role, index, tp, pp }], gpus: tp * pp });
  }
  return groups;
}
