/**
 * Serving benchmark (`npm run bench -- serving`): the DistServe planner against the best colocated plan (vLLM
 * prefill-first and Sarathi chunked prefill, each tuned over TP×PP) and against exhaustive search, all in the
 * same simulator and the same run, plus planner wall time.
 *
 * Workloads (DistServe §6.1): chatbot = the Azure LLM inference trace 2023, conversation service: request lengths
 * drawn over the whole trace, arrival gaps from a window of it, rescaled (DistServe used ShareGPT; Azure Public
 * Dataset, CC-BY 4.0, Patel et al., "Splitwise", ISCA 2024); code-completion and summarization are synthesized
 * (distributions in operator/src/serving/distserve/workload.ts).
 *
 * SLOs, checked against DistServe's artifact-evaluation plotting script (evaluation/ae-scripts/e2e/_plot.py of
 * the LLMServe/DistServe artifact, read in the public fork b21111314/DistServe; the paper's Table 1 itself was
 * not available to check): chatbot OPT-13B TTFT 0.25 s / TPOT 0.1 s, OPT-66B 0.4 s / 0.1 s, OPT-175B 4.0 s /
 * 0.2 s; code completion (HumanEval, OPT-66B) 0.125 s / 0.2 s; summarization (LongBench, OPT-66B) 15 s / 0.15 s;
 * 90% attainment. The OPT-66B chatbot pair differs from the 2.5 s / 0.15 s this file used before (written from
 * memory); we follow the script. DistServe gives code-completion and summarization SLOs for OPT-66B only; we
 * apply them to every model (an assumption). Llama-3-8B uses OPT-13B's chatbot SLOs and Llama-3-70B OPT-66B's.
 *
 * Tight TTFT: DistServe's SLO-scale experiments (Fig. 8 lower, Fig. 9) fix the rate and multiply both SLOs by a
 * scale from 1.6 down to 0.4; we add a chatbot row per model and GPU with the TTFT SLO ×0.5 and TPOT kept
 * (sloScale {ttft: 0.5, tpot: 1}), the "tight TTFT" case the issue names.
 *
 * Ratios: DistServe's headline (up to 7.4×) is against vLLM without chunked prefill, on vLLM instances of a
 * fixed size (the artifact's plot script counts 1 GPU for OPT-13B, 4 for OPT-66B, 8 for OPT-175B): that is
 * `ratioVsVllmDistServe`. `ratioVsVllm` lets vLLM pick its best TP×PP as well; `ratioVsColocated` is against
 * the better of vLLM and Sarathi-Serve, the strictest baseline. Both use the
 * planner's best disaggregated plan by goodput per GPU (`alternatives.disaggregated`, DistServe's objective).
 * The deployed plan at the benchmark's 1 req/s minimises GPUs instead and can be a smaller, less efficient unit;
 * `ratioVsExhaustiveDeployed` shows that gap.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ClusterNode,
  type DisaggregatedSummary,
  type KnownModel,
  type ServingPlanInput,
  type ServingWorkload,
  MODEL_SHAPES,
  measureDisaggregatedGoodputPerGpu,
  planServing,
} from "../operator/src/serving/index.js";
import { loadTraceFile } from "../operator/src/serving/trace-file.js";

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");

export type Workload = "chatbot" | "code-completion" | "summarization";

export const SLOS: Record<Workload, (model: KnownModel) => { ttftMs: number; tpotMs: number }> = {
  chatbot: (m) =>
    m === "OPT-13B" || m === "Llama-3-8B"
      ? { ttftMs: 250, tpotMs: 100 }
      : m === "OPT-175B"
        ? { ttftMs: 4000, tpotMs: 200 }
        : { ttftMs: 400, tpotMs: 100 },
  "code-completion": () => ({ ttftMs: 125, tpotMs: 200 }),
  summarization: () => ({ ttftMs: 15000, tpotMs: 150 }),
};

export interface SloScale {
  ttft: number;
  tpot: number;
}

export function cluster(gpuModel: string, nodes: number): ClusterNode[] {
  return Array.from({ length: nodes }, (_, i) => ({
    nodeName: `node-${String(i).padStart(4, "0")}`,
    gpuModel,
    gpuCount: 8,
    gpusFree: 8,
    nicType: "infiniband",
    nicBandwidthGbps: 200,
    nicCount: 8,
  }));
}

export interface ServingScenarioResult {
  model: string;
  gpu: string;
  workload: Workload;
  sloScale: SloScale;
  gpus: number;
  slo: { ttftMs: number; tpotMs: number; attainmentPercent: number };
  /** Planner's best disaggregated plan by goodput per GPU. */
  disaggGoodputPerGpu: number;
  /** Better of vLLM and Sarathi chunked prefill. */
  colocatedGoodputPerGpu: number;
  vllmGoodputPerGpu: number;
  chunkedGoodputPerGpu: number;
  /** vLLM with instances no bigger than DistServe's evaluation gave it (OPT-13B 1 GPU, OPT-66B 4, OPT-175B 8). */
  vllmDistServeGoodputPerGpu: number;
  vllmDistServeGpus: number;
  ratioVsVllmDistServe: number | null;
  ratioVsColocated: number | null;
  ratioVsVllm: number | null;
  exhaustiveGoodputPerGpu?: number;
  ratioVsExhaustive?: number | null;
  /** The plan deployed at 1 req/s within the exhaustive budget (fewest GPUs) ÷ the exhaustive optimum. */
  ratioVsExhaustiveDeployed?: number | null;
  exhaustiveShapes?: number;
  exhaustiveBest?: string;
  plannerMs: number;
  prefill?: string;
  decode?: string;
  affinity?: string | null;
  colocated?: string;
  vllm?: string;
  note?: string;
}

