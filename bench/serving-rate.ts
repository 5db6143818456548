/**
 * Serving rate sweep (`npm run bench -- serving-rate`): SLO attainment vs request rate per GPU for the best plan of
 * each kind the DistServe planner reports (disaggregated, vLLM-style colocated, Sarathi-style chunked prefill),
 * DistServe's Fig. 8 style. bench/serving.ts reports only the end point of each curve (goodput: the highest rate
 * meeting the attainment target); this bench draws the curves, so one sees how sharply each kind falls off.
 *
 * Same simulator, sample and settings as the planner: every point is one run of the planner's own seeded
 * simulator (operator/src/serving/distserve/measurements.ts builds the configs, simulator.ts runs them) on the
 * unit the planner measured for that plan: a disaggregated plan's unit (its prefill and decode instances), a
 * colocated plan's node-filling pool (measurements.ts poolSize). The rate offered to the unit is the rate per GPU
 * times its GPUs.
 *
 * Baseline (named, same run): `colocated` = the better of the vLLM and chunked plans at the attainment target.
 * `sustainedRatePerGpu` is found as the planner finds goodput (bisection on the rate, capped by the analytic
 * capacity bound, goodput.ts maxRateMeeting) on the planner's first seed; the planner's own figure can be a
 * 3-seed mean where its call was close (close-calls.ts), so both are written.
 *
 * Past the capacity bound a finite simulated run can still look fine (the queue has not yet grown enough), which is
 * why the planner never counts a rate above it: such points are marked `aboveCapacityBound`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { instanceLatencyModel, instanceMemory, latencyCoefficients } from "../common/src/models/latency.js";
import { deriveModel } from "../common/src/models/model-shapes.js";
import {
  type Config,
  type Context,
  type DisaggShape,
  makeContext,
  nicKvGBps,
  requestsFor,
  sampleFor,
} from "../operator/src/serving/distserve/context.js";
import { maxRateMeeting } from "../operator/src/serving/distserve/goodput.js";
import {
  colocatedCapacity,
  colocatedSimConfig,
  decodeCapacity,
  disaggConfig,
  disaggRequests,
  poolSize,
  prefillCapacity,
} from "../operator/src/serving/distserve/measurements.js";
import {
  type ColocatedPolicy,
  attainment,
  simulateColocated,
  simulateDisaggregated,
} from "../operator/src/serving/distserve/simulator.js";
import {
  MODEL_SHAPES,
  planServing,
  type ColocatedPlan,
  type DisaggregatedSummary,
  type KnownModel,
  type ServingPlanInput,
} from "../operator/src/serving/index.js";
import { loadTraceFile } from "../operator/src/serving/trace-file.js";
import { SLOS, cluster } from "./serving.js";

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");

export const PLAN_KINDS = ["disaggregated", "vllm", "chunked"] as const;
export type PlanKind = (typeof PLAN_KINDS)[number];

/**
 * Rates swept, as fractions of the highest sustained rate per GPU of any kind in the scenario: light load, the
 * knee of every curve, and past saturation of the best one.
 */
export const RATE_FRACTIONS = [0.1, 0.25, 0.5, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2] as const;

/** Rates per GPU of the sweep: `fractions` of `topRatePerGpu`, rounded to 4 significant digits. */
export function rateGrid(topRatePerGpu: number, fractions: readonly number[] = RATE_FRACTIONS): number[] {
  if (!(topRatePerGpu > 0 && Number.isFinite(topRatePerGpu)))
    throw new Error(`rate grid needs a positive top rate per GPU, got ${topRatePerGpu}`);
  return fractions.map((f) => Number((f * topRatePerGpu).toPrecision(4)));
}

/** Sustained rate of each kind ÷ the colocated baseline's (the better of vLLM and chunked); null without one. */
export function ratiosVsColocated(sustained: Readonly<Partial<Record<PlanKind, number>>>): {
  colocatedRatePerGpu: number;
  ratio: Record<PlanKind, number | null>;
} {
  const colocatedRatePerGpu = Math.max(sustained.vllm ?? 0, sustained.chunked ?? 0);
  const ratio = Object.fromEntries(
    PLAN_KINDS.map((k) => [
      k,
      colocatedRatePerGpu > 0 && sustained[k] !== undefined ? (sustained[k] as number) / colocatedRatePerGpu : null,
    ]),
  ) as Record<PlanKind, number | null>;
  return { colocatedRatePerGpu, ratio };
}

/** Lowest swept rate whose attainment is below `percent`, or null when every swept rate meets it. */
export function firstRateBelow(
  curve: readonly { ratePerGpu: number; attainmentPercent: number }[],
  percent: number,
): number | null {
  const below = curve.filter((p) => p.attainmentPercent < percent).map((p) => p.ratePerGpu);
  return below.length > 0 ? Math.min(...below) : null;
}

