/**
 * The fabric of a cluster profile: one FabricTopology (crds/src/fabric-topology.ts) per island listed under the
 * profile's `fabrics`, with the leaves its nodes are on (taken from expandProfile's gpufleet.io/leaf labels, so the
 * two never disagree) and `spines` spines that every leaf reaches over `portsPerSpine` ports of `portGbps`.
 *
 *   fabrics:
 *     - island: ib-a
 *       spines: 2
 *       portsPerSpine: 8
 *       portGbps: 400
 */
import { API_GROUP_VERSION } from "../../../crds/src/common.js";
import type { FabricTopology } from "../../../crds/src/fabric-topology.js";
import { TopologyLabel } from "../../../crds/src/topology.js";
import { expandProfile, type ClusterProfile } from "./profile.js";

export interface ProfileFabric {
  island: string;
  spines: number;
  portsPerSpine: number;
  portGbps: number;
}

export const FABRIC_FIELDS = ["island", "spines", "portsPerSpine", "portGbps"] as const;

/** Checks one `fabrics` entry; `fail(field, detail)` throws the profile's error. */
export function validateProfileFabric(
  raw: unknown,
  at: string,
  islands: ReadonlySet<string>,
  fail: (field: string, detail: string) => never,
): ProfileFabric {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return fail(at, "must be a mapping");
  const entry = raw as Record<string, unknown>;
  for (const key of Object.keys(entry))
    if (!(FABRIC_FIELDS as readonly string[]).includes(key))
      fail(`${at}.${key}`, `is not a known field (known: ${FABRIC_FIELDS.join(", ")})`);
  const island = entry["island"];
  if (typeof island !== "string" || !islands.has(island))
    fail(
      `${at}.island`,
      `must be the island of a node group (${[...islands].join(", ")}), got ${JSON.stringify(island)}`,
    );
  const positive = (field: string, integer: boolean): number => {
    const value = entry[field];
    if (typeof value !== "number" || !(value > 0) || (integer && !Number.isInteger(value)))
      fail(`${at}.${field}`, `must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(value)}`);
    return value as number;
  };
  return {
    island: island as string,
    spines: positive("spines", true),
    portsPerSpine: positive("portsPerSpine", true),
    portGbps: positive("portGbps", false),
  };
}

/** The FabricTopology objects of a profile (none when it lists no fabrics). */
export function expandFabrics(profile: ClusterProfile): FabricTopology[] {
  const nodes = expandProfile(profile);
  return (profile.fabrics ?? []).map((f) => {
    const leaves = [
      ...new Set(
        nodes
          .filter((n) => n.metadata?.labels?.[TopologyLabel.island] === f.island)
          .map((n) => n.metadata!.labels![TopologyLabel.leaf]!),
      ),
    ].sort();
    const spines = Array.from({ length: f.spines }, (_, i) => `${f.island}-spine-${i}`);
    return {
      apiVersion: API_GROUP_VERSION,
      kind: "FabricTopology",
      metadata: { name: f.island },
      spec: {
        island: f.island,
        spines,
        leaves: leaves.map((name) => ({
          name,
          uplinks: spines.map((spine) => ({ spine, ports: f.portsPerSpine, portGbps: f.portGbps })),
        })),
      },
    };
  });
}
