/**
 * DistServe Algorithm 2, low node-affinity (§4.2): when the NICs cannot carry the KV stream, prefill and decode
 * instances share the same PP degree and stage s of both sits on one node, so KV moves over NVLink; a unit is `a`
 * prefill and `b` decode instances whose per-stage segments (a·TPp + b·TPd GPUs) fit one node.
 *
 * Candidates are searched in order of their capacity bound per GPU, and the search stops once a bound is no better
 * than the best estimate found (goodput never exceeds the bound).
 */
import type { Config, Context, DisaggShape, SearchSpace } from "./context.js";
import type { PhaseGoodputs } from "./measurements.js";

interface LowCandidate {
  pc: Config;
  dc: Config;
  a: number;
  b: number;
  gpus: number;
  bound: number;
}

/** The best low-affinity unit by its phase-alone estimate, or undefined when none fits or meets the SLOs. */
export function bestLowAffinityUnit(ctx: Context, space: SearchSpace, g: PhaseGoodputs): DisaggShape | undefined {
  const { configs, budget, maxFreeNode } = space;
  const low: LowCandidate[] = [];
  for (const pc of configs.prefill) {
    for (const dc of configs.serving) {
      if (dc.pp !== pc.pp) continue;
      for (let a = 1; a * pc.tp < maxFreeNode; a++) {
        for (let b = 1; a * pc.tp + b * dc.tp <= maxFreeNode; b++) {
          const gpus = pc.pp * (a * pc.tp + b * dc.tp);
          if (gpus > budget) continue;
          low.push({ pc, dc, a, b, gpus, bound: Math.min(a * g.prefillCap(pc), b * g.decodeCap(dc)) / gpus });
        }
      }
    }
  }
  low.sort((x, y) => y.bound - x.bound || x.gpus - y.gpus);
  let best: DisaggShape | undefined;
  for (const cand of low) {
    if (best && cand.bound <= best.estimatePerGpu) break;
    const gp = g.prefill(cand.pc);
    const gd = gp > 0 ? g.decodeNvlink(cand.dc) : 0;
    const est = Math.min(cand.a * gp, cand.b * gd) / cand.gpus;
    if (est > 0 && (!best || est > best.estimatePerGpu)) {
      best = {
        prefill: { config: cand.pc, goodput: gp, perGpu: gp / cand.pc.gpus },
        decode: { config: cand.dc, goodput: gd, perGpu: gd / cand.dc.gpus },
        affinity: "low",
        unitPrefill: cand.a,
        unitDecode: cand.b,
        estimatePerGpu: est,
        kvLinkGBps: Math.min(cand.pc.tp, cand.dc.tp) * cand.pc.pp * ctx.coeffs.p2pNvlinkGBps,
      };
    }
  }
  return best;
}