const fmtDisagg = (d: DisaggregatedSummary): string =>
  `P TP${d.prefill.tp}×PP${d.prefill.pp}×${d.unit.prefill}, D TP${d.decode.tp}×PP${d.decode.pp}×${d.unit.decode} (${d.affinity})`;

/**
 * Best goodput per GPU over every disaggregated shape on one node of `budget` GPUs: both affinities, every
 * prefill and decode TP×PP and replica count, each measured end to end by the planner's own simulator.
 */
function exhaustive(
  input: ServingPlanInput,
  gpu: string,
  budget: number,
): { best: number; shapes: number; label: string } {
  const configs: { tp: number; pp: number }[] = [];
  for (const tp of [1, 2, 4, 8]) for (const pp of [1, 2, 4, 8]) if (tp * pp <= budget) configs.push({ tp, pp });
  let best = 0;
  let label = "";
  let shapes = 0;
  for (const affinity of ["high", "low"] as const) {
    for (const p of configs) {
      for (const d of configs) {
        if (affinity === "low" && p.pp !== d.pp) continue;
        for (let n = 1; n * p.tp * p.pp + d.tp * d.pp <= budget; n++) {
          for (let m = 1; n * p.tp * p.pp + m * d.tp * d.pp <= budget; m++) {
            shapes++;
            const g = measureDisaggregatedGoodputPerGpu(input, gpu, {
              prefill: { ...p, replicas: n },
              decode: { ...d, replicas: m },
              affinity,
            });
            if (g > best) {
              best = g;
              label = `P TP${p.tp}×PP${p.pp}×${n}, D TP${d.tp}×PP${d.pp}×${m} (${affinity})`;
            }
          }
        }
      }
    }
  }
  return { best, shapes, label };
}

/** One-seed end-to-end goodput per GPU of a planned unit (0 when there is none), as `exhaustive` measures shapes. */
function unitGoodputPerGpu(input: ServingPlanInput, gpu: string, d: DisaggregatedSummary | null): number {
  if (!d) return 0;
  return measureDisaggregatedGoodputPerGpu(input, gpu, {
    prefill: { tp: d.prefill.tp, pp: d.prefill.pp, replicas: d.unit.prefill },
    decode: { tp: d.decode.tp, pp: d.decode.pp, replicas: d.unit.decode },
    affinity: d.affinity,
  });
}

