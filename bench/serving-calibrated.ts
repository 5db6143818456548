/**
 * What the calibration changed in the serving benchmark (`npm run bench -- serving-calibrated`): the DistServe
 * planner's disaggregated-vs-colocated verdict for every scenario of bench/serving.ts on `GPUFLEET_BENCH_GPUS`
 * (default H100-80GB, the GPU whose defaults the calibration replaced), with the calibrated latency model, against
 * the same scenario's row in bench/results/serving-before-calibration.json (bench/results/serving.json as committed
 * in b2e943c, the model before the calibration; serving.json itself is now regenerated with the calibrated model):
 * named baseline `before`. Within the run, the ratio is disaggregated ÷ best colocated (vLLM or Sarathi), both
 * planned by the same simulator. The exhaustive search and the DistServe-sized vLLM column of bench/serving.ts are
 * left out (hours on this machine's two shared cores); the planner's own alternatives are the ones compared.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { latencyCoefficients } from "../common/src/models/latency.js";
import {
  MODEL_SHAPES,
  planServing,
  type KnownModel,
  type ServingPlanInput,
  type ServingWorkload,
} from "../operator/src/serving/index.js";
import { loadTraceFile } from "../operator/src/serving/trace-file.js";
import { SLOS, cluster, type ServingScenarioResult, type SloScale, type Workload } from "./serving.js";

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");

interface Row {
  model: string;
  gpu: string;
  workload: Workload;
  sloScale: SloScale;
  gpus: number;
  disaggGoodputPerGpu: number;
  colocatedGoodputPerGpu: number;
  ratioVsColocated: number | null;
  verdict: string;
  disagg?: string;
  colocated?: string;
  plannerMs: number;
  before?: {
    disaggGoodputPerGpu: number;
    colocatedGoodputPerGpu: number;
    ratioVsColocated: number | null;
    verdict: string;
    disagg?: string;
    colocated?: string;
  };
  note?: string;
}

const verdictOf = (disagg: number, colocated: number): string =>
  disagg === 0 && colocated === 0
    ? "no plan"
    : disagg > colocated * 1.1
      ? "disaggregated"
      : colocated > disagg * 1.1
        ? "colocated"
        : "within 10%";

export async function run(): Promise<void> {
  const gpus = (process.env.GPUFLEET_BENCH_GPUS ?? "H100-80GB").split(",");
  const trace = loadTraceFile();
  const before = (
    JSON.parse(readFileSync(join(resultsDir, "serving-before-calibration.json"), "utf8")) as {
      scenarios: ServingScenarioResult[];
    }
  ).scenarios;
  const workloadOf = (w: Workload, rate: number): ServingWorkload =>
    w === "chatbot"
      ? { arrivalRatePerSec: rate, lengths: { trace }, arrivals: "trace" }
      : { arrivalRatePerSec: rate, lengths: w };
  const models: KnownModel[] = ["OPT-13B", "OPT-66B", "OPT-175B", "Llama-3-8B", "Llama-3-70B"];
  const gpusFor = (m: KnownModel): number => (m === "OPT-175B" ? 64 : m === "OPT-66B" || m === "Llama-3-70B" ? 32 : 8);
  const cases: { workload: Workload; sloScale: SloScale }[] = [
    { workload: "chatbot", sloScale: { ttft: 1, tpot: 1 } },
    { workload: "chatbot", sloScale: { ttft: 0.5, tpot: 1 } },
    { workload: "code-completion", sloScale: { ttft: 1, tpot: 1 } },
    { workload: "summarization", sloScale: { ttft: 1, tpot: 1 } },
  ];
  const rows: Row[] = [];
  for (const gpu of gpus) {
    for (const model of models) {
      for (const { workload, sloScale } of cases) {
        const base = SLOS[workload](model);
        const slo = { ttftMs: base.ttftMs * sloScale.ttft, tpotMs: base.tpotMs * sloScale.tpot, attainmentPercent: 90 };
        const input: ServingPlanInput = {
          model: MODEL_SHAPES[model],
          slo,
          workload: workloadOf(workload, 1),
          mode: "auto",
          nodes: cluster(gpu, gpusFor(model) / 8),
          options: { requestsPerInstance: 150 },
        };
        const t0 = performance.now();
        const plan = planServing(input);
        const row: Row = {
          model,
          gpu,
          workload,
          sloScale,
          gpus: gpusFor(model),
          disaggGoodputPerGpu: 0,
          colocatedGoodputPerGpu: 0,
          ratioVsColocated: null,
          verdict: "no plan",
          plannerMs: performance.now() - t0,
        };
        if (plan.ok) {
          const { disaggregated: d, vllm, chunked } = plan.alternatives;
          row.disaggGoodputPerGpu = d?.goodputPerGpu ?? 0;
          row.colocatedGoodputPerGpu = Math.max(vllm?.goodputPerGpu ?? 0, chunked?.goodputPerGpu ?? 0);
          row.ratioVsColocated =
            row.colocatedGoodputPerGpu > 0 ? row.disaggGoodputPerGpu / row.colocatedGoodputPerGpu : null;
          if (d)
            row.disagg = `P TP${d.prefill.tp}×PP${d.prefill.pp}×${d.unit.prefill}, D TP${d.decode.tp}×PP${d.decode.pp}×${d.unit.decode} (${d.affinity})`;
          if (plan.colocated) row.colocated = `${plan.colocated.policy} TP${plan.colocated.tp}×PP${plan.colocated.pp}`;
          row.verdict = verdictOf(row.disaggGoodputPerGpu, row.colocatedGoodputPerGpu);
        } else row.note = `${plan.reason}: ${plan.message}`;
        const old = before.find(
          (b) =>
            b.model === model &&
            b.gpu === gpu &&
            b.workload === workload &&
            b.sloScale.ttft === sloScale.ttft &&
            b.sloScale.tpot === sloScale.tpot,
        );
        if (old) {
          row.before = {
            disaggGoodputPerGpu: old.disaggGoodputPerGpu,
            colocatedGoodputPerGpu: old.colocatedGoodputPerGpu,
            ratioVsColocated: old.ratioVsColocated,
            verdict: verdictOf(old.disaggGoodputPerGpu, old.colocatedGoodputPerGpu),
            disagg: old.prefill ? `P ${old.prefill}, D ${old.decode} (${old.affinity})` : undefined,
            colocated: old.colocated,
          };
        }
        rows.push(row);
        console.log(
          `${model} ${gpu} ${workload} ${sloScale.ttft}/${sloScale.tpot}: disagg ${row.disaggGoodputPerGpu.toFixed(3)} coloc ${row.colocatedGoodputPerGpu.toFixed(3)} → ${row.verdict} (before: ${row.before?.verdict ?? "–"}) ${row.plannerMs.toFixed(0)} ms`,
        );
      }
    }
  }
  const coefficients = Object.fromEntries(gpus.map((g) => [g, latencyCoefficients(g)]));
  writeFileSync(
    join(resultsDir, "serving-calibrated.json"),
    `${JSON.stringify({ baseline: "before = bench/results/serving-before-calibration.json (latency model before the calibration)", gpus, coefficients, rows }, null, 2)}\n`,
  );
  writeFileSync(join(resultsDir, "serving-calibrated.md"), markdown(rows));
}

function markdown(rows: readonly Row[]): string {
  const f = (x: number | null | undefined, d = 3) => (x === null || x === undefined ? "–" : x.toFixed(d));
  const changed = rows.filter((r) => r.before && r.before.verdict !== r.verdict);
  return [
    "# Serving benchmark with the calibrated latency model",
    "",
    'Generated by `npm run bench -- serving-calibrated` (bench/serving-calibrated.ts). Goodput per GPU (req/s/GPU, simulated) of the planner\'s best disaggregated plan and best colocated plan (vLLM or Sarathi), each scenario of bench/serving.ts, calibrated model (docs/latency-model.md). `before` = the same scenario in bench/results/serving-before-calibration.json (serving.json of b2e943c), the model before the calibration. Verdict: the side ahead by more than 10%, else "within 10%".',
    "",
    `Verdicts changed: ${changed.length} of ${rows.filter((r) => r.before).length}.`,
    "",
    "| model | GPU | workload | SLO scale | disagg/GPU | colocated/GPU | disagg ÷ colocated | verdict | before: disagg/GPU | before: colocated/GPU | before: ÷ | before: verdict | disagg plan (before) | colocated plan (before) |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.model} | ${r.gpu} | ${r.workload} | ${r.sloScale.ttft}/${r.sloScale.tpot} | ${f(r.disaggGoodputPerGpu)} | ${f(r.colocatedGoodputPerGpu)} | ${f(r.ratioVsColocated, 2)} | ${r.verdict}${r.before && r.before.verdict !== r.verdict ? " (changed)" : ""} | ${f(r.before?.disaggGoodputPerGpu)} | ${f(r.before?.colocatedGoodputPerGpu)} | ${f(r.before?.ratioVsColocated, 2)} | ${r.before?.verdict ?? "–"} | ${r.disagg ?? r.note ?? "–"} (${r.before?.disagg ?? "–"}) | ${r.colocated ?? "–"} (${r.before?.colocated ?? "–"}) |`,
    ),
    "",
  ].join("\n");
}
