import { describe, expect, it } from "vitest";
import type { GpuProfile } from "../crds/src/gpu-profile.js";
import type { ServingDeployment } from "../crds/src/serving-deployment.js";
import type { TrainingJob } from "../crds/src/training-job.js";
import type { ServingPlanInput, ServingPlanOk, ServingPlanResult } from "../operator/src/serving/distserve/planner.js";
import { clusterFromProfile } from "./cluster.js";
import { render, servingTable, trainingTable } from "./format.js";
import { previewServing } from "./plan-serving.js";
import { previewTraining } from "./plan-training.js";
import { loadResourceFile } from "./resources.js";

const example = (file: string) => loadResourceFile(new URL(`../examples/${file}`, import.meta.url).pathname)[0]!.object;

const pool = (tp: number, replicas: number, goodputPerInstance: number) => ({
  tp,
  pp: 1,
  replicas,
  gpusPerReplica: tp,
  goodputPerInstance,
});
/**
 * A planner answer of the shape planServing gives (the preview is about presenting it; the planner has its own tests).
 */
const disaggregatedAnswer: ServingPlanOk = {
  ok: true,
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  prefill: pool(1, 2, 34.25),
  decode: pool(1, 1, 58.68),
  affinity: "high",
  goodputPerGpu: 20.3166,
  predictedAttainmentPercent: 99,
  totalGpus: 3,
  colocated: { ...pool(1, 1, 21.39), policy: "chunked", batchTokens: 1024, goodputPerGpu: 21.39 },
  disaggregated: null,
  alternatives: {
    disaggregated: {
      prefill: pool(1, 1, 34.25),
      decode: pool(1, 1, 58.68),
      affinity: "high",
      goodputPerGpu: 20.3166,
      unit: { prefill: 5, decode: 3, gpus: 8 },
    },
    vllm: { ...pool(1, 1, 19), policy: "vllm", batchTokens: 896, goodputPerGpu: 19 },
    chunked: { ...pool(1, 1, 21.39), policy: "chunked", batchTokens: 1024, goodputPerGpu: 21.39 },
  },
  placement: [],
  gpusByNode: [{ nodeName: "h100-ib-0", gpus: 3 }],
  explanation: "x on H100-80GB: disaggregated; goodput per GPU: …",
};

