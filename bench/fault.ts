/**
 * Benchmark: the C4D detector (operator/src/training/c4d/) on simulated telemetry of 64-4,096-rank jobs
 * (bench/fault/scenario.ts: the simulated workers' training step with 4 channels and realistic noise,
 * bench/fault/noise.ts), with injected faults. `npm run bench -- fault`; `npm run bench -- fault --replay FILE
 * [--tail-ms N]` replays recorded telemetry (format: bench/fault/replay.ts, docs/c4d.md);
 * `npm run bench -- fault --record FILE --ranks 64 --fault hang-rank=5` writes one simulated scenario in that format.
 *
 * Latency = time of the first correct verdict minus the start of the first affected collective; records reach the
 * operator 300 ms after they complete (agent flush 250 ms + delivery), the detector runs every 500 ms, and the taint
 * is assumed to follow the verdict in the same reconcile (not measured here). Precision = correct verdicts / all
 * verdicts in that row's runs; recall = runs with a correct verdict / runs. Results: bench/results/fault.{json,md}.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { c4dConfigFor } from "../operator/src/training/c4d/index.js";
import { replay } from "./fault/replay.js";
import { runScenario, type ScenarioClass, type ScenarioOutcome, type ScenarioSpec } from "./fault/scenario.js";

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), "results");

interface Cell {
  faultClass: ScenarioClass;
  factor?: number;
  runs: Record<number, number>;
}

// Runs per rank count: few, and fewer at scale, to keep the whole bench within ~10 minutes on this 2-core machine
// (so precision and recall rest on few runs per row: read them with the run counts).
const CELLS: Cell[] = [
  { faultClass: "hang", runs: { 64: 20, 256: 10, 1024: 10, 4096: 2 } },
  { faultClass: "unfinished", runs: { 64: 10, 1024: 3 } },
  { faultClass: "straggler", factor: 1.2, runs: { 64: 5 } },
  { faultClass: "straggler", factor: 1.5, runs: { 64: 10, 256: 5, 1024: 4, 4096: 1 } },
  { faultClass: "straggler", factor: 5, runs: { 64: 5, 1024: 2 } },
  { faultClass: "slow-link", factor: 0.8, runs: { 64: 5 } },
  { faultClass: "slow-link", factor: 0.5, runs: { 64: 10, 256: 5, 1024: 4, 4096: 1 } },
  { faultClass: "slow-link", factor: 0.1, runs: { 64: 5, 1024: 2 } },
  { faultClass: "nic-flap", factor: 0.05, runs: { 64: 10, 256: 5, 1024: 3 } },
  { faultClass: "job-hang", runs: { 64: 3, 1024: 1 } },
  { faultClass: "none", runs: { 64: 4, 256: 2, 1024: 1, 4096: 1 } },
];
const FAULT_FREE_MS: Record<number, number> = { 64: 1_800_000, 256: 600_000, 1024: 300_000, 4096: 60_000 };

function specFor(cell: Cell, ranks: number, seed: number): ScenarioSpec {
  const horizonMs =
    cell.faultClass === "none"
      ? FAULT_FREE_MS[ranks]!
      : cell.faultClass === "job-hang"
        ? 75_000
        : cell.faultClass === "hang" || cell.faultClass === "unfinished"
          ? 15_000
          : 40_000;
  return {
    faultClass: cell.faultClass,
    ranks,
    ...(cell.factor !== undefined ? { factor: cell.factor } : {}),
    seed,
    warmupMs: 12_000,
    horizonMs,
    tickMs: cell.faultClass === "none" ? 2_000 : 500,
    afterDetectionMs: 2_000,
  };
}

const pct = (xs: number[], q: number): number | null =>
  xs.length === 0 ? null : [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x));

export async function run(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const replayFile = opt("--replay");
  if (replayFile) return replay(replayFile, Number(opt("--tail-ms") ?? 5_000));
  const recordFile = opt("--record");
  if (recordFile)
    return (await import("./fault/record.js")).recordScenario(
      recordFile,
      Number(opt("--ranks") ?? 64),
      opt("--fault") ?? "hang-rank=5",
    );
  const config = c4dConfigFor({});
  const rows = [];
  let seed = 1000;
  for (const cell of CELLS) {
    for (const [ranksText, count] of Object.entries(cell.runs)) {
      const ranks = Number(ranksText);
      const outcomes: ScenarioOutcome[] = [];
      for (let i = 0; i < count; i++) outcomes.push(runScenario(specFor(cell, ranks, seed++), config));
      const latencies = outcomes.flatMap((o) => (o.detectionLatencyMs === undefined ? [] : [o.detectionLatencyMs]));
      const correct = outcomes.reduce((s, o) => s + o.correct, 0);
      const wrong = outcomes.reduce((s, o) => s + o.wrong, 0);
      const cpuUs = outcomes.reduce((s, o) => s + o.detectorCpuUs, 0);
      const ticks = outcomes.reduce((s, o) => s + o.ticks, 0);
      const jobHours =
        cell.faultClass === "none" ? outcomes.reduce((s, o) => s + o.simulatedMs, 0) / 3_600_000 : undefined;
      const row = {
        faultClass: cell.faultClass,
        factor: cell.factor ?? null,
        ranks,
        runs: count,
        detectionLatencyMs: r1(pct(latencies, 0.5)),
        detectionLatencyMaxMs: r1(pct(latencies, 1)),
        precision: correct + wrong === 0 ? null : Number((correct / (correct + wrong)).toFixed(3)),
        recall:
          cell.faultClass === "none" ? null : Number((outcomes.filter((o) => o.detected).length / count).toFixed(3)),
        falsePositives: wrong,
        ambiguous: outcomes.reduce((s, o) => s + o.ambiguous, 0),
        ...(jobHours !== undefined
          ? { jobHours: Number(jobHours.toFixed(3)), falsePositivesPerJobHour: Number((wrong / jobHours).toFixed(3)) }
          : {}),
        detectorCpuMsPerTickPer1000Ranks: Number((cpuUs / ticks / 1000 / (ranks / 1000)).toFixed(2)),
        injected: outcomes.map((o) => o.injected),
      };
      rows.push(row);
      console.log(JSON.stringify({ ...row, injected: undefined }));
    }
  }
  await mkdir(resultsDir, { recursive: true });
  await writeFile(join(resultsDir, "fault.json"), JSON.stringify({ config, rows }, null, 2) + "\n");
  const md = [
    "# C4D fault detection on simulated telemetry",
    "",
    "Generated by `npm run bench -- fault` (bench/fault.ts). Simulated jobs: H100 nodes of 8 ranks, one 400 Gb/s NIC per node, 4 NCCL",
    "channels, 4 buckets of 256 MiB per 200 ms step, realistic noise (bench/fault/noise.ts). Latency: first correct verdict minus the",
    "start of the first affected collective (records visible 300 ms after completion, detector every 500 ms; the taint is assumed to",
    "follow the verdict in the same reconcile). precision = correct / all verdicts; recall = runs blamed correctly / runs; FP = wrong",
    "verdicts. CPU = detector CPU per 500 ms tick per 1,000 ranks (with the per-job memo). Default faultPolicy (30 %, 60 s).",
    "",
    "| faultClass | factor | ranks | runs | latency median ms | latency max ms | precision | recall | FP | ambiguous | job-hours | CPU ms/tick/1k ranks |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.faultClass} | ${r.factor ?? ""} | ${r.ranks} | ${r.runs} | ${r.detectionLatencyMs ?? "-"} | ${r.detectionLatencyMaxMs ?? "-"} | ${r.precision ?? "-"} | ${r.recall ?? "-"} | ${r.falsePositives} | ${r.ambiguous} | ${"jobHours" in r ? r.jobHours : ""} | ${r.detectorCpuMsPerTickPer1000Ranks} |`,
    ),
    "",
  ].join("\n");
  await writeFile(join(resultsDir, "fault.md"), md);
}
