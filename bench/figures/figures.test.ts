import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { sweepModel, type CalibrationRaw } from "../../common/src/models/calibration.js";
import { decodeStepLatencyMs, prefillLatencyMs } from "../../common/src/models/latency.js";
import { faultData, faultSpec } from "./fault.js";
import { FIGURES, RESULTS_DIR, writeFigures } from "./index.js";
import { FigureDataError } from "./json.js";
import { latencyPoints, medianAbsErrorPercent, skippedRows } from "./latency-model.js";
import { renderSvg } from "./render.js";
import { schedulerCdfPoints, schedulerCdfSpec, schedulerPoints } from "./scheduler.js";
import { ratePoints, rateSpec } from "./serving-rate.js";
import { servingPoints, servingSpec } from "./serving.js";
import { trafficPoints } from "./traffic.js";

/** aria-labels Vega writes on each data mark: "<x title>: <x>; <y title>: <y>; <color title>: <series>". */
const markLabels = (svg: string, role: string) =>
  [...svg.matchAll(new RegExp(`aria-roledescription="${role}"`, "g"))].length;

const scenario = (over: Record<string, unknown>) => ({
  model: "OPT-13B",
  gpu: "A100-80GB",
  workload: "chatbot",
  sloScale: { ttft: 1, tpot: 1 },
  disaggGoodputPerGpu: 2.5,
  vllmGoodputPerGpu: 3,
  chunkedGoodputPerGpu: 0,
  ...over,
});

describe("serving figure", () => {
  it("has one point per scenario and plan kind, labels the SLO scale, keeps zeros", () => {
    const points = servingPoints({
      scenarios: [scenario({}), scenario({ sloScale: { ttft: 0.5, tpot: 1 }, model: "Llama-3-8B", gpu: "H100-80GB" })],
    });
    expect(points).toHaveLength(6);
    expect(points.slice(0, 3)).toEqual([
      { deployment: "OPT-13B A100", panel: "chatbot", planKind: "disaggregated (gpufleet)", goodputPerGpu: 2.5 },
      { deployment: "OPT-13B A100", panel: "chatbot", planKind: "vLLM colocated", goodputPerGpu: 3 },
      { deployment: "OPT-13B A100", panel: "chatbot", planKind: "chunked prefill", goodputPerGpu: 0 },
    ]);
    expect(points[3]).toMatchObject({ deployment: "Llama-3-8B H100", panel: "chatbot, TTFT SLO ×0.5" });
  });

  it("renders one bar per point with the plan kinds in the legend", async () => {
    const points = servingPoints({ scenarios: [scenario({}), scenario({ workload: "summarization" })] });
    const svg = await renderSvg(servingSpec(points));
    expect(svg.startsWith("<svg")).toBe(true);
    expect(markLabels(svg, "bar")).toBe(points.length);
    for (const kind of ["disaggregated (gpufleet)", "vLLM colocated", "chunked prefill"])
      expect(svg).toContain(`>${kind}<`);
  });

  it("says which field is wrong", () => {
    expect(() => servingPoints({ scenarios: [scenario({ vllmGoodputPerGpu: "fast" })] })).toThrow(
      /serving-goodput: "vllmGoodputPerGpu" is not a number/,
    );
    expect(() => servingPoints({})).toThrow(FigureDataError);
  });
});

