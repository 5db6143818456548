/**
 * A FabricTopology against the nodes (pure): what its status says, and the planner's fabric built from its spec.
 *
 * In step means: the spec is consistent (what CEL cannot check: see fabricSpecProblems) and every node labelled
 * with the fabric's island sits on a leaf the fabric lists. A node on an unknown leaf could not be planned for (its
 * traffic's uplinks are unknown), so the condition turns False and names it; the planner leaves its connections
 * out rather than guess.
 */
import type { ConditionUpdate } from "../../../crds/src/conditions.js";
import {
  FabricCondition,
  FabricReason,
  type FabricTopologySpec,
  type FabricTopologyStatus,
} from "../../../crds/src/fabric-topology.js";
import { Reason } from "../../../crds/src/reasons.js";
import { TopologyLabel } from "../../../crds/src/topology.js";
import { fabricSpecProblems, type FabricSpec } from "./fabric.js";

/** The planner's view of a FabricTopology spec (defaults filled by the API server). */
export function fabricSpecOf(spec: FabricTopologySpec): FabricSpec {
  return {
    spines: spec.spines,
    leaves: spec.leaves.map((l) => ({
      name: l.name,
      uplinks: l.uplinks.map((u) => ({
        spine: u.spine,
        ports: u.ports,
        portGbps: u.portGbps,
        ...(u.failedPorts ? { failedPorts: u.failedPorts } : {}),
      })),
    })),
  };
}

export interface LabelledNode {
  name: string;
  labels: Readonly<Record<string, string>>;
}

const MAX_LISTED = 64;

export function fabricTopologyStatus(
  spec: FabricTopologySpec,
  nodes: readonly LabelledNode[],
): { status: Omit<FabricTopologyStatus, "conditions" | "observedGeneration">; condition: ConditionUpdate } {
  const failedPorts = spec.leaves.reduce(
    (n, l) => n + l.uplinks.reduce((m, u) => m + (u.failedPorts?.length ?? 0), 0),
    0,
  );
  const leaves = new Set(spec.leaves.map((l) => l.name));
  const members = nodes
    .filter((n) => n.labels[TopologyLabel.island] === spec.island)
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const unknown = members.filter((n) => !leaves.has(n.labels[TopologyLabel.leaf] ?? ""));
  const inUse = new Set(
    members.map((n) => n.labels[TopologyLabel.leaf]).filter((l): l is string => l !== undefined && leaves.has(l)),
  );
  const status = {
    nodes: members.length,
    leavesInUse: inUse.size,
    failedPorts,
    nodesOnUnknownLeaves: unknown.slice(0, MAX_LISTED).map((n) => n.name),
  };
  const problems = fabricSpecProblems(fabricSpecOf(spec));
  const type = FabricCondition.InSync;
  if (problems.length > 0)
    return { status, condition: { type, status: "False", reason: Reason.InvalidSpec, message: problems.join("; ") } };
  if (unknown.length > 0) {
    const listed = unknown
      .slice(0, 8)
      .map((n) => `${n.name} (leaf ${n.labels[TopologyLabel.leaf] ?? "unset"})`)
      .join(", ");
    return {
      status,
      condition: {
        type,
        status: "False",
        reason: FabricReason.UnknownLeaf,
        message: `${unknown.length} node(s) of island ${spec.island} are on leaves this fabric does not list: ${listed}${unknown.length > 8 ? ", …" : ""}`,
      },
    };
  }
  if (members.length === 0)
    return {
      status,
      condition: {
        type,
        status: "False",
        reason: FabricReason.NoNodes,
        message: `no node carries ${TopologyLabel.island}=${spec.island}`,
      },
    };
  return {
    status,
    condition: {
      type,
      status: "True",
      reason: FabricReason.NodesMatch,
      message: `${members.length} nodes on ${inUse.size} of ${leaves.size} leaves; ${failedPorts} port(s) down`,
    },
  };
}
