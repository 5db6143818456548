/**
 * Link loads a plan puts on the fabric, and what they do to a connection (pure). A link at load L > 1 gives each
 * flow on it 1/L of its demand (fair share of an oversubscribed link); a connection striped evenly over its QPs
 * runs at the pace of its slowest QP, so its slowdown is the largest load on any link of any of its QPs, at least 1.
 */
import type { Fabric } from "./fabric.js";
import type { Connection } from "./flows.js";
import type { TrafficPlan } from "./plan.js";

/** Per inter-leaf connection id of a plan: the link ids of every QP, [up0, down0, up1, down1, …]. */
export function planLinks(fabric: Fabric, plan: TrafficPlan): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const c of plan.connections) {
    const src = fabric.leafIndex.get(c.srcLeaf)!;
    const dst = fabric.leafIndex.get(c.dstLeaf)!;
    const links: number[] = [];
    for (const p of c.paths) {
      const s = fabric.spines.indexOf(p.spine);
      links.push(fabric.up[src]![s]![p.uplinkPort]!, fabric.down[s]![dst]![p.downlinkPort]!);
    }
    out.set(c.id, links);
  }
  return out;
}

/** Loads (demand ÷ capacity) of every link, recomputed from the connections and their QP links. */
export function linkLoads(
  fabric: Fabric,
  connections: readonly Connection[],
  linksOf: ReadonlyMap<string, readonly number[]>,
): Float64Array {
  const loads = new Float64Array(fabric.capacityGbps.length);
  for (const c of connections) {
    const links = linksOf.get(c.id);
    if (links === undefined) continue;
    const share = c.demandGbps / (links.length / 2);
    for (const id of links) loads[id]! += share / fabric.capacityGbps[id]!;
  }
  return loads;
}

/** How many times slower than its demand a connection runs: max(1, the largest load on its QPs' links). */
export function connectionSlowdown(loads: Float64Array, links: readonly number[] | undefined): number {
  let worst = 1;
  for (const id of links ?? []) worst = Math.max(worst, loads[id]!);
  return worst;
}