describe("serving rate figure", () => {
  const results = (rows: Record<string, unknown>[]) => ({
    scenarios: [
      { scenario: "Llama-3-8B H100 chatbot", slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 } },
      { scenario: "OPT-13B A100 chatbot", slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 80 } },
    ],
    rows,
  });
  const row = (over: Record<string, unknown>) => ({
    scenario: "Llama-3-8B H100 chatbot",
    planKind: "disaggregated",
    shape: "P TP1×PP1×1, D TP1×PP1×1 (high)",
    ratePerGpu: 2,
    attainmentPercent: 97.5,
    aboveCapacityBound: false,
    ...over,
  });

  it("labels each plan kind, carries its scenario's target and the capacity flag", () => {
    const points = ratePoints(
      results([row({}), row({ planKind: "vllm", scenario: "OPT-13B A100 chatbot", aboveCapacityBound: true })]),
    );
    expect(points).toEqual([
      {
        scenario: "Llama-3-8B H100 chatbot",
        planKind: "disaggregated (gpufleet)",
        ratePerGpu: 2,
        attainmentPercent: 97.5,
        aboveCapacityBound: false,
        targetPercent: 90,
      },
      {
        scenario: "OPT-13B A100 chatbot",
        planKind: "vLLM colocated",
        ratePerGpu: 2,
        attainmentPercent: 97.5,
        aboveCapacityBound: true,
        targetPercent: 80,
      },
    ]);
  });

  it("rejects rows it cannot place", () => {
    expect(() => ratePoints(results([row({ planKind: "mystery" })]))).toThrow(/unknown planKind "mystery"/);
    expect(() => ratePoints(results([row({ scenario: "elsewhere" })]))).toThrow(/"elsewhere" has no scenario/);
    expect(() => ratePoints(results([row({ attainmentPercent: "high" })]))).toThrow(
      /serving-rate: "attainmentPercent" is not a number/,
    );
    expect(() => ratePoints({ rows: [] })).toThrow(FigureDataError);
  });

  it("renders a line and a point per kind in every panel, and a target rule per panel", async () => {
    const rows = ["Llama-3-8B H100 chatbot", "OPT-13B A100 chatbot"].flatMap((scenario) =>
      ["disaggregated", "vllm", "chunked"].flatMap((planKind) =>
        [1, 2, 3].map((ratePerGpu) =>
          row({ scenario, planKind, ratePerGpu, attainmentPercent: 100 - 20 * ratePerGpu }),
        ),
      ),
    );
    const svg = await renderSvg(rateSpec(ratePoints(results(rows))));
    expect(svg.startsWith("<svg")).toBe(true);
    expect(markLabels(svg, "line mark")).toBe(6);
    expect(markLabels(svg, "point")).toBe(rows.length);
    expect(markLabels(svg, "rule mark")).toBe(2);
    for (const kind of ["disaggregated (gpufleet)", "vLLM colocated", "chunked prefill"])
      expect(svg).toContain(`>${kind}<`);
  });
});

describe("scheduler figure", () => {
  const row = (over: Record<string, unknown>) => ({
    policy: "gpufleet",
    workload: "zipf-128",
    arrival: "poisson",
    load: 0.6,
    p99TtftMs: 400,
    p99TpotMs: 45,
    ...over,
  });
  it("takes the Poisson rows only, a P99 TTFT and a P99 TPOT point each", () => {
    const points = schedulerPoints({
      rows: [row({}), row({ arrival: "gamma-cv2" }), row({ policy: "round-robin", p99TpotMs: null })],
    });
    expect(points).toEqual([
      { workload: "zipf-128", policy: "gpufleet", load: 0.6, metric: "P99 TTFT", valueMs: 400 },
      { workload: "zipf-128", policy: "gpufleet", load: 0.6, metric: "P99 TPOT", valueMs: 45 },
      { workload: "zipf-128", policy: "round-robin", load: 0.6, metric: "P99 TTFT", valueMs: 400 },
    ]);
  });
});

