/**
 * One step of rolling a ServingDeployment's pods towards its target plan (pure; LWS planner/executor split: the
 * plan step executes what this returns and calls it again on the next reconcile with what it then observes).
 *
 * Surge first, then drain, per role:
 *  1. Broken groups are removed at once: a target-plan group with a pod missing, failed or on a lost (isolated or
 *     vanished) node is deleted whole and recreated; an old-plan instance that is not Ready serves nothing.
 *  2. Every missing target group that fits in the GPUs free now is created (new pods before old ones go).
 *  3. Old Ready instances of a role the target plan keeps go only while Ready target instances of that role stand
 *     in for them: once at least one is Ready, old instances beyond `desired − ready new` are removed, at most
 *     `maxUnavailable` per role in flight. A role the target plan drops (colocated ↔ disaggregated) goes once the
 *     whole target plan is Ready.
 *  4. When target groups fit nowhere and nothing else is moving (a cluster without room to surge), old instances
 *     on the nodes that would make room are removed one per step, but never a role's last Ready instance. If that
 *     cannot make room, the rollout waits and says why.
 * A role never drops to zero Ready instances through this function, and it never deletes more than it must.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { OwnedLabel } from "../../../crds/src/reasons.js";
import { gpuRequest, podNode } from "../cluster/capacity.js";
import type { FreeNode } from "./distserve/packing.js";
import {
  type PlacedGroup,
  type PlannedGroup,
  type Role,
  type StatusPlan,
  ServingPodAnnotation,
  ServingPodLabel,
  placeGroups,
  planGroups,
} from "./pools.js";

export interface ObservedPod {
  name: string;
  hash: string;
  role: Role;
  index: number;
  worker: number;
  groupKey: string;
  groupPods: number;
  instancePods: number;
  /** Bound node, else the node the pod is pinned to. */
  nodeName: string;
  gpus: number;
  ready: boolean;
  failed: boolean;
  /** Being deleted (deletionTimestamp set, or deleted by us and still in the cache). */
  deleting: boolean;
  /** kube-scheduler has refused it (PodScheduled=False, Unschedulable) on its pinned node for longer than the grace. */
  unschedulable: boolean;
  /** In the pod cache, bound or pinned, not finished: the cluster capacity already counts its GPUs. */
  counted: boolean;
}

export interface RolloutInput {
  sdName: string;
  targetHash: string;
  /** The target plan's groups. */
  groups: readonly PlannedGroup[];
  /** The deployment's pods, every plan. */
  pods: readonly ObservedPod[];
  /** GPUs free now on each node the target plan may use (after every pod, ours included). */
  free: readonly FreeNode[];
  /** Nodes whose pods are gone for good (isolated, or no longer in the cluster). */
  lostNodes: ReadonlySet<string>;
  maxUnavailable: number;
}

export interface RolloutStep {
  create: PlacedGroup[];
  delete: string[];
  /** Target groups that fit nowhere now. */
  blocked: PlannedGroup[];
  /** Why the rollout cannot progress, when it cannot. */
  waiting?: string;
  readyInstances: number;
  desiredInstances: number;
  /** Every target instance Ready and no old pod left. */
  complete: boolean;
}

const ROLES: readonly Role[] = ["prefill", "decode", "colocated"];

/** The rollout's view of one of our pods; undefined for a pod without our labels. */
/**
 * How long a pinned pod may stay Unschedulable before its group is placed again elsewhere: long enough for the
 * scheduler to catch up with GPUs just freed, short enough that a plan made from a stale view heals quickly.
 */
export const UNSCHEDULABLE_GRACE_MS = 10_000;

