/**
 * The cluster a plan is made for: a cluster profile file (clusters/*.yaml, the same fleet `npm start` and the tests
 * create as kwok nodes, via common/src/cluster-profile/) or the nodes and pods of the current kubeconfig's cluster.
 * Either way the operator's own capacity summary (operator/src/cluster/capacity.ts) turns them into what the
 * planners see.
 */
import path from "node:path";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { summarizeCapacity, type ClusterCapacity } from "../operator/src/cluster/capacity.js";
import { ProfileError, expandProfile, loadProfile, resolveProfilePath } from "../common/src/cluster-profile/profile.js";
import { usageError } from "./errors.js";
import type { Kube } from "./kube.js";

export interface ClusterView {
  /** Where the nodes came from, for the output: "profile default (clusters/default.yaml)", "cluster kind-gpufleet". */
  source: string;
  nodes: V1Node[];
  pods: V1Pod[];
  capacity: ClusterCapacity;
}

/** Nodes of a profile as kwok runs them: Ready, nothing scheduled yet. */
export async function clusterFromProfile(profile: string): Promise<ClusterView> {
  let nodes: V1Node[];
  try {
    const loaded = await loadProfile(profile);
    // kwok marks its nodes Ready once it manages them; a profile's fresh nodes are exactly that.
    nodes = expandProfile(loaded).map((n) => ({
      ...n,
      status: { ...n.status, conditions: [{ type: "Ready", status: "True" }] },
    }));
  } catch (error) {
    if (error instanceof ProfileError) throw usageError(error.message, { cause: error });
    throw error;
  }
  return {
    source: `profile ${profile} (${path.relative(process.cwd(), resolveProfilePath(profile)) || "."})`,
    nodes,
    pods: [],
    capacity: summarizeCapacity(nodes, []),
  };
}

export async function clusterFromKube(kube: Kube): Promise<ClusterView> {
  const [nodes, pods] = await Promise.all([kube.listNodes(), kube.listPods()]);
  return { source: `cluster ${kube.contextName} (kubeconfig)`, nodes, pods, capacity: summarizeCapacity(nodes, pods) };
}

/** GPUs per model: nodes, allocatable and free, schedulable nodes only. */
export function capacityByModel(
  capacity: ClusterCapacity,
): { gpuModel: string; nodes: number; gpus: number; gpusFree: number }[] {
  const byModel = new Map<string, { gpuModel: string; nodes: number; gpus: number; gpusFree: number }>();
  for (const n of capacity.nodes) {
    if (!n.schedulable) continue;
    const e = byModel.get(n.gpuModel) ?? { gpuModel: n.gpuModel, nodes: 0, gpus: 0, gpusFree: 0 };
    e.nodes += 1;
    e.gpus += n.gpusAllocatable;
    e.gpusFree += n.gpusFree;
    byModel.set(n.gpuModel, e);
  }
  return [...byModel.values()].sort((a, b) => a.gpuModel.localeCompare(b.gpuModel));
}