describe("scheduler CDF figure", () => {
  const percentiles = (scale: number) => Array.from({ length: 101 }, (_, p) => (p + 1) * scale);
  it("turns each run's 101 percentiles into CDF points per metric", () => {
    const points = schedulerCdfPoints({
      latencyCdfs: [{ workload: "zipf-128", policy: "gpufleet", ttftMs: percentiles(10), tpotMs: percentiles(0.5) }],
    })!;
    expect(points).toHaveLength(202);
    expect(points[0]).toEqual({ workload: "zipf-128", policy: "gpufleet", metric: "TTFT", valueMs: 10, fraction: 0 });
    expect(points[100]).toEqual({
      workload: "zipf-128",
      policy: "gpufleet",
      metric: "TTFT",
      valueMs: 1010,
      fraction: 1,
    });
    expect(points[101]).toMatchObject({ metric: "TPOT", valueMs: 0.5, fraction: 0 });
  });
  it("is skipped (null) for results without latencyCdfs, and refuses a short percentile list", () => {
    expect(schedulerCdfPoints({ rows: [] })).toBeNull();
    expect(() =>
      schedulerCdfPoints({ latencyCdfs: [{ workload: "w", policy: "p", ttftMs: [1, 2], tpotMs: [] }] }),
    ).toThrow(/expected 101 percentiles, got 2/);
  });
  it("draws one line per policy and metric", async () => {
    const runs = ["gpufleet", "round-robin"].map((policy) => ({
      workload: "zipf-128",
      policy,
      ttftMs: percentiles(10),
      tpotMs: percentiles(1),
    }));
    const svg = await renderSvg(
      schedulerCdfSpec(schedulerCdfPoints({ latencyCdfs: runs })!, {
        headlineLoad: 0.9,
        instances: 16,
        model: "LLaMA-7B",
        gpuModel: "A10-24GB",
        requestsPerRun: 10000,
      }),
    );
    expect(markLabels(svg, "line mark")).toBe(4); // 2 policies × (TTFT, TPOT)
    expect(svg).toContain(">round-robin<");
    expect(svg).toContain(
      "Poisson arrivals at load 0.9 (the headline), 16 simulated LLaMA-7B instances on A10-24GB, 10000 requests per run",
    );
  });
});

describe("fault figure", () => {
  const row = (over: Record<string, unknown>) => ({
    faultClass: "hang",
    factor: null,
    ranks: 64,
    detectionLatencyMs: 1400,
    detectionLatencyMaxMs: 1450,
    recall: 1,
    ...over,
  });
  const data = faultData({
    rows: [
      row({}),
      row({ faultClass: "straggler", factor: 1.2, detectionLatencyMs: null, detectionLatencyMaxMs: null, recall: 0 }),
      row({ faultClass: "slow-link", factor: 0.8, recall: 0.2 }),
      row({ faultClass: "none", detectionLatencyMs: null }),
    ],
  });
  it("separates detected, partly detected and missed faults and drops the no-fault control", () => {
    expect(data.detected.map((p) => p.fault)).toEqual(["hang", "slow-link ×0.8"]);
    expect(data.partial).toEqual(["slow-link ×0.8 @ 64 ranks: recall 0.2"]);
    expect(data.undetected).toEqual(["straggler ×1.2 @ 64 ranks"]);
  });
  it("draws a point per detected row and names the missed ones", async () => {
    const svg = await renderSvg(faultSpec(data));
    expect(markLabels(svg, "point")).toBe(2);
    expect(svg).toContain("not detected: straggler ×1.2 @ 64 ranks");
  });
});

describe("traffic figure", () => {
  it("has a point per method and tells failed-link scenarios apart", () => {
    const points = trafficPoints({
      rows: [
        {
          placement: "full-rack",
          algorithm: "ring",
          failedLink: "leaf-0<>spine-0#0",
          gpus: 64,
          c4pMaxLinkLoad: 0.5,
          ecmpMaxLinkLoad: 2.1,
          ecmpMultiQpMaxLinkLoad: 1.1,
          idealMaxLinkLoad: 0.26,
        },
      ],
    });
    expect(points.map((p) => [p.method, p.maxLinkLoad])).toEqual([
      ["C4P", 0.5],
      ["ECMP", 2.1],
      ["ECMP multi-QP", 1.1],
      ["ideal", 0.26],
    ]);
    expect(new Set(points.map((p) => `${p.pattern}|${p.links}`))).toEqual(
      new Set(["full-rack · ring|one link failed"]),
    );
  });
});

