import { describe, expect, it } from "vitest";
import {
  decodeStepLatencyMs,
  instanceMemory,
  latencyCoefficients,
  prefillLatencyMs,
} from "../../../../common/src/models/latency.js";
import { plannedOverrides, type PlannedGpuProfile } from "../../../../common/src/hardware/planned-profile.js";
import { deriveModel, MODEL_SHAPES, type ModelShape } from "../../../../common/src/models/model-shapes.js";
import { ServingEngine, ServingRole, type EngineConfig } from "./engine.js";
import { EngineConfigError, servingEngineConfig } from "./engine-config.js";
import { Outcome, type RequestResult, type RequestSink } from "./sequence.js";

class Recorder implements RequestSink {
  readonly tokens: { id: string; index: number; atMs: number }[] = [];
  readonly results: RequestResult[] = [];
  token(id: string, index: number, atMs: number): void {
    this.tokens.push({ id, index, atMs });
  }
  finish(result: RequestResult): void {
    this.results.push(result);
  }
}

const LLAMA_8B: ModelShape = MODEL_SHAPES["Llama-3-8B"];
const LLAMA_70B: ModelShape = MODEL_SHAPES["Llama-3-70B"];
const engineFor = (role: ServingRole, shape = LLAMA_8B, tp = 1, pp = 1, gpuModel = "H100-80GB") =>
  new ServingEngine(servingEngineConfig({ role, shape, parallelism: { tp, pp }, gpuModel }), 0);

describe("step times are the common latency model's for the pod's model, TP/PP and GPU", () => {
  it.each([
    { name: "Llama-3-8B TP1 on H100", shape: LLAMA_8B, tp: 1, pp: 1, gpu: "H100-80GB" },
    { name: "Llama-3-8B TP2 on A100", shape: LLAMA_8B, tp: 2, pp: 1, gpu: "A100-80GB" },
    { name: "Llama-3-70B TP4 PP2 on H200", shape: LLAMA_70B, tp: 4, pp: 2, gpu: "H200-141GB" },
    { name: "OPT-13B TP1 on A100", shape: MODEL_SHAPES["OPT-13B"] as ModelShape, tp: 1, pp: 1, gpu: "A100-80GB" },
  ])("$name", ({ shape, tp, pp, gpu }) => {
    const engine = engineFor(ServingRole.colocated, shape, tp, pp, gpu);
    const sink = new Recorder();
    expect(engine.submit({ requestId: "a", promptTokens: 700, maxOutputTokens: 3 }, sink, 0)).toEqual({
      accepted: true,
    });
    expect(engine.submit({ requestId: "b", promptTokens: 300, maxOutputTokens: 3 }, sink, 0)).toEqual({
      accepted: true,
    });
    engine.advance(1e9);
    const model = deriveModel(shape);
    const prefillMs = prefillLatencyMs(model, gpu, { tp, pp }, [700, 300]).totalMs;
    // After the prefill, each decode step reads the KV written so far: 700+300 positions, then 701+301.
    const decode1 = decodeStepLatencyMs(model, gpu, { tp, pp }, [700, 300]).totalMs;
    const decode2 = decodeStepLatencyMs(model, gpu, { tp, pp }, [701, 301]).totalMs;
    const at = (id: string) => sink.tokens.filter((t) => t.id === id).map((t) => t.atMs);
    for (const id of ["a", "b"]) {
      const [t0, t1, t2] = at(id);
      expect(t0).toBeCloseTo(prefillMs, 9);
      expect(t1! - t0!).toBeCloseTo(decode1, 9);
      expect(t2! - t1!).toBeCloseTo(decode2, 9);
    }
    expect(sink.results.map((r) => r.outcome)).toEqual([Outcome.completed, Outcome.completed]);
    const memory = instanceMemory(model, latencyCoefficients(gpu), { tp, pp });
    expect(engine.load(1e9).kvBlocksTotal).toBe(Math.floor(memory.kvCapacityTokens / 16));
  });

  it("a model that does not fit the GPUs is refused with the reason", () => {
    expect(() =>
      servingEngineConfig({
        role: ServingRole.colocated,
        shape: LLAMA_70B,
        parallelism: { tp: 1, pp: 1 },
        gpuModel: "A100-40GB",
      }),
    ).toThrow(EngineConfigError);
  });

  // The pod's GPUFLEET_GPU_PROFILE: the engine steps and sizes its KV with the coefficients the plan used.
  const profile: PlannedGpuProfile = {
    name: "h100-measured",
    gpuModel: "H100-80GB",
    coefficients: { achievedHbmGBps: 1500, kvReadGBps: 2000, perLayerOverheadUs: 20, memoryUtilization: 0.8 },
  };

  it("steps with the plan's GpuProfile when the pod carries one, not the shipped defaults", () => {
    const overrides = plannedOverrides(profile);
    const config = servingEngineConfig({
      role: ServingRole.colocated,
      shape: LLAMA_8B,
      parallelism: { tp: 1, pp: 1 },
      gpuModel: "H100-80GB",
      gpuProfile: profile,
    });
    const engine = new ServingEngine(config, 0);
    const sink = new Recorder();
    engine.submit({ requestId: "a", promptTokens: 500, maxOutputTokens: 3 }, sink, 0);
    engine.advance(1e9);
    const model = deriveModel(LLAMA_8B);
    const [t0, t1] = sink.tokens.map((t) => t.atMs);
    const profiled = decodeStepLatencyMs(model, "H100-80GB", { tp: 1, pp: 1 }, [500], overrides).totalMs;
    const shipped = decodeStepLatencyMs(model, "H100-80GB", { tp: 1, pp: 1 }, [500]).totalMs;
    expect(t0).toBeCloseTo(prefillLatencyMs(model, "H100-80GB", { tp: 1, pp: 1 }, [500], overrides).totalMs, 9);
    expect(t1! - t0!).toBeCloseTo(profiled, 9);
    expect(profiled / shipped).toBeGreaterThan(1.3); // the check above would catch the defaults
    const memory = instanceMemory(model, latencyCoefficients("H100-80GB", overrides), { tp: 1, pp: 1 });
    expect(config.kvCapacityTokens).toBe(memory.kvCapacityTokens);
  });

  it("refuses a GpuProfile of another GPU model than its node's", () => {
    expect(() =>
      servingEngineConfig({
        role: ServingRole.colocated,
        shape: LLAMA_8B,
        parallelism: { tp: 1, pp: 1 },
        gpuModel: "H200-141GB",
        gpuProfile: profile,
      }),
    ).toThrow(/GpuProfile h100-measured is for H100-80GB, but its node has H200-141GB GPUs/);
  });
});

