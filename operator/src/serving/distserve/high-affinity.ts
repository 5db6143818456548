/**
 * DistServe Algorithm 1, high node-affinity (§4.1): prefill and decode configurations are chosen independently,
 * each phase simulated alone, and paired into units whose KV crosses the scale-out NICs; then a local search on
 * the end-to-end measurement refines the best unit.
 *
 * Algorithm 1 ranks each phase's configurations by goodput per GPU measured on one instance alone. That ranking
 * misses two things: a pooled group of small instances absorbs bursts better than one instance (so the runner-up
 * can win once replicated), and the two winners together may not fit the GPUs there are. So the top
 * PHASE_FINALISTS of each phase are kept, every pair that fits the budget is balanced into a unit, and the best
 * HIGH_AFFINITY_MEASURED units by estimate are measured end to end.
 */
import {
  type Config,
  type Context,
  type DisaggShape,
  type Measured,
  type Phase,
  type SearchSpace,
  nicKvGBps,
  sortByBound,
} from "./context.js";
import type { MeasuredUnits, PhaseGoodputs } from "./measurements.js";

const MAX_UNIT_INSTANCES = 8;
/** Configurations per phase carried from the one-instance phase search into unit building. */
const PHASE_FINALISTS = 2;
/** High-affinity units measured end to end (best estimates first). */
const HIGH_AFFINITY_MEASURED = 2;
/** End-to-end measurements the local search around the best high-affinity unit may spend. */
const CLIMB_MEASUREMENTS = 16;

/** The high-affinity units to measure end to end, best estimate first, and a note on the KV stream of the first. */
export function highAffinityUnits(
  ctx: Context,
  space: SearchSpace,
  g: PhaseGoodputs,
): { shapes: DisaggShape[]; note?: string } {
  // Finalists are drawn from the configurations that can share a unit within the budget with at least the
  // smallest configuration of the other phase.
  const minGpus = (cs: readonly Config[]) => cs.reduce((m, c) => Math.min(m, c.gpus), Infinity);
  const pairable = (cs: readonly Config[], other: readonly Config[]) =>
    cs.filter((c) => c.gpus + minGpus(other) <= space.budget);
  const prefillPool = pairable(space.configs.prefill, space.configs.serving);
  const decodePool = pairable(space.configs.serving, space.configs.prefill);
  const pairsOf = (keep: number) => {
    const prefills = topPhases(prefillPool, g.prefillCap, g.prefill, keep);
    // No prefill configuration meets its SLO alone: there is no pair to make, so the decode searches are not run.
    if (prefills.length === 0) return [];
    return highPairs(ctx, space.budget, prefills, topPhases(decodePool, g.decodeCap, g.decodeNic, keep));
  };
  let high = pairsOf(PHASE_FINALISTS);
  // When fewer finalist pairs fit than are to be measured, every fitting pair is a candidate (phase searches
  // are memoised, so this costs only the configurations not searched yet).
  if (high.length < HIGH_AFFINITY_MEASURED) high = pairsOf(Infinity);
  const first = high[0];
  let note: string | undefined;
  if (first) {
    const d = first.decode;
    const kvStreamGBps = (d.goodput * ctx.sample.meanPromptTokens * ctx.model.kvBytesPerToken) / 1e9;
    note = `KV stream into one decode instance at its goodput: ${kvStreamGBps.toFixed(2)} GB/s over ${nicKvGBps(ctx, d.config.gpus).toFixed(1)} GB/s of NIC`;
  }
  return { shapes: high.slice(0, HIGH_AFFINITY_MEASURED), note };
}

/**
 * Local search on the measured objective from the best high-affinity unit measured so far: the phase-alone
 * estimates rank units only roughly (each phase meets its SLO alone; together the misses add and the KV stream
 * and burst shapes interact), so neighbouring units (one instance more or fewer on a side, or a side's TP or PP
 * halved or doubled at about the same GPUs) are measured end to end and the search moves to the best while it
 * improves, within CLIMB_MEASUREMENTS measurements. Every measurement lands in `units`.
 */
export function climbHighAffinity(ctx: Context, space: SearchSpace, g: PhaseGoodputs, units: MeasuredUnits): void {
  let current: Measured | undefined = units.all
    .filter((m) => m.shape.affinity === "high")
    .sort((x, y) => y.perGpu - x.perGpu)[0];
  let spent = 0;
  while (current && spent < CLIMB_MEASUREMENTS) {
    let next: Measured | undefined;
    for (const shape of neighbourUnits(current.shape, space.configs, space.budget, g.prefill, g.decodeNic, (c) =>
      nicKvGBps(ctx, c.gpus),
    )) {
      if (units.has(shape) || spent >= CLIMB_MEASUREMENTS) continue;
      spent++;
      const perGpu = units.measure(shape);
      if (perGpu > (next?.perGpu ?? current.perGpu) * 1.0001) next = { shape, perGpu };
    }
    if (!next) break;
    current = next;
  }
}