/** One line per scenario: who sustains most at the target, by how much, and where each curve falls under it. */
export function findings(scenarios: readonly ScenarioResult[], rows: readonly RateRow[]): string[] {
  return scenarios.map((s) => {
    if (s.plans.length === 0) return `- ${s.scenario}: no plan (${s.note ?? "planner failed"}).`;
    const best = [...s.plans].sort((a, b) => b.sustainedRatePerGpu - a.sustainedRatePerGpu)[0] as PlanCurve;
    const disagg = s.plans.find((p) => p.planKind === "disaggregated");
    const verdict = disagg
      ? `disaggregated sustains ${f(disagg.sustainedRatePerGpu)} req/s/GPU at ${s.slo.attainmentPercent}% vs ` +
        `colocated ${f(s.colocatedRatePerGpu)} (×${f(disagg.ratioVsColocated, 2)})`
      : "no disaggregated plan met the SLO";
    const falls = s.plans.map((p) => {
      const curve = rows.filter((r) => r.scenario === s.scenario && r.planKind === p.planKind);
      const under = firstRateBelow(curve, s.slo.attainmentPercent);
      const half = firstRateBelow(curve, 50);
      return (
        `${p.planKind} under ${s.slo.attainmentPercent}% from ${under ?? "none swept"}, ` +
        `under 50% from ${half ?? "none swept"}`
      );
    });
    return `- ${s.scenario}: ${verdict}; highest: ${best.planKind}. Swept: ${falls.join("; ")}.`;
  });
}

interface Scenario {
  name: string;
  model: KnownModel;
  gpu: string;
  gpus: number;
  why: string;
}

/**
 * Three chatbot scenarios of bench/serving.ts (same SLOs, cluster and trace): the Llama-3-8B on H100, where
 * colocated plans lead; Llama-3-70B on H100, a larger model on 32 GPUs where the planner's disaggregated plan
 * beats vLLM; and OPT-13B on A100, DistServe's own headline setting.
 */
export const SCENARIOS: readonly Scenario[] = [
  { name: "Llama-3-8B H100 chatbot", model: "Llama-3-8B", gpu: "H100-80GB", gpus: 8, why: "the common small model" },
  {
    name: "Llama-3-70B H100 chatbot",
    model: "Llama-3-70B",
    gpu: "H100-80GB",
    gpus: 32,
    why: "a larger model, 32 GPUs",
  },
  { name: "OPT-13B A100 chatbot", model: "OPT-13B", gpu: "A100-80GB", gpus: 8, why: "DistServe's headline setting" },
];

export interface RateRow {
  scenario: string;
  planKind: PlanKind;
  shape: string;
  ratePerGpu: number;
  attainmentPercent: number;
  aboveCapacityBound: boolean;
}

export interface PlanCurve {
  planKind: PlanKind;
  shape: string;
  /** GPUs of the simulated unit (disaggregated unit, or colocated pool). */
  unitGpus: number;
  sustainedRatePerGpu: number;
  plannerGoodputPerGpu: number;
  capacityRatePerGpu: number;
  ratioVsColocated: number | null;
}

/** One plan kind in simulation: attainment (0–1) at a unit rate, its capacity bound, GPUs. */
interface Simulated {
  shape: string;
  unitGpus: number;
  capacityRatePerSec: number;
  plannerGoodputPerGpu: number;
  attainmentAt(unitRatePerSec: number): number;
}

function configOf(ctx: Context, c: { tp: number; pp: number }): Config {
  const { coeffs } = ctx;
  return {
    tp: c.tp,
    pp: c.pp,
    gpus: c.tp * c.pp,
    kvCapacityTokens: instanceMemory(ctx.model, coeffs, c).kvCapacityTokens,
    latency: instanceLatencyModel(ctx.model, coeffs, c, {
      sameNode: c.tp * c.pp <= ctx.maxNodeGpus,
      nicGBpsPerGpu: ctx.nicGBpsPerGpu,
    }),
  };
}

