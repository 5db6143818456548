/**
 * The ideal fluid multipath bound, solved exactly as a linear program by HiGHS (the `highs` package: the HiGHS
 * solver of the University of Edinburgh compiled to WebAssembly; dual simplex, an exact basic optimal solution).
 *
 *   minimise λ
 *   subject to  Σ_s x[k,s] = d_k                                   every commodity k = (source leaf, destination leaf)
 *               Σ_{k: src(k)=l} x[k,s] ≤ λ · up(l, s)               every leaf l and spine s with a live uplink
 *               Σ_{k: dst(k)=l} x[k,s] ≤ λ · down(s, l)             every spine s and leaf l with a live downlink
 *               x ≥ 0, x[k,s] only for spines live to both leaves of k
 *
 * up(l, s) and down(s, l) are the summed capacities of the live parallel ports: a fluid flow splits over ports as
 * freely as over spines, so grouping them loses nothing, and the bound is a lower bound on any plan's max port
 * load (a group's load is the mean of its ports'). The LP text (CPLEX LP format) is returned so any other solver
 * can recompute it.
 */
import highsImport from "highs";
import type { Fabric } from "../../operator/src/traffic/fabric.js";

export interface Commodity {
  srcLeaf: number;
  dstLeaf: number;
  demandGbps: number;
}

export interface IdealBound {
  maxLinkLoad: number;
  status: string;
  lp: string;
  solveMs: number;
}

// The package is CommonJS with ESM entry: its types describe module.exports.default, its ESM build exports the
// loader itself as default. Take whichever this runtime hands us.
type Loader = typeof highsImport.default;
const highsLoader: Loader = (typeof highsImport === "function" ? highsImport : highsImport.default) as Loader;
type Highs = Awaited<ReturnType<Loader>>;
let highs: Highs | undefined;

export async function idealMaxLinkLoad(fabric: Fabric, commodities: readonly Commodity[]): Promise<IdealBound> {
  highs ??= await highsLoader();
  const capacity = (ids: readonly number[]): number => ids.reduce((sum, id) => sum + fabric.capacityGbps[id]!, 0);
  const rows: string[] = [];
  const upTerms = new Map<string, string[]>();
  const downTerms = new Map<string, string[]>();
  for (const [k, c] of commodities.entries()) {
    const terms: string[] = [];
    for (let s = 0; s < fabric.spines.length; s++) {
      if (capacity(fabric.up[c.srcLeaf]![s]!) <= 0 || capacity(fabric.down[s]![c.dstLeaf]!) <= 0) continue;
      const x = `x${k}_${s}`;
      terms.push(x);
      push(upTerms, `${c.srcLeaf}_${s}`, x);
      push(downTerms, `${s}_${c.dstLeaf}`, x);
    }
    if (terms.length === 0)
      throw new Error(
        `commodity ${fabric.leaves[c.srcLeaf]} → ${fabric.leaves[c.dstLeaf]} has no live spine: the bound is infinite`,
      );
    rows.push(` d${k}: ${terms.join(" + ")} = ${c.demandGbps}`);
  }
  for (const [key, terms] of upTerms) {
    const [l, s] = key.split("_").map(Number) as [number, number];
    rows.push(` u${key}: ${terms.join(" + ")} - ${capacity(fabric.up[l]![s]!)} lam <= 0`);
  }
  for (const [key, terms] of downTerms) {
    const [s, l] = key.split("_").map(Number) as [number, number];
    rows.push(` v${key}: ${terms.join(" + ")} - ${capacity(fabric.down[s]![l]!)} lam <= 0`);
  }
  const lp = `Minimize\n obj: lam\nSubject To\n${rows.join("\n")}\nEnd\n`;
  const started = performance.now();
  const solution = highs.solve(lp, { solver: "simplex", presolve: "on" });
  const solveMs = performance.now() - started;
  if (solution.Status !== "Optimal") throw new Error(`HiGHS: ${solution.Status}`);
  return { maxLinkLoad: solution.ObjectiveValue, status: solution.Status, lp, solveMs };
}

function push(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