export async function run(): Promise<void> {
  const trace = loadTraceFile();
  const workloadOf = (w: Workload, rate: number): ServingWorkload =>
    w === "chatbot"
      ? { arrivalRatePerSec: rate, lengths: { trace }, arrivals: "trace" }
      : { arrivalRatePerSec: rate, lengths: w };
  const scenarios: ServingScenarioResult[] = [];
  const models: KnownModel[] = ["OPT-13B", "OPT-66B", "OPT-175B", "Llama-3-8B", "Llama-3-70B"];
  const gpusFor = (m: KnownModel): number => (m === "OPT-175B" ? 64 : m === "OPT-66B" || m === "Llama-3-70B" ? 32 : 8);
  // Exhaustive search over one 8-GPU node: every model that fits, every workload on one GPU type each.
  const exhaustiveFor = new Set([
    "OPT-13B|A100-80GB|chatbot|1",
    "OPT-13B|A100-80GB|chatbot|0.5",
    "OPT-13B|A100-80GB|code-completion|1",
    "OPT-13B|A100-80GB|summarization|1",
    "Llama-3-8B|H100-80GB|chatbot|1",
    "Llama-3-8B|H100-80GB|chatbot|0.5",
    "Llama-3-8B|H100-80GB|code-completion|1",
    "Llama-3-8B|H100-80GB|summarization|1",
    "OPT-66B|H100-80GB|chatbot|1",
    "OPT-66B|H100-80GB|code-completion|1",
  ]);
  // GPUs per vLLM instance in DistServe's artifact (the _plot.py backends: OPT-13B 1, OPT-66B 4, OPT-175B 8);
  // the Llama models take their OPT counterpart's.
  const distServeVllmGpus = (m: KnownModel): number =>
    m === "OPT-13B" || m === "Llama-3-8B" ? 1 : m === "OPT-175B" ? 8 : 4;
  const cases: { workload: Workload; sloScale: SloScale }[] = [
    { workload: "chatbot", sloScale: { ttft: 1, tpot: 1 } },
    { workload: "chatbot", sloScale: { ttft: 0.5, tpot: 1 } },
    { workload: "code-completion", sloScale: { ttft: 1, tpot: 1 } },
    { workload: "summarization", sloScale: { ttft: 1, tpot: 1 } },
  ];

  for (const model of models) {
    for (const gpu of ["A100-80GB", "H100-80GB"]) {
      for (const { workload, sloScale } of cases) {
        const gpus = gpusFor(model);
        const base = SLOS[workload](model);
        const slo = { ttftMs: base.ttftMs * sloScale.ttft, tpotMs: base.tpotMs * sloScale.tpot, attainmentPercent: 90 };
        const input: ServingPlanInput = {
          model: MODEL_SHAPES[model],
          slo,
          workload: workloadOf(workload, 1),
          mode: "auto",
          nodes: cluster(gpu, gpus / 8),
          options: { requestsPerInstance: 150 },
        };
        const t0 = performance.now();
        const plan = planServing(input);
        const plannerMs = performance.now() - t0;
        const row: ServingScenarioResult = {
          model,
          gpu,
          workload,
          sloScale,
          gpus,
          slo,
          plannerMs,
          disaggGoodputPerGpu: 0,
          colocatedGoodputPerGpu: 0,
          vllmGoodputPerGpu: 0,
          chunkedGoodputPerGpu: 0,
          ratioVsColocated: null,
          ratioVsVllm: null,
          vllmDistServeGoodputPerGpu: 0,
          vllmDistServeGpus: distServeVllmGpus(model),
          ratioVsVllmDistServe: null,
        };
        const small = planServing({
          ...input,
          mode: "colocated",
          options: { ...input.options, maxInstanceGpus: row.vllmDistServeGpus },
        });
        row.vllmDistServeGoodputPerGpu = small.ok ? (small.alternatives.vllm?.goodputPerGpu ?? 0) : 0;
        if (!plan.ok) {
          row.note = `${plan.reason}: ${plan.message}`;
        } else {
          const { disaggregated: d, vllm, chunked } = plan.alternatives;
          row.disaggGoodputPerGpu = d?.goodputPerGpu ?? 0;
          row.vllmGoodputPerGpu = vllm?.goodputPerGpu ?? 0;
          row.chunkedGoodputPerGpu = chunked?.goodputPerGpu ?? 0;
          row.colocatedGoodputPerGpu = Math.max(row.vllmGoodputPerGpu, row.chunkedGoodputPerGpu);
          row.ratioVsColocated =
            row.colocatedGoodputPerGpu > 0 ? row.disaggGoodputPerGpu / row.colocatedGoodputPerGpu : null;
          row.ratioVsVllm = row.vllmGoodputPerGpu > 0 ? row.disaggGoodputPerGpu / row.vllmGoodputPerGpu : null;
          row.ratioVsVllmDistServe =
            row.vllmDistServeGoodputPerGpu > 0 ? row.disaggGoodputPerGpu / row.vllmDistServeGoodputPerGpu : null;
          if (d) {
            row.prefill = `TP${d.prefill.tp}×PP${d.prefill.pp}×${d.unit.prefill}`;
            row.decode = `TP${d.decode.tp}×PP${d.decode.pp}×${d.unit.decode}`;
            row.affinity = d.affinity;
          }
          const c = plan.colocated;
          if (c) row.colocated = `${c.policy} TP${c.tp}×PP${c.pp}`;
          if (vllm) row.vllm = `TP${vllm.tp}×PP${vllm.pp}`;
        }
        if (exhaustiveFor.has(`${model}|${gpu}|${workload}|${sloScale.ttft}`)) {
          const budget = 8;
          const exInput: ServingPlanInput = { ...input, nodes: cluster(gpu, 1), maxGpus: budget };
          const limited = planServing(exInput);
          const ex = exhaustive(exInput, gpu, budget);
          // The planner's units measured as the exhaustive search measures every shape (one seed): its own figures
          // are 3-seed means where the call was close, and the maximum over 240 one-seed measurements is not.
          const best = limited.ok ? unitGoodputPerGpu(exInput, gpu, limited.alternatives.disaggregated) : 0;
          const deployed = limited.ok ? unitGoodputPerGpu(exInput, gpu, limited.disaggregated) : 0;
          row.exhaustiveGoodputPerGpu = ex.best;
          row.exhaustiveShapes = ex.shapes;
          row.exhaustiveBest = ex.label;
          row.ratioVsExhaustive = ex.best > 0 ? best / ex.best : null;
          row.ratioVsExhaustiveDeployed = ex.best > 0 ? deployed / ex.best : null;
          if (limited.ok && limited.alternatives.disaggregated)
            row.note = `planner within 8 GPUs: ${fmtDisagg(limited.alternatives.disaggregated)}`;
        }
        scenarios.push(row);
        console.log(
          `${model} ${gpu} ${workload}${sloScale.ttft !== 1 ? ` TTFT×${sloScale.ttft}` : ""}: disagg ${row.disaggGoodputPerGpu.toFixed(3)} vllm ${row.vllmGoodputPerGpu.toFixed(3)} ` +
            `chunked ${row.chunkedGoodputPerGpu.toFixed(3)} vllm≤${row.vllmDistServeGpus}GPU ${row.vllmDistServeGoodputPerGpu.toFixed(3)} ratio ${row.ratioVsColocated?.toFixed(2) ?? "n/a"} vsVllm ${row.ratioVsVllm?.toFixed(2) ?? "n/a"} vsVllmDistServe ${row.ratioVsVllmDistServe?.toFixed(2) ?? "n/a"}` +
            `${row.ratioVsExhaustive !== undefined ? ` vsExhaustive ${row.ratioVsExhaustive?.toFixed(3)} (${row.exhaustiveBest})` : ""} ${plannerMs.toFixed(0)} ms${row.note && !plan.ok ? ` (${row.note})` : ""}`,
        );
      }
    }
  }

  // Planner wall time vs cluster size: one core, the reconciler's call (synthetic chatbot lengths, auto mode).
  const timing: {
    model: string;
    gpu: string;
    gpus: number;
    rate: number;
    plannerMs: number;
    ok: boolean;
    totalGpus: number | null;
  }[] = [];
  for (const gpus of [8, 64, 512, 1024]) {
    const input: ServingPlanInput = {
      model: MODEL_SHAPES["OPT-66B"],
      slo: { ...SLOS.chatbot("OPT-66B"), attainmentPercent: 90 },
      workload: { arrivalRatePerSec: gpus * 0.3, lengths: "chatbot" },
      mode: "auto",
      nodes: cluster("H100-80GB", gpus / 8),
    };
    planServing(input); // warm the JIT
    const runs: number[] = [];
    let last = planServing(input);
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      last = planServing(input);
      runs.push(performance.now() - t0);
    }
    runs.sort((a, b) => a - b);
    timing.push({
      model: "OPT-66B",
      gpu: "H100-80GB",
      gpus,
      rate: input.workload.arrivalRatePerSec,
      plannerMs: runs[1] as number,
      ok: last.ok,
      totalGpus: last.ok ? last.totalGpus : null,
    });
    console.log(
      `planner at ${gpus} GPUs: ${(runs[1] as number).toFixed(0)} ms (${last.ok ? `${last.mode}, ${last.totalGpus} GPUs` : last.message})`,
    );
  }

  mkdirSync(resultsDir, { recursive: true });
  const attribution =
    "chatbot workload: Azure LLM inference trace 2023 (conversation), Azure Public Dataset, CC-BY 4.0; Patel et al., Splitwise, ISCA 2024";
  writeFileSync(
    join(resultsDir, "serving.json"),
    `${JSON.stringify({ attribution, scenarios, plannerTiming: timing }, null, 2)}\n`,
  );
  writeFileSync(join(resultsDir, "serving.md"), markdown(scenarios, timing, attribution));
}