describe("request lifecycle", () => {
  it("delivers tokens only when their step has ended", () => {
    const engine = engineFor(ServingRole.colocated);
    const sink = new Recorder();
    engine.submit({ requestId: "a", promptTokens: 512, maxOutputTokens: 4 }, sink, 0);
    expect(engine.nextEventMs()).toBeUndefined(); // the step starts on the next advance, at the arrival time
    engine.advance(0);
    const prefillEnd = engine.nextEventMs()!;
    engine.advance(prefillEnd - 0.001);
    expect(sink.tokens).toEqual([]);
    engine.advance(prefillEnd);
    expect(sink.tokens).toEqual([{ id: "a", index: 0, atMs: prefillEnd }]);
    expect(engine.load(prefillEnd)).toMatchObject({ runningRequests: 1, queueLength: 0, kvBlocksUsed: 32 + 1 });
  });

  it.each([
    {
      name: "empty id",
      req: { requestId: "", promptTokens: 1, maxOutputTokens: 1 },
      reason: /requestId/,
      code: "invalid",
    },
    {
      name: "zero prompt",
      req: { requestId: "x", promptTokens: 0, maxOutputTokens: 1 },
      reason: /promptTokens/,
      code: "invalid",
    },
    {
      name: "fractional output",
      req: { requestId: "x", promptTokens: 1, maxOutputTokens: 1.5 },
      reason: /maxOutputTokens/,
      code: "invalid",
    },
    {
      name: "longer than the context",
      req: { requestId: "x", promptTokens: 8000, maxOutputTokens: 500 },
      reason: /context of 8192/,
      code: "too-large",
    },
  ])("refuses $name with a reason and its code", ({ req, reason, code }) => {
    const result = engineFor(ServingRole.colocated).submit(req, new Recorder(), 0);
    expect(result.accepted).toBe(false);
    expect(!result.accepted && result.reason).toMatch(reason);
    expect(!result.accepted && result.code).toBe(code);
  });

  it("refuses with codes an HTTP front end can map: draining, wrong role, KV of another model", () => {
    const draining = engineFor(ServingRole.colocated);
    draining.drain();
    expect(draining.submit({ requestId: "a", promptTokens: 10, maxOutputTokens: 10 }, new Recorder(), 0)).toMatchObject(
      { accepted: false, code: "draining" },
    );
    expect(
      engineFor(ServingRole.decode).submit(
        { requestId: "a", promptTokens: 10, maxOutputTokens: 10 },
        new Recorder(),
        0,
      ),
    ).toMatchObject({ accepted: false, code: "wrong-role" });
    const handoff = {
      requestId: "h",
      promptTokens: 10,
      outputTokens: 1,
      maxOutputTokens: 5,
      priority: 0,
      blocks: 1,
      blockSizeTokens: 16,
      kvBytes: 10,
      model: "other",
    };
    expect(engineFor(ServingRole.decode).importKv(handoff, new Recorder(), 0)).toMatchObject({
      accepted: false,
      code: "incompatible-kv",
    });
  });

  it("counts running high-priority requests (priority above the default) for the gateway's headroom", () => {
    const engine = engineFor(ServingRole.colocated);
    engine.submit({ requestId: "hi", promptTokens: 100, maxOutputTokens: 50, priority: 1 }, new Recorder(), 0);
    engine.submit({ requestId: "lo", promptTokens: 100, maxOutputTokens: 50 }, new Recorder(), 0);
    expect(engine.load(0).highPriorityRunning).toBe(0); // both still waiting
    engine.advance(1);
    expect(engine.load(1)).toMatchObject({ runningRequests: 2, highPriorityRunning: 1 });
    engine.cancel("hi", 2);
    expect(engine.load(2).highPriorityRunning).toBe(0);
  });

  it("refuses a duplicate id, and a plain submit on a decode worker", () => {
    const engine = engineFor(ServingRole.colocated);
    engine.submit({ requestId: "a", promptTokens: 10, maxOutputTokens: 10 }, new Recorder(), 0);
    expect(engine.submit({ requestId: "a", promptTokens: 10, maxOutputTokens: 10 }, new Recorder(), 0)).toEqual({
      accepted: false,
      reason: "request a is already here",
      code: "duplicate",
    });
    expect(
      engineFor(ServingRole.decode).submit({ requestId: "a", promptTokens: 10, maxOutputTokens: 10 }, new Recorder(), 0)
        .accepted,
    ).toBe(false);
  });

  it("cancel ends a running request, frees its blocks and delivers nothing after", () => {
    const engine = engineFor(ServingRole.colocated);
    const sink = new Recorder();
    engine.submit({ requestId: "a", promptTokens: 512, maxOutputTokens: 100 }, sink, 0);
    engine.advance(0);
    engine.advance(engine.nextEventMs()!);
    expect(engine.cancel("a", engine.nextEventMs()! - 0.001)).toBe(true);
    engine.advance(1e6);
    expect(sink.tokens).toHaveLength(1);
    expect(sink.results).toMatchObject([{ requestId: "a", outcome: Outcome.cancelled, outputTokens: 1 }]);
    expect(engine.load(1e6)).toMatchObject({ kvBlocksUsed: 0, runningRequests: 0 });
    expect(engine.cancel("a", 1e6)).toBe(false);
  });

  it("drain admits nothing new and lets admitted requests finish; abort ends them all", () => {
    const engine = engineFor(ServingRole.colocated);
    const sink = new Recorder();
    engine.submit({ requestId: "a", promptTokens: 64, maxOutputTokens: 5 }, sink, 0);
    engine.drain();
    const refused = engine.submit({ requestId: "b", promptTokens: 64, maxOutputTokens: 5 }, sink, 0);
    expect(!refused.accepted && refused.reason).toMatch(/draining/);
    engine.advance(1e6);
    expect(sink.results).toMatchObject([{ requestId: "a", outcome: Outcome.completed, outputTokens: 5 }]);
    expect(engine.load(1e6).draining).toBe(true);

    const other = engineFor(ServingRole.colocated);
    const s2 = new Recorder();
    other.submit({ requestId: "x", promptTokens: 64, maxOutputTokens: 50 }, s2, 0);
    other.submit({ requestId: "y", promptTokens: 64, maxOutputTokens: 50 }, s2, 0);
    other.advance(0);
    other.advance(other.nextEventMs()!);
    expect(other.abortAll("operator abort", other.nextEventMs()!).sort()).toEqual(["x", "y"]);
    expect(s2.results.map((r) => [r.requestId, r.outcome, r.reason])).toEqual([
      ["x", Outcome.aborted, "operator abort"],
      ["y", Outcome.aborted, "operator abort"],
    ]);
    expect(other.load(1e6).kvBlocksUsed).toBe(0);
  });

  it("reports waiting demand in blocks and preemptions when the KV cache is oversubscribed", () => {
    const base = servingEngineConfig({
      role: ServingRole.colocated,
      shape: LLAMA_8B,
      parallelism: { tp: 1, pp: 1 },
      gpuModel: "H100-80GB",
    });
    const small: EngineConfig = { ...base, kvCapacityTokens: 16 * 40 }; // 40 blocks
    const engine = new ServingEngine(small, 0);
    const sink = new Recorder();
    for (let i = 0; i < 4; i++) engine.submit({ requestId: `r${i}`, promptTokens: 160, maxOutputTokens: 200 }, sink, 0);
    const before = engine.load(0);
    expect(before).toMatchObject({
      queueLength: 4,
      waitingDemandBlocks: 40,
      headOfLineDemandBlocks: 10,
      outstandingPromptTokens: 640,
    });
    engine.advance(60_000);
    const after = engine.load(60_000);
    expect(after.preemptionsTotal).toBeGreaterThan(0);
    expect(sink.results.filter((r) => r.outcome === Outcome.completed)).toHaveLength(4);
    expect(sink.tokens.filter((t) => t.id === "r3")).toHaveLength(200); // a preempted request still gets each token once
    expect(new Set(sink.tokens.filter((t) => t.id === "r3").map((t) => t.index)).size).toBe(200);
  });
});

