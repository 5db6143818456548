/**
 * ECMP hashing, the baseline C4P is measured against (pure, seeded): every QP's 5-tuple hashes to one of the
 * source leaf's live uplink ports toward a spine that still reaches the destination leaf (routing withdraws the
 * others), and the spine hashes it again onto one of its live ports down to that leaf. A hash of uniformly
 * random source ports is a uniform choice; the seed stands for one draw of source ports.
 */
import { seededRandom } from "../../../common/src/random.js";
import type { Fabric } from "./fabric.js";
import type { Connection } from "./flows.js";

export interface EcmpResult {
  maxLinkLoad: number;
  loads: Float64Array;
  /** Per inter-leaf connection id: the up and down link ids of every QP, [up0, down0, up1, down1, …]. */
  linksOf: Map<string, number[]>;
}

export function ecmpLoads(
  fabric: Fabric,
  nodeLeaf: ReadonlyMap<string, string>,
  connections: readonly Connection[],
  qpsPerConnection: number,
  seed: number,
): EcmpResult {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const loads = new Float64Array(fabric.capacityGbps.length);
  const linksOf = new Map<string, number[]>();
  const live = (ids: readonly number[]): number[] => ids.filter((id) => fabric.capacityGbps[id]! > 0);
  for (const c of connections) {
    const src = fabric.leafIndex.get(nodeLeaf.get(c.srcNode) ?? "");
    const dst = fabric.leafIndex.get(nodeLeaf.get(c.dstNode) ?? "");
    if (src === undefined || dst === undefined)
      throw new RangeError(`connection ${c.id}: a node's leaf is not in the fabric`);
    if (src === dst) continue;
    const ups: { spine: number; id: number }[] = [];
    for (let s = 0; s < fabric.spines.length; s++) {
      if (live(fabric.down[s]![dst]!).length === 0) continue;
      for (const id of live(fabric.up[src]![s]!)) ups.push({ spine: s, id });
    }
    if (ups.length === 0) continue;
    const share = c.demandGbps / qpsPerConnection;
    const links: number[] = [];
    for (let q = 0; q < qpsPerConnection; q++) {
      const up = pick(ups);
      const down = pick(live(fabric.down[up.spine]![dst]!));
      loads[up.id]! += share / fabric.capacityGbps[up.id]!;
      loads[down]! += share / fabric.capacityGbps[down]!;
      links.push(up.id, down);
    }
    linksOf.set(c.id, links);
  }
  let maxLinkLoad = 0;
  for (const v of loads) maxLinkLoad = Math.max(maxLinkLoad, v);
  return { maxLinkLoad, loads, linksOf };
}