/** The planner's disaggregated unit, built as measureDisaggregatedGoodputPerGpu (planner.ts) builds it. */
function simulatedDisagg(ctx: Context, d: DisaggregatedSummary): Simulated {
  const pc = configOf(ctx, d.prefill);
  const dc = configOf(ctx, d.decode);
  const phase = (c: Config) => ({ config: c, goodput: 1, perGpu: 1 / c.gpus });
  const low = d.affinity === "low";
  const shape: DisaggShape = {
    prefill: phase(pc),
    decode: phase(dc),
    affinity: d.affinity,
    unitPrefill: d.unit.prefill,
    unitDecode: d.unit.decode,
    estimatePerGpu: 0,
    kvLinkGBps: low ? Math.min(pc.tp, dc.tp) * pc.pp * ctx.coeffs.p2pNvlinkGBps : nicKvGBps(ctx, dc.gpus),
  };
  const sample = sampleFor(ctx, disaggRequests(ctx, shape, d.unit.prefill, d.unit.decode));
  const cfg = disaggConfig(ctx, shape, d.unit.prefill, d.unit.decode);
  return {
    shape: `P TP${pc.tp}×PP${pc.pp}×${d.unit.prefill}, D TP${dc.tp}×PP${dc.pp}×${d.unit.decode} (${d.affinity})`,
    unitGpus: d.unit.gpus,
    capacityRatePerSec: Math.min(d.unit.prefill * prefillCapacity(ctx, pc), d.unit.decode * decodeCapacity(ctx, dc)),
    plannerGoodputPerGpu: d.goodputPerGpu,
    attainmentAt: (rate) => attainment(simulateDisaggregated(sample, rate, cfg), ctx.slo),
  };
}

/** The planner's colocated plan on the node-filling pool its goodput search simulated (measurements.ts). */
function simulatedColocated(ctx: Context, c: ColocatedPlan, policy: ColocatedPolicy): Simulated {
  const config = configOf(ctx, c);
  const k = poolSize(ctx, config);
  const sample = sampleFor(ctx, requestsFor(ctx, k));
  const cfg = colocatedSimConfig(ctx, config, k, policy);
  return {
    shape: `TP${c.tp}×PP${c.pp} ×${k} (${policy})`,
    unitGpus: k * config.gpus,
    capacityRatePerSec: k * colocatedCapacity(ctx, config),
    plannerGoodputPerGpu: c.goodputPerGpu,
    attainmentAt: (rate) => attainment(simulateColocated(sample, rate, cfg), ctx.slo),
  };
}

export interface ScenarioResult {
  scenario: string;
  why: string;
  model: string;
  gpu: string;
  gpus: number;
  slo: { ttftMs: number; tpotMs: number; attainmentPercent: number };
  colocatedRatePerGpu: number;
  plans: PlanCurve[];
  note?: string;
}

function sweepScenario(
  s: Scenario,
  trace: ReturnType<typeof loadTraceFile>,
): { result: ScenarioResult; rows: RateRow[] } {
  const slo = { ...SLOS.chatbot(s.model), attainmentPercent: 90 };
  const input: ServingPlanInput = {
    model: MODEL_SHAPES[s.model],
    slo,
    workload: { arrivalRatePerSec: 1, lengths: { trace }, arrivals: "trace" },
    mode: "auto",
    nodes: cluster(s.gpu, s.gpus / 8),
    options: { requestsPerInstance: 150 }, // as bench/serving.ts
  };
  const plan = planServing(input);
  const base = { scenario: s.name, why: s.why, model: s.model, gpu: s.gpu, gpus: s.gpus, slo };
  if (!plan.ok) return { result: { ...base, colocatedRatePerGpu: 0, plans: [], note: plan.message }, rows: [] };
  const nodes = input.nodes.filter((n) => n.gpuModel === s.gpu);
  const ctx = makeContext(
    input,
    deriveModel(input.model),
    latencyCoefficients(s.gpu, input.coefficientOverrides),
    nodes,
  );
  const { disaggregated, vllm, chunked } = plan.alternatives;
  const sims: Partial<Record<PlanKind, Simulated>> = {};
  if (disaggregated) sims.disaggregated = simulatedDisagg(ctx, disaggregated);
  if (vllm) sims.vllm = simulatedColocated(ctx, vllm, "vllm");
  if (chunked) sims.chunked = simulatedColocated(ctx, chunked, "chunked");
  const sustained: Partial<Record<PlanKind, number>> = {};
  for (const kind of PLAN_KINDS) {
    const sim = sims[kind];
    if (!sim) continue;
    sustained[kind] =
      maxRateMeeting(sim.attainmentAt, { target: ctx.target, capacityRatePerSec: sim.capacityRatePerSec }) /
      sim.unitGpus;
  }
  const { colocatedRatePerGpu, ratio } = ratiosVsColocated(sustained);
  const top = Math.max(0, ...Object.values(sustained));
  if (top === 0) return { result: { ...base, colocatedRatePerGpu, plans: [], note: "no plan met the SLO" }, rows: [] };
  const grid = rateGrid(top);
  const rows: RateRow[] = [];
  const plans: PlanCurve[] = [];
  for (const kind of PLAN_KINDS) {
    const sim = sims[kind];
    if (!sim) continue;
    const capacityRatePerGpu = sim.capacityRatePerSec / sim.unitGpus;
    plans.push({
      planKind: kind,
      shape: sim.shape,
      unitGpus: sim.unitGpus,
      sustainedRatePerGpu: sustained[kind] ?? 0,
      plannerGoodputPerGpu: sim.plannerGoodputPerGpu,
      capacityRatePerGpu,
      ratioVsColocated: ratio[kind],
    });
    for (const ratePerGpu of grid) {
      rows.push({
        scenario: s.name,
        planKind: kind,
        shape: sim.shape,
        ratePerGpu,
        attainmentPercent: 100 * sim.attainmentAt(ratePerGpu * sim.unitGpus),
        aboveCapacityBound: ratePerGpu > capacityRatePerGpu,
      });
    }
  }
  return { result: { ...base, colocatedRatePerGpu, plans }, rows };
}

