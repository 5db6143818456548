import { describe, expect, it } from "vitest";
import { meanTtftMdOneMs } from "./goodput.js";
import { instanceLatencyModel, latencyCoefficients, prefillBatch } from "../../../../common/src/models/latency.js";
import { MODEL_SHAPES, deriveModel } from "../../../../common/src/models/model-shapes.js";
import { type DisaggregatedSimConfig, attainment, simulateColocated, simulateDisaggregated } from "./simulator.js";
import { sampleWorkload } from "./workload.js";

const model = deriveModel(MODEL_SHAPES["OPT-13B"]);
const coeffs = latencyCoefficients("A100-80GB");
const latency = (tp: number, pp: number) => instanceLatencyModel(model, coeffs, { tp, pp });
const fixedPrompts = (count: number, seed = 1) =>
  sampleWorkload({ trace: [{ promptTokens: 512, outputTokens: 1 }] }, { count, seed, maxContextTokens: 2048 });

function prefillOnly(tp: number, pp: number): DisaggregatedSimConfig {
  // maxBatchTokens = one prompt: every batch holds one request, the M/D/1 setting of DistServe §3.1.
  return {
    prefill: { latency: latency(tp, pp), count: 1, maxBatchTokens: 512, kvLinkGBps: 50 },
    decode: { latency: latency(tp, pp), count: 0, kvCapacityTokens: 1, maxSeqsPerLane: 1, kvLinkGBps: 50 },
    kvBytesPerToken: model.kvBytesPerToken,
    phase: "prefill",
  };
}

const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;

describe("disaggregated simulator", () => {
  describe.each([
    ["TP1×PP1", 1, 1],
    ["TP2×PP1", 2, 1],
    ["TP1×PP2", 1, 2],
  ])("%s agrees with the M/D/1 TTFT formula at low load", (_name, tp, pp) => {
    const lat = latency(tp, pp).forward(prefillBatch([512]));
    it.each([0.1, 0.3, 0.5])("at utilisation %s", (rho) => {
      const rate = (rho * 1000) / lat.bottleneckStageMs;
      const outcome = simulateDisaggregated(fixedPrompts(20_000), rate, prefillOnly(tp, pp));
      const formula = meanTtftMdOneMs(rate, lat.totalMs, lat.bottleneckStageMs);
      expect(Math.abs(mean(outcome.ttftMs) - formula) / formula).toBeLessThan(0.03);
    });
  });

  it("prefers TP at low rate and PP at high rate for 2 GPUs (DistServe §3.1, Fig. 4)", () => {
    const tp2 = prefillOnly(2, 1);
    const pp2 = prefillOnly(1, 2);
    const sample = fixedPrompts(20_000);
    const ttft = (cfg: DisaggregatedSimConfig, rate: number) => mean(simulateDisaggregated(sample, rate, cfg).ttftMs);
    const tpCapacity = 1000 / latency(2, 1).forward(prefillBatch([512])).bottleneckStageMs;
    expect(ttft(tp2, 0.1 * tpCapacity)).toBeLessThan(ttft(pp2, 0.1 * tpCapacity));
    expect(ttft(pp2, 0.95 * tpCapacity)).toBeLessThan(ttft(tp2, 0.95 * tpCapacity));
  });

  it("is deterministic under a seed", () => {
    const cfg: DisaggregatedSimConfig = {
      prefill: { latency: latency(1, 1), count: 2, maxBatchTokens: 512, kvLinkGBps: 25 },
      decode: { latency: latency(1, 1), count: 2, kvCapacityTokens: 40_000, maxSeqsPerLane: 256, kvLinkGBps: 25 },
      kvBytesPerToken: model.kvBytesPerToken,
    };
    const run = (seed: number) =>
      simulateDisaggregated(sampleWorkload("chatbot", { count: 400, seed, maxContextTokens: 2048 }), 3, cfg);
    expect(run(5)).toEqual(run(5));
    expect(run(6).ttftMs).not.toEqual(run(5).ttftMs);
  });

  it("charges the KV transfer to TPOT: a slow link makes decode miss its SLO", () => {
    const sample = sampleWorkload("chatbot", { count: 300, seed: 2, maxContextTokens: 2048 });
    const cfg = (kvLinkGBps: number): DisaggregatedSimConfig => ({
      prefill: { latency: latency(2, 1), count: 1, maxBatchTokens: 512, kvLinkGBps },
      decode: { latency: latency(1, 1), count: 1, kvCapacityTokens: 40_000, maxSeqsPerLane: 256, kvLinkGBps },
      kvBytesPerToken: model.kvBytesPerToken,
    });
    const slo = { ttftMs: 1000, tpotMs: 100 };
    expect(attainment(simulateDisaggregated(sample, 1, cfg(100)), slo, "decode")).toBeGreaterThan(0.95);
    expect(attainment(simulateDisaggregated(sample, 1, cfg(0.1)), slo, "decode")).toBeLessThan(0.5);
  });

  it("limits decode batches by KV memory: less memory, longer TPOT at the same load", () => {
    const sample = sampleWorkload("chatbot", { count: 400, seed: 3, maxContextTokens: 2048 });
    const tpot = (kvCapacityTokens: number) =>
      mean(
        simulateDisaggregated(sample, 4, {
          prefill: { latency: latency(1, 1), count: 0, maxBatchTokens: 512, kvLinkGBps: 100 },
          decode: { latency: latency(1, 1), count: 1, kvCapacityTokens, maxSeqsPerLane: 256, kvLinkGBps: 100 },
          kvBytesPerToken: model.kvBytesPerToken,
          phase: "decode",
        }).tpotMs,
      );
    expect(tpot(4096)).toBeGreaterThan(2 * tpot(60_000));
  });
});