describe("previewServing", () => {
  it("gives the planner the operator's input and shows status.plan, the alternatives and what bounded it", async () => {
    const seen: ServingPlanInput[] = [];
    const plan = async (input: ServingPlanInput): Promise<ServingPlanResult> => (seen.push(input), disaggregatedAnswer);
    const sd = example("llama31-8b-disaggregated.yaml") as ServingDeployment;
    const p = await previewServing(sd, await clusterFromProfile("default"), { plan });
    // Only the spec's GPU model's nodes, all free: what the operator's executor passes on an empty cluster.
    expect(seen[0]!.nodes.map((n) => n.gpuModel)).toEqual(Array(8).fill("H100-80GB"));
    expect(seen[0]!.nodes.every((n) => n.gpusFree === 8)).toBe(true);
    expect(seen[0]).toMatchObject({
      mode: "disaggregated",
      gpuModel: "H100-80GB",
      workload: { arrivalRatePerSec: 10, lengths: "chatbot" },
    });
    expect(p.plan).toEqual({
      mode: "disaggregated",
      gpuModel: "H100-80GB",
      affinity: "high",
      totalGpus: 3,
      goodputPerGpu: 20.3166,
      predictedAttainmentPercent: 99,
      colocatedGoodputPerGpu: 21.39,
      explanation: disaggregatedAnswer.explanation,
      prefill: { tp: 1, pp: 1, replicas: 2, gpus: 2 },
      decode: { tp: 1, pp: 1, replicas: 1, gpus: 1 },
    });
    expect(p.planSummary).toBe("disagg P2×TP1 D1×TP1 (3 GPU)");
    expect(p.alternatives.map((a) => [a.kind, a.chosen, a.goodputPerGpu])).toEqual([
      ["disaggregated", true, 20.317],
      ["vllm", false, 19],
      ["chunked", false, 21.39],
    ]);
    expect(p.bounds.map((b) => [b.limit, b.binding])).toEqual([
      ["SLO", true],
      ["memory", false],
      ["capacity", false],
    ]);
    expect(p.bounds[0]!.detail).toMatch(
      /one prefill TP1×PP1 instance keeps them up to 34\.25 req\/s, one decode TP1×PP1 up to 58\.68 req\/s; 10 req\/s needs 2 \+ 1/,
    );
    expect(p.bounds[2]!.detail).toBe("the plan takes 3 of 64 free H100-80GB GPUs");
    expect(p.gpuProfile).toMatchObject({ gpuModel: "H100-80GB", memoryGiB: 80, peakTflops: 989 });
    const text = servingTable(p);
    expect(text).toContain("PLAN  disagg P2×TP1 D1×TP1 (3 GPU)");
    expect(text).toMatch(/\*\s+disaggregated\s+P TP1×PP1 \+ D TP1×PP1, high affinity \(unit 5P:3D, 8 GPU\)\s+20\.317/);
    expect(JSON.parse(render(p, "json", () => ""))).toEqual(JSON.parse(JSON.stringify(p)));
  });

  it("plans with the cluster's GpuProfile the operator would pick, and names it", async () => {
    const seen: ServingPlanInput[] = [];
    const answer: ServingPlanOk = { ...disaggregatedAnswer, gpuProfile: "h100-measured" };
    const plan = async (input: ServingPlanInput): Promise<ServingPlanResult> => (seen.push(input), answer);
    const sd = example("llama31-8b-disaggregated.yaml") as ServingDeployment;
    const measured: GpuProfile = {
      apiVersion: "gpufleet.io/v1alpha1",
      kind: "GpuProfile",
      metadata: { name: "h100-measured" },
      spec: {
        gpuModel: "H100-80GB",
        engine: { name: "vllm", imagePrefix: "vllm/vllm-openai" },
        coefficients: { achievedHbmGBps: 1500 },
      },
    };
    const cluster = await clusterFromProfile("default");
    const p = await previewServing(sd, cluster, { plan, gpuProfiles: [measured] });
    // The planner input carries the profile exactly as the operator's executor builds it (plannerInput).
    expect(seen[0]!.gpuProfiles).toEqual({ "H100-80GB": "h100-measured" });
    expect(seen[0]!.coefficientOverrides?.["H100-80GB"]).toMatchObject({ achievedHbmGBps: 1500 });
    expect(p.gpuProfile).toMatchObject({ name: "h100-measured", gpuModel: "H100-80GB", achievedHbmGBps: 1500 });
    expect(servingTable(p)).toContain("GPU PROFILE  GpuProfile h100-measured, H100-80GB:");
    // A profile for another engine image is not the operator's pick: the shipped defaults, and the table says so.
    const other = { ...measured, spec: { ...measured.spec, engine: { name: "x", imagePrefix: "registry.example/x" } } };
    const q = await previewServing(sd, cluster, { plan: async () => disaggregatedAnswer, gpuProfiles: [other] });
    expect(q.gpuProfile?.name).toBeUndefined();
    expect(q.gpuProfile?.achievedHbmGBps).not.toBe(1500);
    expect(servingTable(q)).toContain("GPU PROFILE  shipped defaults, H100-80GB:");
  });

  it("says why there is no plan as the Planned condition would", async () => {
    const plan = async (): Promise<ServingPlanResult> => ({
      ok: false,
      reason: "InsufficientCapacity",
      message: "needs 90 H100-80GB GPUs …; missing 26",
    });
    const p = await previewServing(
      example("llama3-8b-chatbot.yaml") as ServingDeployment,
      await clusterFromProfile("default"),
      { plan },
    );
    expect(p.plan).toBeUndefined();
    expect(p.failure).toEqual({ reason: "InsufficientCapacity", message: "needs 90 H100-80GB GPUs …; missing 26" });
    expect(p.bounds).toEqual([{ limit: "capacity", binding: true, detail: "needs 90 H100-80GB GPUs …; missing 26" }]);
    expect(servingTable(p)).toContain("NO PLAN  InsufficientCapacity: needs 90 H100-80GB GPUs");
  });

  it("stops at the spec checks before planning (no node of the GPU model)", async () => {
    const sd = example("llama3-8b-chatbot.yaml") as ServingDeployment;
    const p = await previewServing(
      { ...sd, spec: { ...sd.spec, gpu: { model: "H200-141GB" } } },
      await clusterFromProfile("default"),
      { plan: () => Promise.reject(new Error("not called")) },
    );
    expect(p.failure?.reason).toBe("NoMatchingNodes");
  });

  it("plans on a trace instead of the spec's lengths", async () => {
    const seen: ServingPlanInput[] = [];
    const trace = {
      path: "t.csv",
      records: [
        { promptTokens: 100, outputTokens: 10 },
        { promptTokens: 9000, outputTokens: 20 },
      ],
    };
    await previewServing(example("llama3-8b-chatbot.yaml") as ServingDeployment, await clusterFromProfile("default"), {
      plan: async (i) => (seen.push(i), disaggregatedAnswer),
      trace,
    });
    expect(seen[0]!.workload.lengths).toEqual({ trace: trace.records });
    expect(seen[0]!.model.maxContextTokens).toBe(9020);
  });
});

describe("previewTraining", () => {
  it("places the examples/ job with Holmes on the default profile, inside the InfiniBand island", async () => {
    const p = previewTraining(example("gpt-7b-holmes.yaml") as TrainingJob, await clusterFromProfile("default"));
    expect(p.strategy).toBe("holmes");
    expect(p.placement).toMatchObject({ islands: ["ib-a"], ranksPerIsland: { "ib-a": 32 }, layersPerStage: [16, 16] });
    expect(p.placement!.predictedStepMs).toBeLessThan(p.placement!.obliviousStepMs);
    expect(p.stages.map((s) => [s.stage, s.layers, s.dpTransport, s.nextTransport])).toEqual([
      [0, "0–15", "infiniband", "infiniband"],
      [1, "16–31", "infiniband", null],
    ]);
    expect(p.ncclGroups).toEqual([
      {
        nodes: ["h100-ib-0", "h100-ib-1", "h100-ib-2", "h100-ib-3"],
        env: { NCCL_IB_HCA: "=mlx5_0,mlx5_1,mlx5_2,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_7" },
      },
    ]);
    expect(trainingTable(p)).toMatch(/predicted step [\d.]+ ms vs NIC-oblivious [\d.]+ ms \([\d.]+× faster\)/);
  });

  it("says what is missing when the gang does not fit", async () => {
    const job = example("gpt-7b-holmes.yaml") as TrainingJob;
    const p = previewTraining(
      { ...job, spec: { ...job.spec, nodes: 16, parallelism: { tp: 8, pp: 2, dp: 8 } } },
      await clusterFromProfile("default"),
    );
    expect(p.failure?.reason).toBe("InsufficientCapacity");
    expect(trainingTable(p)).toMatch(/^NO PLACEMENT {2}InsufficientCapacity: needs 16 nodes/m);
  });
});
