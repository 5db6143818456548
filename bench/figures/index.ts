/**
 * Benchmark figures: SVGs rendered from the results JSON the benches write (bench/results/*.json), into
 * bench/results/figures/<name>.svg. `npm run bench -- figures` renders all of them from the JSON on disk; after any
 * other bench run, bench/run.ts renders the figures of the benches that ran. A figure whose JSON is missing is
 * skipped with a note (its bench has not been run here), never drawn from stale or made-up data.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TopLevelSpec } from "vega-lite";
import { faultData, faultSpec } from "./fault.js";
import type { Json } from "./json.js";
import { latencyPoints, latencySpec, skippedRows, sweepModelName } from "./latency-model.js";
import { renderSvg } from "./render.js";
import { schedulerCdfPoints, schedulerCdfSpec, schedulerPoints, schedulerSetup, schedulerSpec } from "./scheduler.js";
import { ratePoints, rateSpec } from "./serving-rate.js";
import { servingPoints, servingSpec } from "./serving.js";
import { trafficPoints, trafficSpec } from "./traffic.js";

export const RESULTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "results");

export interface FigureDef {
  /** Output file stem: bench/results/figures/<name>.svg. */
  name: string;
  /** The bench whose run refreshes the source. */
  bench: string;
  /** Results file it reads, relative to bench/results. */
  source: string;
  /** The figure, or null when the results lack what it draws (written by an older version of the bench). */
  spec(results: Json): TopLevelSpec | null;
}

export const FIGURES: readonly FigureDef[] = [
  { name: "serving-goodput", bench: "serving", source: "serving.json", spec: (r) => servingSpec(servingPoints(r)) },
  {
    name: "serving-rate",
    bench: "serving-rate",
    source: "serving-rate.json",
    spec: (r) => rateSpec(ratePoints(r)),
  },
  {
    name: "scheduler-latency",
    bench: "scheduler",
    source: "scheduler.json",
    spec: (r) => schedulerSpec(schedulerPoints(r), schedulerSetup(r)),
  },
  {
    name: "scheduler-cdf",
    bench: "scheduler",
    source: "scheduler.json",
    spec: (r) => {
      const points = schedulerCdfPoints(r);
      return points && schedulerCdfSpec(points, schedulerSetup(r));
    },
  },
  { name: "fault-detection", bench: "fault", source: "fault.json", spec: (r) => faultSpec(faultData(r)) },
  { name: "traffic-link-load", bench: "traffic", source: "traffic.json", spec: (r) => trafficSpec(trafficPoints(r)) },
  {
    name: "latency-model",
    bench: "gpu-worker",
    source: "gpu-worker-runs/calibration-v2/calibration-raw.json",
    spec: (r) => latencySpec(latencyPoints(r), skippedRows(r), sweepModelName(r)),
  },
];

export interface WriteFiguresOptions {
  resultsDir?: string;
  /** Only the figures of these benches; all when absent. */
  benches?: readonly string[];
  log?: (line: string) => void;
}

/** Renders the selected figures; returns the paths written. */
export async function writeFigures(options: WriteFiguresOptions = {}): Promise<string[]> {
  const resultsDir = options.resultsDir ?? RESULTS_DIR;
  const log = options.log ?? ((line: string) => console.log(line));
  const outDir = path.join(resultsDir, "figures");
  const written: string[] = [];
  for (const figure of FIGURES) {
    if (options.benches && !options.benches.includes(figure.bench)) continue;
    const source = path.join(resultsDir, figure.source);
    if (!existsSync(source)) {
      log(`figures: ${figure.name} skipped, ${figure.source} not found (run \`npm run bench -- ${figure.bench}\`)`);
      continue;
    }
    let results: Json;
    try {
      results = JSON.parse(await readFile(source, "utf8")) as Json;
    } catch (error) {
      throw new Error(`figures: cannot read ${source}`, { cause: error });
    }
    const spec = figure.spec(results);
    if (spec === null) {
      log(
        `figures: ${figure.name} skipped, ${figure.source} lacks its data (re-run \`npm run bench -- ${figure.bench}\`)`,
      );
      continue;
    }
    const svg = await renderSvg(spec);
    await mkdir(outDir, { recursive: true });
    const out = path.join(outDir, `${figure.name}.svg`);
    await writeFile(out, svg);
    written.push(out);
    log(`figures: wrote ${path.relative(process.cwd(), out)}`);
  }
  return written;
}

/** `npm run bench -- figures`: every figure from the results on disk. */
export async function run(): Promise<void> {
  await writeFigures();
}
