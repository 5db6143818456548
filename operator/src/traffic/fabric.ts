/**
 * The leaf-spine fabric as the C4P planner sees it (pure): leaves, spines and the individual cables between them.
 *
 * A cable between leaf l and spine s is one port on each; it is two links, up (l → s) and down (s → l), of the
 * port's bandwidth each way. A leaf-spine pair may have several parallel ports (a leaf with 32 uplink ports and 8
 * spines has 4 ports per spine), and ECMP hashes onto the port, not only the spine, so the planner places traffic
 * per port. A failed cable is down both ways: its links have capacity 0 and carry nothing.
 *
 * Node → leaf comes from the node's gpufleet.io/leaf label (crds/src/topology.ts); the host links between a node
 * and its leaf carry the same traffic whatever the plan, so they are not part of the model.
 */

export interface FabricUplink {
  spine: string;
  /** Parallel ports (cables) between this leaf and this spine. */
  ports: number;
  /** Bandwidth of one port, each direction, Gbit/s. */
  portGbps: number;
  /** Port indexes (0 … ports − 1) whose cable is down. */
  failedPorts?: readonly number[];
}

export interface FabricLeaf {
  name: string;
  uplinks: readonly FabricUplink[];
}

/** What a FabricTopology's spec says (crds/src/fabric-topology.ts), already schema-valid. */
export interface FabricSpec {
  spines: readonly string[];
  leaves: readonly FabricLeaf[];
}

export interface Fabric {
  leaves: readonly string[];
  spines: readonly string[];
  leafIndex: ReadonlyMap<string, number>;
  /** Capacity of every link in Gbit/s, 0 when its cable is down. Ids: see up/down. */
  capacityGbps: Float64Array;
  /** up[leaf][spine] = ids of the up links (one per port, port order) from leaf to spine. */
  up: readonly (readonly (readonly number[])[])[];
  /** down[spine][leaf] = ids of the down links from spine to leaf, same port order as up. */
  down: readonly (readonly (readonly number[])[])[];
  /** Human-readable name of each link: "leaf-0>spine-1#2" (up) or "spine-1>leaf-0#2" (down). */
  linkNames: readonly string[];
}

export class FabricSpecError extends Error {
  override name = "FabricSpecError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid fabric: ${problems.join("; ")}`);
  }
}

/** Everything wrong with a spec that its schema cannot express (cross references, port ranges), or []. */
export function fabricSpecProblems(spec: FabricSpec): string[] {
  const problems: string[] = [];
  const spines = new Set<string>();
  for (const spine of spec.spines) {
    if (spines.has(spine)) problems.push(`spine ${spine} is listed twice`);
    spines.add(spine);
  }
  const leaves = new Set<string>();
  for (const [i, leaf] of spec.leaves.entries()) {
    if (leaves.has(leaf.name)) problems.push(`leaves[${i}]: leaf ${leaf.name} is listed twice`);
    leaves.add(leaf.name);
    const seen = new Set<string>();
    for (const [j, uplink] of leaf.uplinks.entries()) {
      const at = `leaves[${i}] (${leaf.name}).uplinks[${j}]`;
      if (!spines.has(uplink.spine)) problems.push(`${at}: spine ${uplink.spine} is not in spines`);
      if (seen.has(uplink.spine)) problems.push(`${at}: spine ${uplink.spine} appears twice for this leaf (use ports)`);
      seen.add(uplink.spine);
      if (!Number.isInteger(uplink.ports) || uplink.ports < 1)
        problems.push(`${at}: ports must be a positive integer, got ${uplink.ports}`);
      if (!(uplink.portGbps > 0) || !Number.isFinite(uplink.portGbps))
        problems.push(`${at}: portGbps must be positive, got ${uplink.portGbps}`);
      for (const port of uplink.failedPorts ?? []) {
        if (!Number.isInteger(port) || port < 0 || port >= uplink.ports)
          problems.push(`${at}: failed port ${port} is not in 0..${uplink.ports - 1}`);
      }
    }
  }
  return problems;
}

/** Builds the planner's fabric; throws FabricSpecError listing every problem. */
export function buildFabric(spec: FabricSpec): Fabric {
  const problems = fabricSpecProblems(spec);
  if (problems.length > 0) throw new FabricSpecError(problems);
  const spineIndex = new Map(spec.spines.map((s, i) => [s, i]));
  const leafIndex = new Map(spec.leaves.map((l, i) => [l.name, i]));
  const capacity: number[] = [];
  const names: string[] = [];
  const up = spec.leaves.map(() => spec.spines.map((): number[] => []));
  const down = spec.spines.map(() => spec.leaves.map((): number[] => []));
  for (const [li, leaf] of spec.leaves.entries()) {
    for (const uplink of leaf.uplinks) {
      const si = spineIndex.get(uplink.spine)!;
      const failed = new Set(uplink.failedPorts ?? []);
      for (let p = 0; p < uplink.ports; p++) {
        const gbps = failed.has(p) ? 0 : uplink.portGbps;
        up[li]![si]!.push(capacity.length);
        capacity.push(gbps);
        names.push(`${leaf.name}>${uplink.spine}#${p}`);
        down[si]![li]!.push(capacity.length);
        capacity.push(gbps);
        names.push(`${uplink.spine}>${leaf.name}#${p}`);
      }
    }
  }
  return {
    leaves: spec.leaves.map((l) => l.name),
    spines: [...spec.spines],
    leafIndex,
    capacityGbps: Float64Array.from(capacity),
    up,
    down,
    linkNames: names,
  };
}

/** A cable: one port between a leaf and a spine. */
export interface CableRef {
  leaf: string;
  spine: string;
  port: number;
}

/** The spec with one more cable down (both directions); throws when the cable does not exist. */
export function withFailedCable(spec: FabricSpec, cable: CableRef): FabricSpec {
  let found = false;
  const leaves = spec.leaves.map((leaf) => {
    if (leaf.name !== cable.leaf) return leaf;
    return {
      ...leaf,
      uplinks: leaf.uplinks.map((u) => {
        if (u.spine !== cable.spine || cable.port < 0 || cable.port >= u.ports) return u;
        found = true;
        return { ...u, failedPorts: [...new Set([...(u.failedPorts ?? []), cable.port])].sort((a, b) => a - b) };
      }),
    };
  });
  if (!found) throw new FabricSpecError([`no cable ${cable.leaf}>${cable.spine}#${cable.port}`]);
  return { spines: spec.spines, leaves };
}

/**
 * A uniform two-tier fabric: `leaves` leaves, `spines` spines, `portsPerSpine` ports from every leaf to every spine.
 */
export function uniformFabricSpec(options: {
  leaves: number;
  spines: number;
  portsPerSpine: number;
  portGbps: number;
  leafPrefix?: string;
  spinePrefix?: string;
}): FabricSpec {
  const leafPrefix = options.leafPrefix ?? "leaf";
  const spinePrefix = options.spinePrefix ?? "spine";
  const spines = Array.from({ length: options.spines }, (_, i) => `${spinePrefix}-${i}`);
  return {
    spines,
    leaves: Array.from({ length: options.leaves }, (_, i) => ({
      name: `${leafPrefix}-${i}`,
      uplinks: spines.map((spine) => ({ spine, ports: options.portsPerSpine, portGbps: options.portGbps })),
    })),
  };
}
