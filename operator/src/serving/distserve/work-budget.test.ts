import { describe, expect, it } from "vitest";
import { latencyCoefficients } from "../../../../common/src/models/latency.js";
import { MODEL_SHAPES, deriveModel } from "../../../../common/src/models/model-shapes.js";
import { modelShape } from "../planner-bridge.js";
import { attainmentCeiling, loneTimes } from "./bounds.js";
import { enumerateConfigs, makeContext, sampleFor } from "./context.js";
import { colocatedSimConfig, decodeSim, disaggConfig, prefillSim } from "./measurements.js";
import { type ClusterNode, type ServingPlanInput, planServing } from "./planner.js";
import { attainment, simulateColocated, simulateDisaggregated, WorkBudgetExhausted } from "./simulator.js";
import { WorkBudget } from "./work-budget.js";

const h100Nodes = (count: number): ClusterNode[] =>
  Array.from({ length: count }, (_, i) => ({
    nodeName: `n-${i}`,
    gpuModel: "H100-80GB",
    gpuCount: 8,
    gpusFree: 8,
    nicType: "infiniband",
    nicBandwidthGbps: 400,
    nicCount: 8,
  }));

/**
 * The spec the CR property test found (test/integration/security/cr-validation.property.test.ts,
 * LONG_CONTEXT_PLAN_CASE): 24k-token prompts, 5k-token outputs, a 5-layer model with a 214k vocabulary.
 */
function longContext(ttftMs: number, over: Partial<ServingPlanInput> = {}): ServingPlanInput {
  const model = {
    name: "un",
    layers: 5,
    hiddenSize: 4096,
    heads: 32,
    vocabSize: 214443,
    dtype: "fp16" as const,
    paramsBillions: 0.0231,
    intermediateSize: 99999,
  };
  return {
    model: modelShape(model, 23794 + 8393),
    slo: { ttftMs, tpotMs: 1570.33, attainmentPercent: 2.48 },
    workload: {
      arrivalRatePerSec: 0.0404,
      lengths: { prompt: { mean: 23784, max: 23794 }, output: { mean: 5242, max: 8393 } },
    },
    mode: "auto",
    nodes: h100Nodes(8),
    gpuModel: "H100-80GB",
    ...over,
  };
}

