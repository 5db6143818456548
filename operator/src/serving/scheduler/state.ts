/**
 * The autoscaler's state per deployment, shared by the scheduler loop (which decides) and the serving executor
 * (which rolls pods to it and writes it to status.scaling: the reconcile stays the one writer of status). Memory
 * holds the newest; a leader that has none yet (it just took over) starts from the deployment's status, so
 * decisions and drains survive a failover.
 *
 * The planner's replicas are the starting point; the autoscaler's desired counts override them until the plan
 * (its hash) or the spec (its generation) changes, which resets them to the planner's.
 */
import type { ServingDeployment, ServingScalingStatus } from "../../../../crds/src/serving-deployment.js";
import { desiredInstances, type StatusPlan } from "../pools.js";
import type { ObservedPod } from "../rollout.js";

export class ScalingMemory {
  private readonly byUid = new Map<string, ServingScalingStatus>();

  /** The newest state known for the deployment, if any (memory first, then its status). */
  get(sd: ServingDeployment): ServingScalingStatus | undefined {
    return this.byUid.get(sd.metadata.uid!) ?? sd.status?.scaling;
  }

  set(uid: string, state: ServingScalingStatus): void {
    this.byUid.set(uid, state);
  }

  /** Forgets deployments that no longer exist. */
  retain(uids: ReadonlySet<string>): void {
    for (const uid of this.byUid.keys()) if (!uids.has(uid)) this.byUid.delete(uid);
  }

  /**
   * The state the executor rolls out for `target` (hashed `hash`): the current one if it is for this plan and
   * generation, else a fresh one from the planner's replicas. Drained entries whose pods are gone are dropped.
   */
  resolve(
    sd: ServingDeployment,
    target: StatusPlan,
    hash: string,
    observed: readonly ObservedPod[],
  ): ServingScalingStatus {
    const generation = sd.metadata.generation ?? 0;
    const current = this.get(sd);
    let state: ServingScalingStatus;
    if (current && current.planHash === hash && current.generation === generation) {
      const present = new Set(observed.map((p) => p.name));
      const draining = (current.draining ?? []).filter((d) => present.has(d.pod));
      state = { ...current, draining: draining.length > 0 ? draining : undefined };
    } else {
      state = { planHash: hash, generation, desired: Object.fromEntries(desiredInstances(target)) };
    }
    this.byUid.set(sd.metadata.uid!, state);
    return state;
  }
}