function markdown(
  scenarios: readonly ServingScenarioResult[],
  timing: readonly { gpus: number; rate: number; plannerMs: number; ok: boolean; totalGpus: number | null }[],
  attribution: string,
): string {
  const f = (v: number | null | undefined, digits = 3): string =>
    v === null || v === undefined ? "–" : v.toFixed(digits);
  const exhaustiveRows = scenarios.filter((s) => s.ratioVsExhaustive !== undefined);
  const lines = [
    "# Serving benchmark: DistServe planner",
    "",
    `Generated by \`npm run bench -- serving\`. Goodput = highest rate with ≥90% of requests meeting TTFT and TPOT, per GPU (req/s/GPU), simulated. ${attribution}.`,
    'Disaggregated = the planner\'s best plan by goodput per GPU. "÷ vLLM" is the comparison DistServe reports (colocated without chunked prefill);',
    '"÷ best colocated" is against the better of vLLM and Sarathi-Serve chunked prefill, each with its best TP×PP. Same simulator, same run.',
    "SLO scale 0.5/1 = chatbot with the TTFT SLO halved and TPOT kept (tight TTFT).",
    "",
    "\"vLLM (DistServe's size)\" is vLLM limited to instances of as many GPUs as DistServe's evaluation gave it (OPT-13B/Llama-3-8B 1, OPT-66B/Llama-3-70B 4, OPT-175B 8).",
    "",
    "| model | GPU | workload | SLO scale TTFT/TPOT | GPUs | TTFT/TPOT SLO (ms) | disagg plan | vLLM plan | best colocated plan | disagg/GPU | vLLM (DistServe's size)/GPU | vLLM/GPU | chunked/GPU | ÷ vLLM (DistServe's size) | ÷ vLLM | ÷ best colocated | planner ms |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...scenarios.map(
      (s) =>
        `| ${s.model} | ${s.gpu} | ${s.workload} | ${s.sloScale.ttft}/${s.sloScale.tpot} | ${s.gpus} | ${s.slo.ttftMs}/${s.slo.tpotMs} | ${s.prefill ? `P ${s.prefill}, D ${s.decode} (${s.affinity})` : (s.note ?? "–")} | ${s.vllm ?? "–"} | ${s.colocated ?? "–"} | ` +
        `${f(s.disaggGoodputPerGpu)} | ${f(s.vllmDistServeGoodputPerGpu)} | ${f(s.vllmGoodputPerGpu)} | ${f(s.chunkedGoodputPerGpu)} | ${f(s.ratioVsVllmDistServe, 2)} | ${f(s.ratioVsVllm, 2)} | ${f(s.ratioVsColocated, 2)} | ${s.plannerMs.toFixed(0)} |`,
    ),
    "",
    "## Planner vs exhaustive search (one 8-GPU node, both affinities, every TP×PP and replica count)",
    "",
    "Every shape, the planner's included, measured end to end on one seed (the planner's own figures are 3-seed means where the call was close).",
    "",
    "| model | GPU | workload | SLO scale | exhaustive best | exhaustive /GPU | planner best | planner ÷ exhaustive | deployed at 1 req/s ÷ exhaustive | shapes |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...exhaustiveRows.map(
      (s) =>
        `| ${s.model} | ${s.gpu} | ${s.workload} | ${s.sloScale.ttft}/${s.sloScale.tpot} | ${s.exhaustiveBest ?? "–"} | ${f(s.exhaustiveGoodputPerGpu)} | ${s.note ?? "–"} | ${f(s.ratioVsExhaustive, 3)} | ${f(s.ratioVsExhaustiveDeployed, 3)} | ${s.exhaustiveShapes} |`,
    ),
    "",
    "## Planner wall time (OPT-66B, H100-80GB, chatbot lengths, auto mode, one core)",
    "",
    "| cluster GPUs | target rate (req/s) | planner ms | plan GPUs |",
    "|---|---|---|---|",
    ...timing.map(
      (t) => `| ${t.gpus} | ${t.rate} | ${t.plannerMs.toFixed(0)} | ${t.ok ? t.totalGpus : "insufficient"} |`,
    ),
    "",
  ];
  return lines.join("\n");
}