describe("disaggregated roles: prefill holds KV for the hand-off, decode imports it by blocks", () => {
  it("prefill → export → import → release", () => {
    const prefill = engineFor(ServingRole.prefill);
    const decode = engineFor(ServingRole.decode);
    const sink = new Recorder();
    prefill.submit({ requestId: "a", promptTokens: 1000, maxOutputTokens: 10, priority: 2 }, sink, 0);
    prefill.advance(0);
    const end = prefill.nextEventMs()!;
    prefill.advance(end);
    expect(sink.tokens).toEqual([{ id: "a", index: 0, atMs: end }]);
    expect(sink.results).toMatchObject([{ requestId: "a", outcome: Outcome.prefilled, outputTokens: 1 }]);
    expect(prefill.load(end)).toMatchObject({
      runningRequests: 0,
      heldKvRequests: 1,
      heldKvBlocks: 63,
      kvBlocksUsed: 63,
    });
    expect(prefill.nextEventMs()).toBeUndefined(); // a held request never decodes here

    const handoff = prefill.exportKv("a");
    expect(handoff).toEqual({
      requestId: "a",
      promptTokens: 1000,
      outputTokens: 1,
      maxOutputTokens: 10,
      priority: 2,
      blocks: 63,
      blockSizeTokens: 16,
      kvBytes: 1000 * deriveModel(LLAMA_8B).kvBytesPerToken,
      model: "Llama-3-8B",
    });
    expect(decode.importKv(handoff, sink, end)).toEqual({ accepted: true });
    expect(prefill.releaseKv("a")).toBe(63);
    expect(prefill.load(end).kvBlocksUsed).toBe(0);
    expect(() => prefill.exportKv("a")).toThrow(/not holding KV/);

    decode.advance(1e6);
    const tokens = sink.tokens.filter((t) => t.id === "a").map((t) => t.index);
    expect(tokens).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sink.results[1]).toMatchObject({ requestId: "a", outcome: Outcome.completed, outputTokens: 10 });
    // The decode worker ran decode steps only: its first step is one decode over the 1000 imported positions.
    expect(sink.tokens[1]!.atMs - end).toBeCloseTo(
      decodeStepLatencyMs(deriveModel(LLAMA_8B), "H100-80GB", { tp: 1, pp: 1 }, [1000]).totalMs,
      9,
    );
  });

  it.each([
    { name: "on a prefill worker", role: ServingRole.prefill, change: {}, reason: /only a decode-role worker/ },
    { name: "of another model", role: ServingRole.decode, change: { model: "OPT-13B" }, reason: /model OPT-13B/ },
    {
      name: "with another block size",
      role: ServingRole.decode,
      change: { blockSizeTokens: 32 },
      reason: /block size 32/,
    },
    {
      name: "with nothing left to decode",
      role: ServingRole.decode,
      change: { outputTokens: 10 },
      reason: /outputTokens < maxOutputTokens/,
    },
  ])("import refused $name", ({ role, change, reason }) => {
    const handoff = {
      requestId: "a",
      promptTokens: 100,
      outputTokens: 1,
      maxOutputTokens: 10,
      priority: 0,
      blocks: 7,
      blockSizeTokens: 16,
      kvBytes: 1,
      model: "Llama-3-8B",
      ...change,
    };
    const result = engineFor(role).importKv(handoff, new Recorder(), 0);
    expect(!result.accepted && result.reason).toMatch(reason);
  });

  it("a one-token request completes on the prefill worker (nothing to hand off)", () => {
    const prefill = engineFor(ServingRole.prefill);
    const sink = new Recorder();
    prefill.submit({ requestId: "a", promptTokens: 100, maxOutputTokens: 1 }, sink, 0);
    prefill.advance(1e6);
    expect(sink.results).toMatchObject([{ outcome: Outcome.completed, outputTokens: 1 }]);
    expect(prefill.load(1e6).kvBlocksUsed).toBe(0);
  });
});
