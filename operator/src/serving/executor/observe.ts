/**
 * Fetch, part one: the deployment's pods as the rollout sees them (the pod cache's, plus those just created that it
 * does not show yet), and the nodes they sat on that are gone.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { OwnedLabel } from "../../../../crds/src/reasons.js";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import type { ClusterCapacity } from "../../cluster/capacity.js";
import { observePod, type ObservedPod } from "../rollout.js";
import type { WriteMemory } from "./write-memory.js";

/**
 * Our pods: labelled with and owned by the deployment in the cache, plus the ones `memory` created and the cache lags
 * on.
 */
export function observeOwnPods(
  sd: ServingDeployment,
  allPods: readonly V1Pod[],
  memory: WriteMemory,
  nowMs: number,
): ObservedPod[] {
  const namespace = sd.metadata.namespace!;
  const name = sd.metadata.name!;
  const uid = sd.metadata.uid!;
  memory.sync(allPods, nowMs);
  const cachedOwn = allPods.filter(
    (p) =>
      p.metadata?.namespace === namespace &&
      p.metadata.labels?.[OwnedLabel.servingDeployment] === name &&
      p.metadata.ownerReferences?.some((o) => o.uid === uid),
  );
  const observed: ObservedPod[] = [];
  for (const p of cachedOwn) {
    const o = observePod(p, {
      deleting: p.metadata?.deletionTimestamp !== undefined || memory.isDeleted(p.metadata?.uid),
      nowMs,
    });
    if (o) observed.push(o);
  }
  for (const p of memory.assumedFor(uid)) {
    const o = observePod(p, { counted: false });
    if (o) observed.push(o);
  }
  return observed;
}

/** Nodes our pods sit on that are gone from the cluster or isolated by fault detection. */
export function lostNodesOf(observed: readonly ObservedPod[], capacity: ClusterCapacity): Set<string> {
  const byName = new Map(capacity.nodes.map((n) => [n.nodeName, n]));
  const lost = new Set<string>();
  for (const p of observed) {
    if (!p.counted) continue;
    const node = byName.get(p.nodeName);
    if (!node || node.isolated) lost.add(p.nodeName);
  }
  return lost;
}
