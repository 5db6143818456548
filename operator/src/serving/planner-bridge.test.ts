import { describe, expect, it } from "vitest";
import type { ServingDeploymentSpec } from "../../../crds/src/serving-deployment.js";
import type { NodeCapacity } from "../cluster/capacity.js";
import { deriveModel, MODEL_SHAPES } from "../../../common/src/models/model-shapes.js";
import type { ServingPlanOk } from "./distserve/planner.js";
import {
  clusterNodes,
  modelShape,
  placementNodes,
  plannerInput,
  toStatusPlan,
  workloadLengths,
} from "./planner-bridge.js";
import type { ObservedPod } from "./rollout.js";

const llama: ServingDeploymentSpec["model"] = {
  name: "llama-3-8b",
  layers: 32,
  hiddenSize: 4096,
  heads: 32,
  kvHeads: 8,
  vocabSize: 128256,
  intermediateSize: 14336,
  dtype: "bf16",
  paramsBillions: 8.03,
};

function node(name: string, over: Partial<NodeCapacity> = {}): NodeCapacity {
  return {
    nodeName: name,
    gpuModel: "H100-80GB",
    gpuCount: 8,
    nicType: "infiniband",
    nicCount: 8,
    nicBandwidthGbps: 400,
    gpusAllocatable: 8,
    gpusFree: 8,
    schedulable: true,
    isolated: false,
    ...over,
  } as NodeCapacity;
}

function pod(nodeName: string, gpus: number, counted: boolean): ObservedPod {
  return {
    name: `p-${nodeName}-${gpus}`,
    hash: "h",
    role: "decode",
    index: 0,
    worker: 0,
    groupKey: "decode-0",
    groupPods: 1,
    instancePods: 1,
    nodeName,
    gpus,
    ready: counted,
    failed: false,
    deleting: false,
    unschedulable: false,
    counted,
  };
}

describe("modelShape", () => {
  it("infers a gated MLP when its parameter count is the closer one (Llama-3-8B)", () => {
    const shape = modelShape(llama);
    expect(shape.gatedMlp).toBe(true);
    expect(deriveModel(shape).layerParams).toBe(deriveModel(MODEL_SHAPES["Llama-3-8B"]).layerParams);
  });

  it("infers a standard MLP for OPT-13B and defaults kvHeads to heads", () => {
    const opt = {
      name: "opt",
      layers: 40,
      hiddenSize: 5120,
      heads: 40,
      vocabSize: 50272,
      intermediateSize: 20480,
      dtype: "fp16" as const,
      paramsBillions: 12.85,
    };
    expect(modelShape(opt)).toMatchObject({ gatedMlp: false, kvHeads: 40 });
  });
});

describe("workloadLengths and plannerInput", () => {
  const spec = (workload: ServingDeploymentSpec["workload"]): ServingDeploymentSpec => ({
    model: llama,
    slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
    workload,
    gpu: { model: "H100-80GB" },
    mode: "auto",
    engine: { image: "x", args: [], port: 8000, env: [] },
    scaling: { minInstances: 1, maxGpus: 16 },
  });

  it.each<[string, ServingDeploymentSpec["workload"], unknown]>([
    ["a preset", { arrivalRatePerSec: 1, preset: "summarization" }, "summarization"],
    [
      "distributions",
      { arrivalRatePerSec: 1, promptTokens: { mean: 100, max: 400 }, outputTokens: { mean: 50 } },
      { prompt: { mean: 100, max: 400 }, output: { mean: 50 } },
    ],
  ])("maps %s", (_name, workload, lengths) => {
    expect(workloadLengths(workload)).toEqual(lengths);
  });

  it("uses the trace read from the ConfigMap and widens the context to its longest request", () => {
    const trace = [
      { promptTokens: 6000, outputTokens: 1000 },
      { promptTokens: 10, outputTokens: 5 },
    ];
    const input = plannerInput(spec({ arrivalRatePerSec: 2, traceRef: { configMapName: "t", key: "csv" } }), [], trace);
    expect(input.workload.lengths).toEqual({ trace });
    expect(input.model.maxContextTokens).toBe(7000);
    expect(input).toMatchObject({
      gpuModel: "H100-80GB",
      maxGpus: 16,
      mode: "auto",
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
    });
    expect(() => workloadLengths({ arrivalRatePerSec: 2, traceRef: { configMapName: "t", key: "csv" } })).toThrow(
      /traceRef t\/csv was not read/,
    );
  });
});

describe("plannerInput with GpuProfiles", () => {
  const spec = {
    model: llama,
    slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
    workload: { arrivalRatePerSec: 1, preset: "chatbot" as const },
    gpu: { model: "H100-80GB" as const },
    mode: "auto" as const,
    engine: { image: "vllm/vllm-openai:v0.11.0", args: [], port: 8000, env: [] },
    scaling: { minInstances: 1 },
  } as ServingDeploymentSpec;
  const profile = (name: string, gpuModel: string, imagePrefix?: string) => ({
    metadata: { name },
    spec: {
      gpuModel,
      engine: { name: "e", ...(imagePrefix ? { imagePrefix } : {}) },
      coefficients: { achievedTflops: 500 },
    },
  });

  it("passes the applying profile's coefficients per GPU model and its name", () => {
    const i = plannerInput(spec, [], undefined, [
      profile("h100-vllm", "H100-80GB", "vllm/"),
      profile("h100-sglang", "H100-80GB", "lmsys/"),
      profile("a100-any", "A100-80GB"),
    ]);
    expect(i.gpuProfiles).toEqual({ "H100-80GB": "h100-vllm", "A100-80GB": "a100-any" });
    expect(i.coefficientOverrides).toEqual({
      "H100-80GB": { achievedTflops: 500 },
      "A100-80GB": { achievedTflops: 500 },
    });
  });

  it("leaves the shipped defaults alone without a profile that applies", () => {
    const i = plannerInput(spec, [], undefined, [profile("h100-sglang", "H100-80GB", "lmsys/")]);
    expect(i.gpuProfiles).toBeUndefined();
    expect(i.coefficientOverrides).toBeUndefined();
  });
});

