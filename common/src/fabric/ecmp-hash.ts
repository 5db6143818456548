/**
 * How a leaf-spine fabric's ECMP hashing turns a RoCEv2 packet's UDP source port into a path (pure, shared by the
 * operator's traffic planner, which picks a source port per QP to land on the planned spine, and the agent's
 * simulated fabric, which routes by the port it is given and nothing else).
 *
 * RoCEv2 fixes the destination UDP port (4791) and lets the sender choose the source port per QP; switches hash
 * the 5-tuple to pick among equal-cost next hops. The model: the source leaf hashes onto one of its live uplink
 * ports whose spine still reaches the destination leaf (routing withdraws the others); that spine hashes again
 * onto one of its live ports down to the destination leaf. Both hashes are FNV-1a over the tuple, salted by the
 * hashing switch, so they are independent. A real switch's hash (vendor, seed) differs; a deployment would put its
 * own here, the planner's search for a port does not depend on which hash it is.
 */

export interface FabricCables {
  spines: readonly string[];
  leaves: readonly {
    name: string;
    uplinks: readonly { spine: string; ports: number; failedPorts?: readonly number[] }[];
  }[];
}

export interface HashedPath {
  spine: string;
  /** Port index among the source leaf's cables to the spine. */
  uplinkPort: number;
  /** Port index among the spine's cables to the destination leaf. */
  downlinkPort: number;
}

/** What ECMP hashes besides the source port (destination UDP port and protocol are fixed for RoCEv2). */
export interface FlowTuple {
  srcNode: string;
  dstNode: string;
}

/** The dynamic port range RoCEv2 stacks draw QP source ports from. */
export const SOURCE_PORT_MIN = 49152;
export const SOURCE_PORT_MAX = 65535;

function fnv1a(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  // Final avalanche: FNV's low bits are weak, and the choice is taken modulo a small count.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}

function livePorts(fabric: FabricCables, leaf: string, spine: string): number[] {
  const uplink = fabric.leaves.find((l) => l.name === leaf)?.uplinks.find((u) => u.spine === spine);
  if (!uplink) return [];
  const failed = new Set(uplink.failedPorts ?? []);
  return Array.from({ length: uplink.ports }, (_, p) => p).filter((p) => !failed.has(p));
}

/** The source leaf's equal-cost choices toward the destination leaf, in spine order then port order. */
export function uplinkChoices(
  fabric: FabricCables,
  srcLeaf: string,
  dstLeaf: string,
): { spine: string; port: number }[] {
  const out: { spine: string; port: number }[] = [];
  for (const spine of fabric.spines) {
    if (livePorts(fabric, dstLeaf, spine).length === 0) continue;
    for (const port of livePorts(fabric, srcLeaf, spine)) out.push({ spine, port });
  }
  return out;
}

/** The path a packet with this source port takes; undefined when no spine connects the two leaves. */
export function hashedPath(
  fabric: FabricCables,
  srcLeaf: string,
  dstLeaf: string,
  tuple: FlowTuple,
  sourcePort: number,
): HashedPath | undefined {
  const ups = uplinkChoices(fabric, srcLeaf, dstLeaf);
  if (ups.length === 0) return undefined;
  const key = `${tuple.srcNode}|${tuple.dstNode}|${sourcePort}`;
  const up = ups[fnv1a(`${srcLeaf}|${key}`) % ups.length]!;
  const downs = livePorts(fabric, dstLeaf, up.spine);
  return { spine: up.spine, uplinkPort: up.port, downlinkPort: downs[fnv1a(`${up.spine}|${key}`) % downs.length]! };
}

/**
 * A source port (not in `taken`) that hashes onto `path`, searched deterministically from a start derived from
 * `seed`; undefined when the path is not a live equal-cost path or no port in the range lands on it.
 */
export function sourcePortFor(
  fabric: FabricCables,
  srcLeaf: string,
  dstLeaf: string,
  tuple: FlowTuple,
  path: HashedPath,
  seed: string,
  taken: ReadonlySet<number> = new Set(),
): number | undefined {
  const live =
    uplinkChoices(fabric, srcLeaf, dstLeaf).some((u) => u.spine === path.spine && u.port === path.uplinkPort) &&
    livePorts(fabric, dstLeaf, path.spine).includes(path.downlinkPort);
  if (!live) return undefined;
  const span = SOURCE_PORT_MAX - SOURCE_PORT_MIN + 1;
  const start = fnv1a(seed) % span;
  for (let k = 0; k < span; k++) {
    const port = SOURCE_PORT_MIN + ((start + k) % span);
    if (taken.has(port)) continue;
    const got = hashedPath(fabric, srcLeaf, dstLeaf, tuple, port);
    if (!got) return undefined;
    if (got.spine === path.spine && got.uplinkPort === path.uplinkPort && got.downlinkPort === path.downlinkPort)
      return port;
  }
  return undefined;
}
