/**
 * What the cluster can give: per GPU node its topology (from gpufleet.io labels), allocatable and free GPUs, and
 * whether new pods may land there. Pure: computed from the node and pod caches, shared by every planner.
 */
import type { V1Node, V1NodeCondition, V1Pod, V1Taint } from "@kubernetes/client-node";
import {
  GpuResource,
  IsolatedTaintKey,
  hasTopologyLabels,
  parseNodeTopology,
  type NodeTopology,
} from "../../../crds/src/topology.js";

export interface NodeCapacity extends NodeTopology {
  gpusAllocatable: number;
  /** Allocatable minus what non-terminated pods bound (or pinned, see podNode) to the node request. */
  gpusFree: number;
  /**
   * What those pods request, unclamped: a pod pinned to a node that is already full (the scheduler keeps it
   * Pending) makes this exceed allocatable, which gpusFree, floored at 0, cannot show. Absent in hand-built views.
   */
  gpusRequested?: number;
  /** Ready, not cordoned, not isolated by gpufleet. */
  schedulable: boolean;
  /** Carries gpufleet's isolation taint (fault detection took it out). */
  isolated: boolean;
}

export interface ClusterCapacity {
  nodes: NodeCapacity[];
  /** Nodes with gpufleet labels that could not be parsed, with why: surfaced, never silently dropped. */
  invalidNodes: { nodeName: string; error: string }[];
}

export function gpuRequest(pod: V1Pod): number {
  let total = 0;
  for (const container of pod.spec?.containers ?? []) {
    const value = container.resources?.requests?.[GpuResource] ?? container.resources?.limits?.[GpuResource];
    if (value !== undefined) total += Number(value);
  }
  return total;
}

const isTerminated = (pod: V1Pod): boolean => pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";

/**
 * The node a pod holds GPUs on: where it is bound, or, before kube-scheduler binds it, the one node a required
 * node affinity on kubernetes.io/hostname pins it to (the serving pools' pods). Counting pinned pods at once keeps
 * another controller that binds directly (the training gang) from planning the same GPUs in the meantime.
 */
export function podNode(pod: V1Pod): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName;
  const terms =
    pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
  if (terms.length !== 1) return undefined;
  const pins = (terms[0]!.matchExpressions ?? []).filter(
    (e) => e.key === "kubernetes.io/hostname" && e.operator === "In" && e.values?.length === 1,
  );
  return pins.length === 1 ? pins[0]!.values![0] : undefined;
}

const GPUFLEET_ANNOTATION_PREFIX = "gpufleet.io/";

// Module-level predicates and comparator: the controllers summarize 1,000 nodes on every reconcile, and closures made
// per node were a visible share of the soak's CPU profile.
const isIsolationTaint = (t: V1Taint): boolean => t.key === IsolatedTaintKey;
const isReadyTrue = (c: V1NodeCondition): boolean => c.type === "Ready" && c.status === "True";
// Code-point order: node names are lowercase DNS names, where it equals locale order, at a third of the cost.
const byNodeName = (a: NodeCapacity, b: NodeCapacity): number =>
  a.nodeName < b.nodeName ? -1 : a.nodeName > b.nodeName ? 1 : 0;

export function summarizeCapacity(nodes: readonly V1Node[], pods: readonly V1Pod[]): ClusterCapacity {
  const usedByNode = new Map<string, number>();
  for (const pod of pods) {
    const nodeName = podNode(pod);
    if (!nodeName || isTerminated(pod)) continue;
    usedByNode.set(nodeName, (usedByNode.get(nodeName) ?? 0) + gpuRequest(pod));
  }
  const result: ClusterCapacity = { nodes: [], invalidNodes: [] };
  for (const node of nodes) {
    const name = node.metadata?.name ?? "";
    if (!hasTopologyLabels(node.metadata?.labels)) continue;
    let topology: NodeTopology;
    try {
      topology = parseNodeTopology(name, node.metadata?.labels ?? {});
    } catch (error) {
      result.invalidNodes.push({ nodeName: name, error: (error as Error).message });
      continue;
    }
    const gpusAllocatable = Number(node.status?.allocatable?.[GpuResource] ?? 0);
    const isolated = (node.spec?.taints ?? []).some(isIsolationTaint);
    const ready = (node.status?.conditions ?? []).some(isReadyTrue);
    result.nodes.push({
      ...topology,
      gpusAllocatable,
      gpusFree: Math.max(0, gpusAllocatable - (usedByNode.get(name) ?? 0)),
      gpusRequested: usedByNode.get(name) ?? 0,
      schedulable: ready && !node.spec?.unschedulable && !isolated,
      isolated,
    });
  }
  result.nodes.sort(byNodeName);
  return result;
}