describe("latency model figure", () => {
  const calibration = {
    gpu: "NVIDIA H200",
    model: "llama-3-8b",
    ceilings: { measuredCopyGBps: 4200, measuredMatmulTflops: 750 },
    rows: [
      { phase: "decode", batch: 4, contextTokens: 1024, stepMs: 5.2 },
      { phase: "prefill", batch: 2, promptTokens: 2048, stepMs: 97.5, gpuStepMs: 80 },
      { phase: "decode", batch: 256, contextTokens: 8192, skipped: "does not fit" },
    ],
  };
  it("puts the model's own prediction beside each measured step and leaves out skipped shapes", () => {
    const model = sweepModel(calibration as CalibrationRaw);
    const points = latencyPoints(calibration);
    expect(skippedRows(calibration)).toBe(1);
    expect(points.map((p) => p.phase)).toEqual(["decode", "prefill (eager)", "prefill (CUDA graph)"]);
    // The shipped H200 model, through the planner's own entry points (decode as one batch, eager prefill with the
    // profile's host floor); a CUDA-graph prefill is predicted without host time, never slower.
    expect(points[0]!.modelMs).toBeCloseTo(
      decodeStepLatencyMs(model, "H200-141GB", { tp: 1, pp: 1 }, [1024, 1024, 1024, 1024]).totalMs,
      6,
    );
    expect(points[1]!.modelMs).toBeCloseTo(
      prefillLatencyMs(model, "H200-141GB", { tp: 1, pp: 1 }, [2048, 2048]).totalMs,
      6,
    );
    expect(points[2]!.modelMs).toBeLessThanOrEqual(points[1]!.modelMs);
    expect(points[1]!.errorPercent).toBeCloseTo(((points[1]!.modelMs - 97.5) / 97.5) * 100, 9);
    expect(medianAbsErrorPercent(points, "decode")).toBeCloseTo(Math.abs(points[0]!.errorPercent), 9);
  });
  it("refuses hardware it has no catalog entry for, and a sweep without a model", () => {
    expect(() => latencyPoints({ ...calibration, gpu: "NVIDIA B300" })).toThrow(/no catalog GPU for "NVIDIA B300"/);
    expect(() => latencyPoints({ ...calibration, model: 7 })).toThrow(/model must be/);
  });
});

describe("writeFigures", () => {
  let dir = "";
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("renders the figures whose JSON exists and skips the rest with a note", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "figures-"));
    await writeFile(
      path.join(dir, "fault.json"),
      JSON.stringify({
        rows: [
          {
            faultClass: "hang",
            factor: null,
            ranks: 64,
            detectionLatencyMs: 1400,
            detectionLatencyMaxMs: 1450,
            recall: 1,
          },
        ],
      }),
    );
    const log: string[] = [];
    const written = await writeFigures({ resultsDir: dir, log: (l) => log.push(l) });
    expect(written).toEqual([path.join(dir, "figures", "fault-detection.svg")]);
    expect(await readFile(written[0]!, "utf8")).toContain("detection latency per fault class");
    expect(log.filter((l) => l.includes("skipped"))).toHaveLength(FIGURES.length - 1);
  });

  it("renders only the figures of the benches named", async () => {
    dir = await mkdtemp(path.join(tmpdir(), "figures-"));
    await writeFile(path.join(dir, "fault.json"), JSON.stringify({ rows: [] }));
    expect(await writeFigures({ resultsDir: dir, benches: ["serving"], log: () => {} })).toEqual([]);
  });

  // The checked-in results are what `npm run bench -- figures` draws: a bench whose JSON changes shape breaks here.
  it.each(FIGURES.map((f) => [f.name, f] as const))("builds %s from the checked-in results", (_name, figure) => {
    const results: unknown = JSON.parse(readFileSync(path.join(RESULTS_DIR, figure.source), "utf8"));
    const built = figure.spec(results);
    // Only the CDFs may be missing: bench/results/scheduler.json predates its latencyCdfs until the bench re-runs.
    if (built === null) {
      expect(figure.name).toBe("scheduler-cdf");
      expect(results).not.toHaveProperty("latencyCdfs");
      return;
    }
    const spec = built as { data?: { values?: unknown[] }; layer?: { data?: { values?: unknown[] } }[] };
    const values = spec.data?.values ?? spec.layer?.flatMap((l) => l.data?.values ?? []) ?? [];
    expect(values.length).toBeGreaterThan(0);
  });
});
