/**
 * Close calls: the searches measure every candidate on one seeded workload sample, and a different sample moves a
 * goodput by a few percent (seed-to-seed coefficient of variation 1–7%, typically 2–3%, measured over seeds 1–5
 * on OPT-13B, Llama-3-8B and OPT-66B with the conversation trace and code completion). Two candidates closer than
 * that cannot be ranked on one sample, so the contenders — the disaggregated units and the best vLLM and
 * chunked-prefill plans — whose goodput per GPU is within CLOSE_FRACTION of the best of them are measured again
 * on further seeds, and ranked (and sized, and reported) by their mean; when that lowers the best, contenders it
 * brings within reach are measured too (a unit measured once never outranks settled ones unchallenged). "Close"
 * is 10%: the difference of two measurements with a 5% spread each has a spread of about 7%, so a gap under 10%
 * is within 1.5 of it.
 *
 * Deterministic: the further seeds are the input's seed + 1, + 2.
 */
import { betterOf, type ColocatedChoice } from "./colocated.js";
import { type Context, type Measured, withSeed } from "./context.js";
import { measureDisagg, searchColocated } from "./measurements.js";
import type { SearchResults } from "./ranking.js";

/** Contenders within this share of the best are a close call. */
export const CLOSE_FRACTION = 0.1;
/** Seeds a close contender is measured on, the input's own included. */
export const CLOSE_CALL_SEEDS = 3;

type Contender = { kind: "unit"; unit: Measured } | { kind: "colocated"; choice: ColocatedChoice };

/** The search results with every close contender's goodput replaced by its mean over CLOSE_CALL_SEEDS seeds. */
export function settleCloseCalls(ctx: Context, found: SearchResults): SearchResults {
  const contenders: Contender[] = [];
  // Units enter best first, while within reach of the best contender (see the loop).
  const units = [...found.units].sort((x, y) => y.perGpu - x.perGpu);
  let entered = Math.min(2, units.length);
  for (const unit of units.slice(0, entered)) contenders.push({ kind: "unit", unit });
  for (const choice of [found.colocated.byPolicy.vllm, found.colocated.byPolicy.chunked])
    if (choice) contenders.push({ kind: "colocated", choice });

  const others = Array.from({ length: CLOSE_CALL_SEEDS - 1 }, (_, k) => withSeed(ctx, ctx.seed + k + 1));
  const mean = (first: number, rest: (c: Context) => number): number =>
    (first + others.reduce((sum, c) => sum + rest(c), 0)) / CLOSE_CALL_SEEDS;
  const settledUnits = new Map<Measured, Measured>();
  const settledChoices = new Map<ColocatedChoice, ColocatedChoice>();
  const isSettled = (c: Contender): boolean =>
    c.kind === "unit" ? settledUnits.has(c.unit) : settledChoices.has(c.choice);
  const perGpuOf = (c: Contender): number =>
    c.kind === "unit" ? (settledUnits.get(c.unit) ?? c.unit).perGpu : (settledChoices.get(c.choice) ?? c.choice).perGpu;
  const settled: Contender[] = [];
  // Settling can lower the best, which brings others within reach: repeat until the close set stops growing.
  for (;;) {
    let top = Math.max(0, ...contenders.map(perGpuOf));
    for (; entered < units.length && units[entered]!.perGpu >= top * (1 - CLOSE_FRACTION); entered++) {
      contenders.push({ kind: "unit", unit: units[entered]! });
      top = Math.max(top, units[entered]!.perGpu);
    }
    const close = contenders.filter((c) => perGpuOf(c) >= top * (1 - CLOSE_FRACTION));
    const fresh = close.filter((c) => !isSettled(c));
    if (close.length < 2 || fresh.length === 0) break;
    for (const c of fresh) {
      if (c.kind === "unit") {
        settledUnits.set(c.unit, {
          shape: c.unit.shape,
          perGpu: mean(c.unit.perGpu, (other) => measureDisagg(other, c.unit.shape)),
        });
      } else {
        const goodput = mean(c.choice.goodput, (other) => searchColocated(other, c.choice.config, c.choice.policy));
        settledChoices.set(c.choice, { ...c.choice, goodput, perGpu: goodput / c.choice.config.gpus });
      }
      settled.push(c);
    }
  }
  if (settled.length === 0) return found;

  const settledAll = found.units.map((u) => settledUnits.get(u) ?? u);
  let bestUnit: Measured | undefined;
  for (const u of settledAll) if (!bestUnit || u.perGpu > bestUnit.perGpu) bestUnit = u;
  const settle = (choice: ColocatedChoice | undefined) => (choice ? (settledChoices.get(choice) ?? choice) : undefined);
  const byPolicy = { vllm: settle(found.colocated.byPolicy.vllm), chunked: settle(found.colocated.byPolicy.chunked) };
  const names = settled.map((c) => {
    if (c.kind === "colocated") return `${c.choice.policy} TP${c.choice.config.tp}×PP${c.choice.config.pp}`;
    const { prefill: p, decode: d, unitPrefill, unitDecode, affinity } = c.unit.shape;
    return `P TP${p.config.tp}×PP${p.config.pp}×${unitPrefill} D TP${d.config.tp}×PP${d.config.pp}×${unitDecode} (${affinity})`;
  });
  return {
    colocated: { byPolicy, best: betterOf(byPolicy) },
    units: settledAll,
    bestUnit,
    notes: [
      ...found.notes,
      `close call (within ${CLOSE_FRACTION * 100}% per GPU): ${names.join(", ")} measured on seeds ${ctx.seed}–${ctx.seed + CLOSE_CALL_SEEDS - 1} and ranked by the mean`,
    ],
  };
}
