/**
 * FabricTopology: one leaf-spine fabric (one RDMA island), cluster-scoped, for C4P traffic planning.
 *
 * Why a resource and not labels plus a ConfigMap: the fabric's facts are not per node (spines, cables between
 * leaves and spines, their bandwidth, which cables are down), so node labels cannot carry them; a ConfigMap would
 * hold them as an unvalidated string, while a CRD gets its schema and CEL rules checked by the API server at
 * `kubectl apply`, a status the operator keeps in step with the nodes, and watch events when a cable is marked
 * down. What is per node stays a label: gpufleet.io/island names the fabric, gpufleet.io/leaf the node's leaf
 * (crds/src/topology.ts).
 */
import { Type, type Static } from "@sinclair/typebox";
import type { V1ObjectMeta } from "@kubernetes/client-node";
import { ConditionsSchema, type Condition } from "./conditions.js";
import { cel } from "./schema-helpers.js";

const SwitchName = Type.String({ minLength: 1, maxLength: 63, pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$" });

/** Most spines per fabric, leaves per fabric, and parallel ports per leaf-spine pair (bounds CEL's cost). */
export const FABRIC_LIMITS = { spines: 32, leaves: 256, portsPerUplink: 64 } as const;

export const FabricUplinkSchema = Type.Object(
  {
    spine: { ...SwitchName, description: "Spine switch this leaf's ports go to; must be in spec.spines." },
    ports: Type.Integer({
      minimum: 1,
      maximum: FABRIC_LIMITS.portsPerUplink,
      default: 1,
      description: "Parallel ports (cables) between the leaf and this spine; ECMP hashes over them.",
    }),
    portGbps: Type.Number({
      exclusiveMinimum: 0,
      maximum: 3200,
      description: "Bandwidth of one port, each direction, Gbit/s.",
    }),
    failedPorts: Type.Optional(
      Type.Array(Type.Integer({ minimum: 0, maximum: FABRIC_LIMITS.portsPerUplink - 1 }), {
        maxItems: FABRIC_LIMITS.portsPerUplink,
        "x-kubernetes-list-type": "set",
        description: "Indexes (0-based) of ports whose cable is down, both directions. Traffic plans avoid them.",
      }),
    ),
  },
  cel({
    rule: "!has(self.failedPorts) || self.failedPorts.all(p, p < self.ports)",
    message: "failedPorts must be port indexes below ports",
    fieldPath: ".failedPorts",
  }),
);

export const FabricLeafSchema = Type.Object({
  name: { ...SwitchName, description: "Leaf (top-of-rack) switch: the gpufleet.io/leaf label of the nodes under it." },
  uplinks: Type.Array(FabricUplinkSchema, {
    description: "The leaf's cables to the spines, one entry per spine.",
    minItems: 1,
    maxItems: FABRIC_LIMITS.spines,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["spine"],
  }),
});

export const FabricTopologySpecSchema = Type.Object(
  {
    island: Type.String({
      minLength: 1,
      maxLength: 63,
      description: "The gpufleet.io/island label of the nodes on this fabric.",
    }),
    spines: Type.Array(SwitchName, {
      minItems: 1,
      maxItems: FABRIC_LIMITS.spines,
      "x-kubernetes-list-type": "set",
      description: "Spine switch names.",
    }),
    leaves: Type.Array(FabricLeafSchema, {
      description: "Leaf (top-of-rack) switches and their uplinks.",
      minItems: 1,
      maxItems: FABRIC_LIMITS.leaves,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
  },
  cel({
    rule: "self.leaves.all(l, l.uplinks.all(u, u.spine in self.spines))",
    message: "every uplink's spine must be listed in spec.spines",
    fieldPath: ".leaves",
  }),
);
export type FabricTopologySpec = Static<typeof FabricTopologySpecSchema>;

export const FabricTopologyStatusSchema = Type.Object({
  observedGeneration: Type.Optional(
    Type.Integer({ description: "The metadata.generation this status was computed for." }),
  ),
  nodes: Type.Optional(Type.Integer({ minimum: 0, description: "Nodes labelled with this fabric's island." })),
  leavesInUse: Type.Optional(
    Type.Integer({ minimum: 0, description: "Leaves that have at least one of those nodes." }),
  ),
  failedPorts: Type.Optional(
    Type.Integer({ minimum: 0, description: "Cables down (failedPorts summed over every leaf)." }),
  ),
  nodesOnUnknownLeaves: Type.Optional(
    Type.Array(Type.String(), {
      maxItems: 64,
      description: "Nodes of the island whose gpufleet.io/leaf is not a leaf of this fabric (at most 64 listed).",
    }),
  ),
  conditions: Type.Optional(ConditionsSchema),
});
export type FabricTopologyStatus = Static<typeof FabricTopologyStatusSchema>;

export interface FabricTopology {
  apiVersion: "gpufleet.io/v1alpha1";
  kind: "FabricTopology";
  metadata: V1ObjectMeta;
  spec: FabricTopologySpec;
  status?: FabricTopologyStatus & { conditions?: Condition[] };
}

export const FabricTopologyNames = {
  kind: "FabricTopology",
  listKind: "FabricTopologyList",
  plural: "fabrictopologies",
  singular: "fabrictopology",
  shortNames: ["fabric"],
} as const;

/** Condition types of a FabricTopology. */
export const FabricCondition = {
  /** The spec is consistent and every node of the island sits on one of its leaves. */
  InSync: "InSync",
} as const;
export type FabricCondition = (typeof FabricCondition)[keyof typeof FabricCondition];

/** Reasons of the InSync condition. */
export const FabricReason = {
  /** Every node of the island is on a leaf of the fabric. */
  NodesMatch: "NodesMatch",
  /** Some node's gpufleet.io/leaf names no leaf of the fabric; the message lists them. */
  UnknownLeaf: "UnknownLeaf",
  /** No node carries this island's label. */
  NoNodes: "NoNodes",
} as const;
export type FabricReason = (typeof FabricReason)[keyof typeof FabricReason];