export function observePod(
  pod: V1Pod,
  opts: { deleting?: boolean; counted?: boolean; nowMs?: number } = {},
): ObservedPod | undefined {
  const labels = pod.metadata?.labels ?? {};
  const annotations = pod.metadata?.annotations ?? {};
  const role = labels[OwnedLabel.role] as Role | undefined;
  const hash = labels[OwnedLabel.planHash];
  const index = Number(labels[OwnedLabel.instance]);
  if (!role || !ROLES.includes(role) || !hash || !Number.isInteger(index)) return undefined;
  const phase = pod.status?.phase;
  return {
    name: pod.metadata?.name ?? "",
    hash,
    role,
    index,
    worker: Number(labels[ServingPodLabel.worker] ?? 0),
    groupKey: annotations[ServingPodAnnotation.group] ?? `${role}-${index}`,
    groupPods: Number(annotations[ServingPodAnnotation.groupPods] ?? 1),
    instancePods: Number(annotations[ServingPodAnnotation.instancePods] ?? 1),
    nodeName: pod.spec?.nodeName ?? annotations[ServingPodAnnotation.node] ?? "",
    gpus: gpuRequest(pod),
    ready: phase === "Running" && (pod.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
    failed: phase === "Failed" || phase === "Succeeded",
    deleting: opts.deleting ?? pod.metadata?.deletionTimestamp !== undefined,
    unschedulable: unschedulableFor(pod, opts.nowMs) >= UNSCHEDULABLE_GRACE_MS,
    counted: opts.counted ?? (podNode(pod) !== undefined && phase !== "Failed" && phase !== "Succeeded"),
  };
}

/** How long kube-scheduler has been refusing an unbound pod (0 when it is bound, pending normally, or no clock). */
function unschedulableFor(pod: V1Pod, nowMs: number | undefined): number {
  if (nowMs === undefined || pod.spec?.nodeName) return 0;
  const scheduled = pod.status?.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status !== "False" || scheduled.reason !== "Unschedulable" || !scheduled.lastTransitionTime) return 0;
  return nowMs - new Date(scheduled.lastTransitionTime).getTime();
}

interface Instance {
  hash: string;
  role: Role;
  index: number;
  pods: ObservedPod[];
}

const instanceKey = (p: { hash: string; role: Role; index: number }) => `${p.hash}/${p.role}/${p.index}`;

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) map.set(key(item), [...(map.get(key(item)) ?? []), item]);
  return map;
}

const instanceReady = (i: Instance) =>
  i.pods.length === (i.pods[0]?.instancePods ?? 1) && i.pods.every((p) => p.ready && !p.deleting);

