/** Exhaustive optimum of the one-QP-per-connection path problem, for checking the planner on small fabrics. */
import type { Fabric } from "./fabric.js";
import type { Connection } from "./flows.js";

export function bruteForceMaxLoad(
  fabric: Fabric,
  nodeLeaf: ReadonlyMap<string, string>,
  connections: readonly Connection[],
): number {
  const inter = connections.filter((c) => nodeLeaf.get(c.srcNode) !== nodeLeaf.get(c.dstNode));
  const options = inter.map((c) => {
    const a = fabric.leafIndex.get(nodeLeaf.get(c.srcNode)!)!;
    const b = fabric.leafIndex.get(nodeLeaf.get(c.dstNode)!)!;
    const paths: [number, number][] = [];
    for (let s = 0; s < fabric.spines.length; s++) {
      for (const up of fabric.up[a]![s]!)
        for (const down of fabric.down[s]![b]!)
          if (fabric.capacityGbps[up]! > 0 && fabric.capacityGbps[down]! > 0) paths.push([up, down]);
    }
    return paths;
  });
  const loads = new Float64Array(fabric.capacityGbps.length);
  let best = Number.POSITIVE_INFINITY;
  // Depth-first over every combination, pruning a branch once its max load already reaches the best found.
  const visit = (i: number, maxSoFar: number): void => {
    if (maxSoFar >= best - 1e-12) return;
    if (i === inter.length) {
      best = maxSoFar;
      return;
    }
    const gbps = inter[i]!.demandGbps;
    for (const [up, down] of options[i]!) {
      loads[up]! += gbps / fabric.capacityGbps[up]!;
      loads[down]! += gbps / fabric.capacityGbps[down]!;
      visit(i + 1, Math.max(maxSoFar, loads[up]!, loads[down]!));
      loads[up]! -= gbps / fabric.capacityGbps[up]!;
      loads[down]! -= gbps / fabric.capacityGbps[down]!;
    }
  };
  visit(0, 0);
  return best;
}