describe("clusterNodes and placementNodes", () => {
  const nodes = [
    node("a", { gpusFree: 2 }),
    node("b", { gpusFree: 0, schedulable: false }),
    node("c", { gpuModel: "A100-80GB" }),
    node("d", { gpusFree: 5 }),
  ];
  const own = [pod("a", 4, true), pod("d", 1, false)];

  it("gives the deployment's own counted GPUs back for planning, on schedulable nodes of allowed models", () => {
    expect(clusterNodes(nodes, ["H100-80GB"], own).map((n) => [n.nodeName, n.gpusFree, n.gpuCount])).toEqual([
      ["a", 6, 8],
      ["d", 5, 8],
    ]);
  });

  it("does not hand back GPUs others hold on an overcommitted node (our pod pinned there waits in vain)", () => {
    // 8 GPUs held by a training gang plus our 1-GPU pod pinned to the same node: 9 requested on an 8-GPU node.
    const full = node("e", { gpusFree: 0, gpusRequested: 9 });
    expect(clusterNodes([full], ["H100-80GB"], [pod("e", 1, true)]).map((n) => [n.nodeName, n.gpusFree])).toEqual([
      ["e", 0],
    ]);
  });

  it("takes the deployment's not yet counted pods out of what new pods may use", () => {
    expect(placementNodes(nodes, "H100-80GB", own)).toEqual([
      { nodeName: "a", gpusFree: 2 },
      { nodeName: "d", gpusFree: 4 },
    ]);
  });
});

describe("toStatusPlan", () => {
  // Only the fields toStatusPlan reads; the planner's result type grows with the benchmark's needs.
  const result = (over: Partial<ServingPlanOk>): ServingPlanOk =>
    ({
      ok: true,
      mode: "disaggregated",
      gpuModel: "A100-80GB",
      affinity: "low",
      prefill: { tp: 4, pp: 2, replicas: 2, gpusPerReplica: 8, goodputPerInstance: 3 },
      decode: { tp: 1, pp: 2, replicas: 4, gpusPerReplica: 2, goodputPerInstance: 2 },
      goodputPerGpu: 0.123456789,
      predictedAttainmentPercent: 95.55555,
      totalGpus: 24,
      colocated: {
        tp: 2,
        pp: 4,
        replicas: 1,
        gpusPerReplica: 8,
        goodputPerInstance: 2,
        policy: "chunked",
        batchTokens: 512,
        goodputPerGpu: 0.25,
      },
      disaggregated: null,
      placement: [],
      gpusByNode: [],
      explanation: "llama on A100-80GB: disaggregated; more",
      ...over,
    }) as ServingPlanOk;

  it("records pools, predictions and the colocated baseline", () => {
    const r = toStatusPlan(result({}), { minInstances: 1 });
    expect(r).toEqual({
      ok: true,
      plan: {
        mode: "disaggregated",
        gpuModel: "A100-80GB",
        affinity: "low",
        prefill: { tp: 4, pp: 2, replicas: 2, gpus: 16 },
        decode: { tp: 1, pp: 2, replicas: 4, gpus: 8 },
        totalGpus: 24,
        goodputPerGpu: 0.1235,
        predictedAttainmentPercent: 95.5556,
        colocatedGoodputPerGpu: 0.25,
        explanation: "llama on A100-80GB: disaggregated; more",
      },
    });
  });

  it("raises pools to minInstances, low-affinity plans by whole units", () => {
    const r = toStatusPlan(result({}), { minInstances: 3 });
    // units of 1 prefill + 2 decode: three units.
    expect(r.ok && [r.plan.prefill?.replicas, r.plan.decode?.replicas, r.plan.totalGpus]).toEqual([3, 6, 36]);
    const c = toStatusPlan(result({ mode: "colocated", prefill: null, decode: null, affinity: null }), {
      minInstances: 2,
    });
    expect(c.ok && [c.plan.colocated, c.plan.totalGpus, c.plan.affinity]).toEqual([
      { tp: 2, pp: 4, replicas: 2, gpus: 16 },
      16,
      undefined,
    ]);
  });

  it("names the GpuProfile the plan used, and none when it used the shipped defaults", () => {
    const r = toStatusPlan(result({ gpuProfile: "a100-vllm" }), { minInstances: 1 });
    expect(r.ok && r.plan.gpuProfile).toBe("a100-vllm");
    const shipped = toStatusPlan(result({}), { minInstances: 1 });
    expect(shipped.ok && "gpuProfile" in shipped.plan).toBe(false);
  });

  it("refuses a plan above maxInstances, naming the pool", () => {
    expect(toStatusPlan(result({}), { minInstances: 1, maxInstances: 3 })).toEqual({
      ok: false,
      message:
        "the plan needs 4 decode instances for llama on A100-80GB: disaggregated, more than scaling.maxInstances 3",
    });
  });
});