export function planRollout(input: RolloutInput): RolloutStep {
  const { targetHash, lostNodes } = input;
  const deletions = new Set<string>();
  const remove = (pods: readonly ObservedPod[]) => {
    for (const p of pods) if (!p.deleting) deletions.add(p.name);
  };
  const broken = (p: ObservedPod) => p.failed || p.unschedulable || lostNodes.has(p.nodeName);

  // 1a. Target groups: complete, missing, or broken (repaired whole).
  const targetPods = input.pods.filter((p) => p.hash === targetHash);
  const targetByGroup = groupBy(targetPods, (p) => p.groupKey);
  const wanted = new Set(input.groups.map((g) => g.key));
  const missing: PlannedGroup[] = [];
  let settling = false;
  for (const group of input.groups) {
    const pods = targetByGroup.get(group.key) ?? [];
    const live = pods.filter((p) => !p.deleting);
    if (pods.length === 0) missing.push(group);
    else if (live.length < pods.length)
      settling = true; // part of it is going away: wait for it to be gone
    else if (live.length < (live[0]?.groupPods ?? 1) || live.some(broken)) remove(live);
  }
  for (const [key, pods] of targetByGroup) if (!wanted.has(key)) remove(pods);

  // 1b. Old instances: those not Ready (or broken) serve nothing.
  const oldInstances = [
    ...groupBy(
      input.pods.filter((p) => p.hash !== targetHash),
      instanceKey,
    ).values(),
  ].map((pods): Instance => ({ hash: pods[0]!.hash, role: pods[0]!.role, index: pods[0]!.index, pods }));
  const oldReady: Instance[] = [];
  for (const inst of oldInstances) {
    if (inst.pods.every((p) => p.deleting)) continue;
    if (instanceReady(inst) && !inst.pods.some(broken)) oldReady.push(inst);
    else remove(inst.pods);
  }

  // Readiness of the target plan, per role.
  const desired = new Map<Role, number>();
  for (const g of input.groups) for (const i of g.instances) desired.set(i.role, (desired.get(i.role) ?? 0) + 1);
  const targetInstances = [...groupBy(targetPods, instanceKey).values()].map((pods): Instance => ({
    hash: targetHash,
    role: pods[0]!.role,
    index: pods[0]!.index,
    pods,
  }));
  const newReady = new Map<Role, number>();
  for (const inst of targetInstances)
    if (instanceReady(inst) && !inst.pods.some((p) => deletions.has(p.name)))
      newReady.set(inst.role, (newReady.get(inst.role) ?? 0) + 1);
  const readyInstances = [...newReady.values()].reduce((a, b) => a + b, 0);
  const desiredInstances = [...desired.values()].reduce((a, b) => a + b, 0);
  const targetReady = readyInstances === desiredInstances && missing.length === 0;

  // 2. Surge: create what fits in the GPUs free now.
  const { placed: create, blocked } = placeGroups(input.sdName, targetHash, missing, input.free);

  // 3. Drain old Ready instances the target plan stands in for.
  const inFlight = new Map<Role, number>();
  for (const inst of oldInstances)
    if (inst.pods.some((p) => p.deleting)) inFlight.set(inst.role, (inFlight.get(inst.role) ?? 0) + 1);
  const readyOld = new Map<Role, Instance[]>();
  for (const inst of oldReady) readyOld.set(inst.role, [...(readyOld.get(inst.role) ?? []), inst]);
  let drained = 0;
  for (const [role, instances] of readyOld) {
    // Oldest plan and highest index first, so what stays is stable from step to step.
    const order = [...instances].sort((x, y) => x.hash.localeCompare(y.hash) || y.index - x.index);
    let count: number;
    if (desired.has(role)) {
      const ready = newReady.get(role) ?? 0;
      if (ready === 0) continue;
      const keep = Math.max(0, (desired.get(role) ?? 0) - ready);
      count = Math.max(0, Math.min(order.length - keep, input.maxUnavailable - (inFlight.get(role) ?? 0)));
    } else {
      count = targetReady ? order.length : 0;
    }
    for (const inst of order.slice(0, count)) remove(inst.pods);
    drained += count;
    readyOld.set(role, order.slice(count));
  }

  // 4. Make room when surging is impossible and nothing else moves.
  let waiting: string | undefined;
  const moving =
    create.length > 0 ||
    drained > 0 ||
    settling ||
    deletions.size > 0 ||
    input.pods.some((p) => p.deleting) ||
    targetPods.some((p) => !p.ready);
  if (blocked.length > 0 && !moving) {
    const victim = makeRoom(input, blocked[0]!, [...readyOld.values()].flat(), newReady);
    if (victim) remove(victim.pods);
    else {
      const g = blocked[0]!;
      waiting =
        `${blocked.length} group(s) of the new plan fit nowhere (${g.key} needs ${g.gpus} GPUs); ` +
        `removing old instances cannot make room without leaving a role with no Ready instance`;
    }
  } else if (blocked.length > 0) {
    waiting = `${blocked.length} group(s) of the new plan wait for GPUs to free up`;
  }

  const oldLeft = input.pods.some((p) => p.hash !== targetHash);
  return {
    create,
    delete: [...deletions].sort(),
    blocked,
    waiting,
    readyInstances,
    desiredInstances,
    complete: targetReady && !oldLeft && deletions.size === 0 && !input.pods.some((p) => p.deleting),
  };
}

/**
 * The first old instance to remove so that `group` fits: old instances are taken node by node (the node with the
 * most free plus reclaimable GPUs first), never a role's last Ready instance, until the group fits; the first of
 * that sequence is returned (one per step: the next step re-checks with what then is free).
 */