export async function run(): Promise<void> {
  const trace = loadTraceFile();
  const scenarios: ScenarioResult[] = [];
  const rows: RateRow[] = [];
  for (const s of SCENARIOS) {
    const t0 = performance.now();
    const { result, rows: r } = sweepScenario(s, trace);
    scenarios.push(result);
    rows.push(...r);
    const summary = result.plans
      .map((p) => `${p.planKind} ${p.sustainedRatePerGpu.toFixed(3)} (×${p.ratioVsColocated?.toFixed(2) ?? "n/a"})`)
      .join(", ");
    console.log(`${s.name}: ${summary || result.note} ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  mkdirSync(resultsDir, { recursive: true });
  const attribution =
    "chatbot workload: Azure LLM inference trace 2023 (conversation), Azure Public Dataset, CC-BY 4.0; Patel et al., Splitwise, ISCA 2024";
  writeFileSync(
    join(resultsDir, "serving-rate.json"),
    `${JSON.stringify({ attribution, baseline: "colocated", rateFractions: RATE_FRACTIONS, scenarios, rows }, null, 2)}\n`,
  );
  writeFileSync(join(resultsDir, "serving-rate.md"), markdown(scenarios, rows, attribution));
}

const f = (v: number | null | undefined, digits = 3): string =>
  v === null || v === undefined ? "–" : v.toFixed(digits);

function markdown(scenarios: readonly ScenarioResult[], rows: readonly RateRow[], attribution: string): string {
  const lines = [
    "# Serving rate sweep: SLO attainment vs rate per GPU, per plan kind",
    "",
    "Generated by `npm run bench -- serving-rate`; figure bench/results/figures/serving-rate.svg. " +
      `Attainment = share of requests meeting both TTFT and TPOT SLOs, simulated by the planner's own simulator. ${attribution}.`,
    "Plans = the planner's best plan of each kind by goodput per GPU (`alternatives`). Baseline: colocated = the " +
      "better of vLLM and chunked at the 90% target, same run. Sustained = highest rate per GPU meeting the target, " +
      "found as the planner finds goodput (seed 1, capped by the capacity bound); the planner's figure can be a 3-seed mean.",
    "",
    "## Sustained rate at the attainment target",
    "",
    "| scenario | TTFT/TPOT SLO (ms) | plan kind | shape | unit GPUs | sustained req/s/GPU | planner goodput/GPU | capacity bound/GPU | ÷ colocated |",
    "|---|---|---|---|---|---|---|---|---|",
    ...scenarios.flatMap((s) =>
      s.plans.length === 0
        ? [`| ${s.scenario} | ${s.slo.ttftMs}/${s.slo.tpotMs} | – | ${s.note ?? "no plan"} | | | | | |`]
        : s.plans.map(
            (p) =>
              `| ${s.scenario} | ${s.slo.ttftMs}/${s.slo.tpotMs} | ${p.planKind} | ${p.shape} | ${p.unitGpus} | ${f(p.sustainedRatePerGpu)} | ` +
              `${f(p.plannerGoodputPerGpu)} | ${f(p.capacityRatePerGpu)} | ${f(p.ratioVsColocated, 2)} |`,
          ),
    ),
    "",
    "## Attainment (%) by rate per GPU",
    "",
    "`*` = above that plan's capacity bound (a finite run can still look fine there; the planner never counts it).",
    "",
  ];
  for (const s of scenarios) {
    const mine = rows.filter((r) => r.scenario === s.scenario);
    const rates = [...new Set(mine.map((r) => r.ratePerGpu))];
    if (rates.length === 0) continue;
    lines.push(`### ${s.scenario}`, "", `| plan kind | ${rates.map((r) => String(r)).join(" | ")} |`);
    lines.push(`|---|${rates.map(() => "---").join("|")}|`);
    for (const p of s.plans) {
      const cells = rates.map((rate) => {
        const row = mine.find((r) => r.planKind === p.planKind && r.ratePerGpu === rate);
        return row ? `${row.attainmentPercent.toFixed(1)}${row.aboveCapacityBound ? "*" : ""}` : "–";
      });
      lines.push(`| ${p.planKind} | ${cells.join(" | ")} |`);
    }
    lines.push("");
  }
  lines.push("## What the curves show", "", ...findings(scenarios, rows), "");
  return lines.join("\n");
}