/** The best `keep` configurations of a phase by goodput per GPU, searching in order of capacity bound per GPU. */
function topPhases(
  cs: readonly Config[],
  cap: (c: Config) => number,
  goodput: (c: Config) => number,
  keep: number,
): Phase[] {
  const top: Phase[] = [];
  for (const c of sortByBound(cs, (x) => cap(x) / x.gpus)) {
    if (top.length >= keep && cap(c) / c.gpus <= (top[keep - 1] as Phase).perGpu) break;
    const g = goodput(c);
    if (g <= 0) continue;
    top.push({ config: c, goodput: g, perGpu: g / c.gpus });
    top.sort((x, y) => y.perGpu - x.perGpu || x.config.gpus - y.config.gpus);
    top.length = Math.min(top.length, keep);
  }
  return top;
}

/** Every prefill × decode pair that fits the budget, balanced into a unit, best estimate first. */
function highPairs(ctx: Context, budget: number, ps: readonly Phase[], ds: readonly Phase[]): DisaggShape[] {
  const out: DisaggShape[] = [];
  for (const p of ps) {
    for (const d of ds) {
      if (p.config.gpus + d.config.gpus > budget) continue;
      const unit = balancedUnit(p, d, budget);
      out.push({
        prefill: p,
        decode: d,
        affinity: "high",
        unitPrefill: unit.a,
        unitDecode: unit.b,
        estimatePerGpu: unit.perGpu,
        kvLinkGBps: nicKvGBps(ctx, d.config.gpus),
      });
    }
  }
  return out.sort((x, y) => y.estimatePerGpu - x.estimatePerGpu);
}

/**
 * Smallest-GPU integer mix (≤ MAX_UNIT_INSTANCES each, ≤ maxGpus unless 1+1 already exceeds it) maximising min(a·gp,
 * b·gd) per GPU.
 */
function balancedUnit(p: Phase, d: Phase, maxGpus: number): { a: number; b: number; perGpu: number } {
  let best = { a: 1, b: 1, perGpu: Math.min(p.goodput, d.goodput) / (p.config.gpus + d.config.gpus) };
  for (let a = 1; a <= MAX_UNIT_INSTANCES; a++) {
    for (let b = 1; b <= MAX_UNIT_INSTANCES; b++) {
      const gpus = a * p.config.gpus + b * d.config.gpus;
      if (gpus > maxGpus && !(a === 1 && b === 1)) continue;
      const perGpu = Math.min(a * p.goodput, b * d.goodput) / gpus;
      if (perGpu > best.perGpu * 1.0001) best = { a, b, perGpu };
    }
  }
  return best;
}

/**
 * High-affinity units next to `s`: one instance more or fewer on either side, or one side's configuration
 * with TP or PP halved or doubled at about the same GPUs. Only units within the budget whose configurations
 * meet the phase's SLO alone (goodput > 0) are returned.
 */
function neighbourUnits(
  s: DisaggShape,
  configs: { prefill: readonly Config[]; serving: readonly Config[] },
  budget: number,
  prefillGoodput: (c: Config) => number,
  decodeGoodput: (c: Config) => number,
  kvLinkGBps: (decode: Config) => number,
): DisaggShape[] {
  const out: DisaggShape[] = [];
  const phase = (c: Config, goodput: (c: Config) => number): Phase | undefined => {
    const g = goodput(c);
    return g > 0 ? { config: c, goodput: g, perGpu: g / c.gpus } : undefined;
  };
  const push = (p: Phase | undefined, a: number, d: Phase | undefined, b: number): void => {
    if (!p || !d || a < 1 || b < 1 || a > MAX_UNIT_INSTANCES || b > MAX_UNIT_INSTANCES) return;
    if (a * p.config.gpus + b * d.config.gpus > budget) return;
    out.push({
      prefill: p,
      decode: d,
      affinity: "high",
      unitPrefill: a,
      unitDecode: b,
      estimatePerGpu: 0,
      kvLinkGBps: kvLinkGBps(d.config),
    });
  };
  const a = s.unitPrefill;
  const b = s.unitDecode;
  push(s.prefill, a + 1, s.decode, b);
  push(s.prefill, a - 1, s.decode, b);
  push(s.prefill, a, s.decode, b + 1);
  push(s.prefill, a, s.decode, b - 1);
  const adjacent = (c: Config, pool: readonly Config[]): Config[] =>
    pool.filter(
      (x) =>
        (x.tp === c.tp && (x.pp === 2 * c.pp || 2 * x.pp === c.pp)) ||
        (x.pp === c.pp && (x.tp === 2 * c.tp || 2 * x.tp === c.tp)),
    );
  for (const c of adjacent(s.prefill.config, configs.prefill)) {
    push(phase(c, prefillGoodput), Math.max(1, Math.round((a * s.prefill.config.gpus) / c.gpus)), s.decode, b);
  }
  for (const c of adjacent(s.decode.config, configs.serving)) {
    push(s.prefill, a, phase(c, decodeGoodput), Math.max(1, Math.round((b * s.decode.config.gpus) / c.gpus)));
  }
  return out;
}