describe("attainment ceiling (bounds.ts)", () => {
  it("is never below the attainment a simulated trickle reaches, for any configuration and policy", () => {
    const input: ServingPlanInput = {
      model: MODEL_SHAPES["OPT-13B"],
      slo: { ttftMs: 1, tpotMs: 1, attainmentPercent: 50 },
      workload: { arrivalRatePerSec: 1, lengths: "chatbot" },
      mode: "auto",
      nodes: h100Nodes(1),
    };
    const model = deriveModel(input.model);
    const coeffs = latencyCoefficients("H100-80GB");
    const ctx = makeContext(input, model, coeffs, input.nodes);
    const sample = sampleFor(ctx, 200);
    const configs = enumerateConfigs(ctx, 8).serving;
    expect(configs.length).toBeGreaterThan(2);
    // SLOs at the median lone times of the first configuration, so the ceilings fall strictly between 0 and 1.
    const lone = loneTimes(coeffs, configs[0]!, sample);
    const median = (xs: Float64Array) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
    ctx.slo = { ttftMs: median(lone.ttftMs), tpotMs: median(lone.tpotMs) };
    let strictlyInside = 0;
    for (const c of configs) {
      const ceiling = attainmentCeiling(ctx, sample, { prefill: c, decode: c });
      if (ceiling > 0 && ceiling < 1) strictlyInside++;
      for (const policy of ["vllm", "chunked"] as const) {
        const run = simulateColocated(sample, 0.01, colocatedSimConfig(ctx, c, 1, policy));
        expect(attainment(run, ctx.slo), `colocated ${policy} TP${c.tp}×PP${c.pp}`).toBeLessThanOrEqual(ceiling);
      }
      const disagg = simulateDisaggregated(sample, 0.01, {
        prefill: prefillSim(ctx, c, 1),
        decode: decodeSim(c, 1, 50),
        kvBytesPerToken: model.kvBytesPerToken,
      });
      expect(attainment(disagg, ctx.slo), `disaggregated TP${c.tp}×PP${c.pp}`).toBeLessThanOrEqual(ceiling);
      const unit = disaggConfig(
        ctx,
        {
          prefill: { config: c, goodput: 1, perGpu: 1 },
          decode: { config: c, goodput: 1, perGpu: 1 },
          affinity: "high",
          unitPrefill: 1,
          unitDecode: 1,
          estimatePerGpu: 0,
          kvLinkGBps: 50,
        },
        1,
        1,
      );
      expect(attainment(simulateDisaggregated(sample, 0.01, unit), ctx.slo)).toBeLessThanOrEqual(ceiling);
    }
    expect(strictlyInside, "the SLOs cut through the lone times of some configurations").toBeGreaterThan(0);
  });

  it("proves the long-context spec's 0.1 ms TTFT out of reach without simulating anything", () => {
    const started = performance.now();
    const result = planServing(longContext(0.1));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe("ModelDoesNotFit");
    expect(result.message).toMatch(/meets TTFT ≤ 0\.1 ms .* even at a trickle of load/);
    // Every configuration was ruled out by the latency model alone: no simulated event at all (it was 34 s of
    // simulation before the ceiling existed).
    expect(result.work).toEqual({ units: 0, cutShort: false });
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

// The cut-short cases simulate 30 M units (several seconds, more on a contended core).
describe("work budget (work-budget.ts)", { timeout: 240_000 }, () => {
  it("cuts the long-context search short at its budget and still returns the best verified plan", () => {
    const search = 30_000_000;
    const finalize = 5_000_000;
    const input = longContext(500, { options: { workBudget: { search, finalize } } });
    const result = planServing(input);
    if (!result.ok) throw new Error(`expected a plan, got ${result.reason}: ${result.message}`);
    expect(result.work?.cutShort).toBe(true);
    // A search stops inside the simulated event that crosses its limit; the charge of one event is at most one
    // unit plus the sequences of one batch step (≤ 256).
    expect(result.work?.units).toBeGreaterThan(search);
    expect(result.work?.units).toBeLessThanOrEqual(search + finalize + 257);
    expect(result.explanation).toMatch(
      /search cut short: its work budget of 30000000 simulation units ran out in the colocated baselines/,
    );
    expect(result.predictedAttainmentPercent).toBeGreaterThanOrEqual(input.slo.attainmentPercent);
  });

  it("reports PlanningBudgetExhausted, naming the stage, when nothing was found within the budget", () => {
    const input = longContext(500, { options: { workBudget: { search: 10_000 } } });
    const result = planServing(input);
    // Counted, not timed: the same input stops at the same point, whatever the machine's load.
    expect(planServing(input)).toEqual(result);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe("PlanningBudgetExhausted");
    expect(result.message).toMatch(
      /^planning un on H100-80GB stopped after \d+ simulation units \(budget 10000\) in the colocated baselines, before any configuration was found to meet TTFT ≤ 500 ms/,
    );
    expect(result.work?.units).toBeLessThanOrEqual(10_000 + 257);
  });

  it("reports PlanningBudgetExhausted when verifying the plan found runs past the finalize allowance", () => {
    const result = planServing(longContext(500, { options: { workBudget: { search: 30_000_000, finalize: 1_000 } } }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe("PlanningBudgetExhausted");
    expect(result.message).toMatch(/^verifying the un plan on H100-80GB at 0\.0404 req\/s ran past its work budget/);
  });

  it("rejects a budget that is not a positive integer, naming the field", () => {
    const result = planServing(longContext(500, { options: { workBudget: { search: 0 } } }));
    expect(result).toMatchObject({ ok: false, reason: "InvalidInput" });
    if (!result.ok) expect(result.message).toBe("options.workBudget.search must be a positive integer, got 0");
  });

  it("skips the stages after the one that ran out and lets other errors through", () => {
    const work = new WorkBudget(10, 5);
    const ran: string[] = [];
    work.stage("first", () => {
      ran.push("first");
      work.meter.spent = 11;
      throw new WorkBudgetExhausted(work.meter);
    });
    work.stage("second", () => ran.push("second"));
    expect(ran).toEqual(["first"]);
    expect(work.cutShortIn).toBe("first");
    expect(work.cutShortNote()).toMatch(/ran out in first/);
    work.startFinalize();
    expect(work.meter.limit).toBe(16);
    expect(() => new WorkBudget().stage("broken", () => void JSON.parse("{"))).toThrow(SyntaxError);
  });
});