describe("colocated simulator", () => {
  const sample = sampleWorkload("chatbot", { count: 300, seed: 4, maxContextTokens: 2048 });
  const cfg = (policy: "vllm" | "chunked") => ({
    latency: latency(1, 1),
    count: 1,
    kvCapacityTokens: 40_000,
    maxSeqsPerLane: 256,
    maxBatchTokens: 512,
    policy,
    chunkTokens: 256,
  });
  it("completes every request with both policies", () => {
    for (const policy of ["vllm", "chunked"] as const) {
      const o = simulateColocated(sample, 1, cfg(policy));
      expect([...o.ttftMs].every(Number.isFinite)).toBe(true);
      expect([...o.tpotMs].every(Number.isFinite)).toBe(true);
    }
  });

  describe.each([
    ["TP1×PP1", 1],
    ["TP1×PP2", 2],
  ])("vLLM on %s: a prompt arriving mid-decode stalls the running request (DistServe §2.2)", (_name, pp) => {
    // Request 0 decodes 101 tokens alone; request 1 (1,500-token prompt) arrives while it runs. With PP the
    // prompt lands in the other micro-batch lane, and still delays request 0 through the shared stages.
    const lat = latency(1, pp);
    const cfgPp = { ...cfg("vllm"), latency: lat, maxBatchTokens: 2048 };
    const run = (records: { arrivalMs: number; promptTokens: number; outputTokens: number }[]) =>
      simulateColocated(
        sampleWorkload(
          { trace: records },
          { count: records.length, seed: 1, maxContextTokens: 2048, arrivals: "trace" },
        ),
        1,
        cfgPp,
      );
    const first = { arrivalMs: 0, promptTokens: 100, outputTokens: 101 };
    const alone = run([first, { arrivalMs: 1000, promptTokens: 100, outputTokens: 1 }]);
    const mixed = run([first, { arrivalMs: 1000, promptTokens: 1500, outputTokens: 1 }]);
    it("adds the prompt's prefill time to the running request's decode time", () => {
      const prefillMs = lat.forward(prefillBatch([1500])).totalMs;
      const extraMs = ((mixed.tpotMs[0] as number) - (alone.tpotMs[0] as number)) * 100;
      // The short prompt of the baseline also stalls it a little; the long one must cost ≥ 80% of its time.
      expect(extraMs).toBeGreaterThan(0.8 * prefillMs * (pp === 1 ? 1 : 0.5));
    });
  });

  it("shows prefill-decode interference: vLLM's decodes stall behind prompts, chunked prefill bounds the stall", () => {
    const p99 = (a: Float64Array) => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.99)] as number;
    const vllm = simulateColocated(sample, 2, cfg("vllm"));
    const chunked = simulateColocated(sample, 2, cfg("chunked"));
    expect(p99(chunked.tpotMs)).toBeLessThan(p99(vllm.tpotMs));
  });
});
