import { describe, expect, it } from "vitest";
import {
  decodeStepLatencyMs,
  instanceLatencyModel,
  instanceMemory,
  latencyCoefficients,
  prefillBatch,
  prefillLatencyMs,
  saturatingPrefillTokens,
} from "./latency.js";
import { MODEL_SHAPES, deriveModel } from "./model-shapes.js";

const opt13 = deriveModel(MODEL_SHAPES["OPT-13B"]);

describe("latency model", () => {
  it("puts a 512-token OPT-13B prefill on an A100 near DistServe's fitted 66 ms (TP=1)", () => {
    const { totalMs } = prefillLatencyMs(opt13, "A100-80GB", { tp: 1, pp: 1 }, [512]);
    // ≈70 ms: 12.9 TFLOP at 60% of 312 TFLOP/s. Within 10% of the anchor.
    expect(Math.abs(totalMs - 66) / 66).toBeLessThan(0.1);
  });

  it("makes prefill compute-bound (time grows with tokens) and small-batch decode memory-bound (time ≈ weights / HBM)", () => {
    const short = prefillLatencyMs(opt13, "A100-80GB", { tp: 1, pp: 1 }, [1024]).totalMs;
    const long = prefillLatencyMs(opt13, "A100-80GB", { tp: 1, pp: 1 }, [2048]).totalMs;
    expect(long / short).toBeGreaterThan(1.9);
    const coeffs = latencyCoefficients("A100-80GB");
    const weightsMs = opt13.weightBytes / (coeffs.achievedHbmGBps * 1e6);
    const one = decodeStepLatencyMs(opt13, "A100-80GB", { tp: 1, pp: 1 }, [512]).totalMs;
    const eight = decodeStepLatencyMs(opt13, "A100-80GB", { tp: 1, pp: 1 }, Array(8).fill(512)).totalMs;
    expect(one).toBeGreaterThan(weightsMs);
    expect(one).toBeLessThan(weightsMs * 1.2);
    expect(eight / one).toBeLessThan(1.3); // batching decode is nearly free
  });

  it("charges a Sarathi mixed iteration the decodes' KV reads on top of the chunk's GEMMs (separate kernels)", () => {
    const coeffs = latencyCoefficients("A100-80GB");
    const lat = instanceLatencyModel(opt13, coeffs, { tp: 1, pp: 1 });
    const chunk = prefillBatch([256]);
    // 100 running decodes holding 1,000 tokens of KV each: 82 GB of KV, ≈64 ms of HBM time on an A100.
    const decodes = { newTokens: 100, attentionPairs: 100_000, kvReadTokens: 100_000, sequences: 100 };
    const mixed = {
      newTokens: chunk.newTokens + decodes.newTokens,
      attentionPairs: chunk.attentionPairs + decodes.attentionPairs,
      kvReadTokens: decodes.kvReadTokens,
      sequences: 1 + decodes.sequences,
    };
    const kvReadMs = (decodes.kvReadTokens * opt13.kvBytesPerToken) / (coeffs.achievedHbmGBps * 1e6);
    expect(kvReadMs).toBeGreaterThan(50);
    const chunkMs = lat.forward(chunk).totalMs;
    const mixedMs = lat.forward(mixed).totalMs;
    // The decodes' GEMM rows hide under the chunk's compute, their KV reads do not.
    expect(mixedMs - chunkMs).toBeGreaterThan(kvReadMs);
    expect(mixedMs).toBeLessThan(chunkMs + lat.forward(decodes).totalMs);
  });

  describe.each([
    ["OPT-13B", "A100-80GB"],
    ["OPT-66B", "H100-80GB"],
    ["Llama-3-70B", "H100-80GB"],
  ] as const)("%s on %s", (name, gpu) => {
    const model = deriveModel(MODEL_SHAPES[name]);
    const coeffs = latencyCoefficients(gpu);
    const batch = prefillBatch([1024]);
    const at = (tp: number, pp: number) => instanceLatencyModel(model, coeffs, { tp, pp }).forward(batch);
    it("TP cuts latency but by less than TP× (all-reduce); PP keeps latency and cuts the stage time", () => {
      const base = at(2, 1).totalMs;
      expect(at(8, 1).totalMs).toBeLessThan(base / 2);
      expect(at(8, 1).totalMs).toBeGreaterThan(base / 4);
      expect(at(2, 4).totalMs).toBeGreaterThanOrEqual(base * 0.99);
      expect(at(2, 4).bottleneckStageMs).toBeLessThan(base / 3);
    });
  });

  it("respects memory: OPT-175B does not fit one A100-80GB but fits eight", () => {
    const opt175 = deriveModel(MODEL_SHAPES["OPT-175B"]);
    const coeffs = latencyCoefficients("A100-80GB");
    expect(instanceMemory(opt175, coeffs, { tp: 1, pp: 1 }).kvCapacityTokens).toBe(0);
    expect(instanceMemory(opt175, coeffs, { tp: 4, pp: 1 }).kvCapacityTokens).toBe(0);
    const eight = instanceMemory(opt175, coeffs, { tp: 8, pp: 1 });
    expect(eight.weightBytesPerGpu).toBeLessThan(80 * 2 ** 30);
    expect(eight.kvCapacityTokens).toBeGreaterThan(2048);
  });

  it("uses measured overrides: doubling achieved TFLOP/s halves a compute-bound prefill", () => {
    const base = prefillLatencyMs(opt13, "H100-80GB", { tp: 1, pp: 1 }, [4096]).totalMs;
    const peak = latencyCoefficients("H100-80GB").achievedTflops;
    const faster = prefillLatencyMs(opt13, "H100-80GB", { tp: 1, pp: 1 }, [4096], { "H100-80GB": { achievedTflops: 2 * peak } }).totalMs;
    expect(faster / base).toBeGreaterThan(0.48);
    expect(faster / base).toBeLessThan(0.52);
  });

  it.each([
    ["unknown GPU", () => latencyCoefficients("B300"), /unknown GPU model "B300"/],
    ["negative override", () => latencyCoefficients("H100-80GB", { "H100-80GB": { achievedHbmGBps: -1 } }), /achievedHbmGBps for H100-80GB must be a positive number/],
    ["bad heads", () => deriveModel({ ...MODEL_SHAPES["OPT-13B"], heads: 7 }), /hiddenSize 5120 is not a multiple of heads 7/],
    ["no size", () => deriveModel({ name: "x", layers: 2, hiddenSize: 64, heads: 4, kvHeads: 4, vocabSize: 10, dtype: "bf16" }), /needs one of paramsBillions/],
  ])("gives a clear error for %s", (_name, call, message) => {
    expect(call).toThrow(message);
  });

  it("puts the prefill saturation point L_m in the few-hundred-token range DistServe profiles", () => {
    const lm = saturatingPrefillTokens(opt13, latencyCoefficients("A100-80GB"));
    expect(lm).toBeGreaterThanOrEqual(256);
    expect(lm).toBeLessThanOrEqual(1024);
  });
});