function makeRoom(
  input: RolloutInput,
  group: PlannedGroup,
  candidates: readonly Instance[],
  newReady: ReadonlyMap<Role, number>,
): Instance | undefined {
  const free = new Map(input.free.map((n) => [n.nodeName, n.gpusFree]));
  // Only GPUs on nodes the target plan may use help; they count once the pod is gone from the capacity.
  const onNode = (inst: Instance, node: string) =>
    inst.pods.filter((p) => p.nodeName === node && p.counted && free.has(node)).reduce((sum, p) => sum + p.gpus, 0);
  const nodes = [...new Set(candidates.flatMap((i) => i.pods.map((p) => p.nodeName)))].filter((n) => free.has(n));
  const reclaimable = (node: string) => candidates.reduce((sum, i) => sum + onNode(i, node), 0);
  nodes.sort(
    (a, b) => (free.get(b) ?? 0) + reclaimable(b) - ((free.get(a) ?? 0) + reclaimable(a)) || a.localeCompare(b),
  );
  const readyLeft = new Map<Role, number>();
  for (const role of ROLES)
    readyLeft.set(role, (newReady.get(role) ?? 0) + candidates.filter((i) => i.role === role).length);
  const taken = new Set<Instance>();
  const sequence: Instance[] = [];
  for (const node of nodes) {
    const here = candidates
      .filter((i) => !taken.has(i) && onNode(i, node) > 0)
      .sort((x, y) => x.hash.localeCompare(y.hash) || y.index - x.index);
    for (const inst of here) {
      if ((readyLeft.get(inst.role) ?? 0) <= 1) continue;
      readyLeft.set(inst.role, (readyLeft.get(inst.role) ?? 0) - 1);
      taken.add(inst);
      sequence.push(inst);
      for (const p of inst.pods)
        if (p.counted && free.has(p.nodeName)) free.set(p.nodeName, (free.get(p.nodeName) ?? 0) + p.gpus);
      const fits = placeGroups(
        input.sdName,
        input.targetHash,
        [group],
        [...free.entries()].map(([nodeName, gpusFree]) => ({ nodeName, gpusFree })),
      );
      if (fits.blocked.length === 0) return sequence[0];
    }
  }
  return undefined;
}

/**
 * Whether a running plan can keep running on the cluster as it is: its groups that are missing, incomplete or on
 * a lost node can be placed in the GPUs free plus those the deployment's other pods hold (the rollout may reuse
 * them). Hysteresis keeps a plan only while this holds.
 */
export function runningPlanFits(input: {
  sdName: string;
  plan: StatusPlan;
  hash: string;
  pods: readonly ObservedPod[];
  free: readonly FreeNode[];
  lostNodes: ReadonlySet<string>;
}): boolean {
  const { hash, lostNodes } = input;
  const live = input.pods.filter((p) => !p.deleting && !p.failed);
  const groups = planGroups(input.plan);
  const healthy = new Set<string>();
  for (const group of groups) {
    const pods = live.filter((p) => p.hash === hash && p.groupKey === group.key);
    if (pods.length > 0 && pods.length === pods[0]!.groupPods && !pods.some((p) => lostNodes.has(p.nodeName)))
      healthy.add(group.key);
  }
  const reusable = live.filter(
    (p) => p.counted && !lostNodes.has(p.nodeName) && !(p.hash === hash && healthy.has(p.groupKey)),
  );
  const free = input.free.map((n) => ({
    nodeName: n.nodeName,
    gpusFree: n.gpusFree + reusable.filter((p) => p.nodeName === n.nodeName).reduce((s, p) => s + p.gpus, 0),
  }));
  return (
    placeGroups(
      input.sdName,
      hash,
      groups.filter((g) => !healthy.has(g.key)),
      free,
    ).blocked.length === 0
  );
}