/**
 * What the controllers that watch every node read of one (capacity, topology and fabric labels, gpufleet's own
 * annotations such as the agent's endpoint, taints, schedulability, allocatable, each condition's status), as one
 * string: equal strings mean a node event changed nothing they act on (runtime/informer.ts `changesOf`). Heartbeat
 * times are left out, and so are other components' annotations (kube-controller-manager's TTL controller, for one,
 * rewrites `node.alpha.kubernetes.io/ttl`): with every annotation counted, 70 of the soak's 1,000 heartbeats still
 * passed as changes.
 */
export function nodePlacementFacts(node: V1Node): string {
  const annotations = node.metadata?.annotations ?? {};
  return JSON.stringify([
    node.metadata?.labels ?? {},
    Object.keys(annotations)
      .filter((k) => k.startsWith(GPUFLEET_ANNOTATION_PREFIX))
      .sort()
      .map((k) => [k, annotations[k]]),
    node.spec?.taints ?? [],
    node.spec?.unschedulable ?? false,
    node.status?.allocatable ?? {},
    (node.status?.conditions ?? []).map((c) => [c.type, c.status]),
  ]);
}

/**
 * "A100-80GB: 2 nodes, 16 GPUs; H100-80GB: 8 nodes, 64 GPUs" — what the cluster has, for condition messages.
 * Totals only: free counts change with every pod anywhere, and a message that churns would rewrite status and
 * repeat Events on every such change.
 */
export function describeCapacity(nodes: readonly NodeCapacity[]): string {
  const byModel = new Map<string, { nodes: number; gpus: number }>();
  for (const node of nodes) {
    const entry = byModel.get(node.gpuModel) ?? { nodes: 0, gpus: 0 };
    entry.nodes += 1;
    entry.gpus += node.gpusAllocatable;
    byModel.set(node.gpuModel, entry);
  }
  if (byModel.size === 0) return "the cluster has no GPU nodes with gpufleet.io topology labels";
  return [...byModel.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([model, e]) => `${model}: ${e.nodes} node${e.nodes === 1 ? "" : "s"}, ${e.gpus} GPUs`)
    .join("; ");
}

/** A cache the capacity is read from; `changeCount`, where it has one, lets the summary be reused (informer.ts). */
export interface CapacitySource<T> {
  list(): readonly T[];
  readonly changeCount?: number;
}

interface Remembered {
  pods: CapacitySource<V1Pod>;
  nodesChanges: number;
  podsChanges: number;
  capacity: ClusterCapacity;
}
const remembered = new WeakMap<CapacitySource<V1Node>, Remembered>();

/**
 * summarizeCapacity over two caches, computed again only when either has changed since the last call with the same
 * pair: every TrainingJob and ServingDeployment reconcile asks for it, and on 1,000 nodes it was the operator's
 * largest CPU cost in the soak. The result is frozen (shared between callers, so none may edit it); sources without
 * a changeCount are summarized on every call.
 */
export function capacityOf(nodes: CapacitySource<V1Node>, pods: CapacitySource<V1Pod>): ClusterCapacity {
  const nodesChanges = nodes.changeCount;
  const podsChanges = pods.changeCount;
  if (nodesChanges === undefined || podsChanges === undefined) return summarizeCapacity(nodes.list(), pods.list());
  const last = remembered.get(nodes);
  if (last && last.pods === pods && last.nodesChanges === nodesChanges && last.podsChanges === podsChanges)
    return last.capacity;
  const capacity = freezeCapacity(summarizeCapacity(nodes.list(), pods.list()));
  remembered.set(nodes, { pods, nodesChanges, podsChanges, capacity });
  return capacity;
}

function freezeCapacity(capacity: ClusterCapacity): ClusterCapacity {
  for (const node of capacity.nodes) Object.freeze(node);
  for (const invalid of capacity.invalidNodes) Object.freeze(invalid);
  Object.freeze(capacity.nodes);
  Object.freeze(capacity.invalidNodes);
  return Object.freeze(capacity);
}
