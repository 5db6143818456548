import type { CoreV1Event, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ServingDeployment } from "../crds/src/serving-deployment.js";
import type { TrainingJob } from "../crds/src/training-job.js";
import { OperatorMetrics } from "../operator/src/metrics.js";
import { ago, explainServing, explainTraining } from "./explain.js";
import { table } from "./format.js";
import { topTable, topView } from "./top.js";

const NOW = Date.parse("2026-12-02T12:00:00Z");
const at = (secondsAgo: number) => new Date(NOW - secondsAgo * 1000).toISOString();

const sd: ServingDeployment = {
  apiVersion: "gpufleet.io/v1alpha1",
  kind: "ServingDeployment",
  metadata: { name: "chat", namespace: "llm", generation: 3 },
  spec: {
    model: { name: "m", layers: 32, hiddenSize: 4096, heads: 32, vocabSize: 128256, dtype: "bf16", paramsBillions: 8 },
    slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
    workload: { arrivalRatePerSec: 10, preset: "chatbot" },
    gpu: {},
    mode: "auto",
    engine: { kind: "vllm", image: "vllm/vllm-openai:v0.11.0", args: [], port: 8000, env: [] },
    scaling: { minInstances: 1, autoscale: true },
  },
  status: {
    observedGeneration: 2,
    phase: "Available",
    ready: "2/2",
    planSummary: "disagg P1×TP1 D1×TP1 (2 GPU)",
    plan: {
      mode: "disaggregated",
      gpuModel: "H100-80GB",
      affinity: "high",
      totalGpus: 2,
      goodputPerGpu: 20.3,
      predictedAttainmentPercent: 100,
      colocatedGoodputPerGpu: 21.4,
      explanation: "m on H100-80GB: disaggregated; goodput per GPU: disaggregated 20.317 vs colocated 21.387",
    },
    scaling: {
      planHash: "h",
      generation: 2,
      desired: { prefill: 1, decode: 1 },
      lastDecision: { kind: "up", role: "decode", reason: "TPOT attainment 80% < 90%", time: at(300) },
    },
    conditions: [
      {
        type: "Planned",
        status: "True",
        reason: "Planned",
        message: "disagg P1×TP1 D1×TP1 (2 GPU)",
        lastTransitionTime: at(600),
        observedGeneration: 2,
      },
      {
        type: "Available",
        status: "True",
        reason: "AllInstancesReady",
        message: "2/2",
        lastTransitionTime: at(30),
        observedGeneration: 3,
      },
    ],
  },
};

const events: CoreV1Event[] = [
  {
    metadata: {},
    involvedObject: {},
    type: "Normal",
    reason: "PlanChanged",
    message: "new plan disagg P1×TP1 D1×TP1",
    lastTimestamp: at(600) as never,
    count: 1,
  },
  {
    metadata: {},
    involvedObject: {},
    type: "Normal",
    reason: "MigrationCompleted",
    message: "request r1 moved d0 → d1 in 12 ms",
    lastTimestamp: at(60) as never,
    count: 3,
  },
];
const pod = (name: string, role: string, ready: boolean): V1Pod => ({
  metadata: { name, labels: { "gpufleet.io/role": role, "gpufleet.io/instance": "0" } },
  spec: { nodeName: "h100-ib-0", containers: [] },
  status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

describe("explainServing", () => {
  const text = explainServing(sd, events, [pod("chat-h-p0", "prefill", true), pod("chat-h-d0", "decode", false)], NOW);

  it.each([
    ["the header with phase and readiness", /^ServingDeployment llm\/chat: Available, 2\/2 instances ready$/m],
    ["that the newest spec is not acted on yet", /has seen generation 2 of 3/],
    ["the engine", /engine: vllm \(vllm\/vllm-openai:v0\.11\.0\)/],
    [
      "why this plan, from status.plan",
      /WHY THIS PLAN {2}disagg P1×TP1 D1×TP1 \(2 GPU\)\n {2}predicted 20\.3 req\/s per GPU \(best colocated: 21\.4\), attainment 100%\n {2}- m on H100-80GB: disaggregated\n {2}- goodput per GPU/,
    ],
    ["the autoscaler's last decision", /last decision 5m ago: up decode: TPOT attainment 80% < 90%/],
    ["the pods and their readiness", /PODS {2}1\/2 ready[\s\S]*chat-h-d0\s+decode 0\s+h100-ib-0\s+Running\s+not ready/],
    ["stale conditions", /Planned\s+True\s+Planned\s+10m ago\s+\(stale\) disagg/],
    [
      "migrations and Events oldest first",
      /MIGRATIONS {2}1 Event[\s\S]*10m ago\s+Normal\s+PlanChanged[\s\S]*60s ago\s+Normal\s+MigrationCompleted\s+×3\s+request r1/,
    ],
  ])("tells %s", (_name, pattern) => expect(text).toMatch(pattern));
});

describe("explainTraining", () => {
  const job = {
    metadata: { name: "gpt", namespace: "default", generation: 1 },
    spec: { faultPolicy: { maxRestarts: 3 } },
    status: {
      phase: "Running",
      ready: "4/4",
      restarts: 1,
      lastCheckpointStep: 500,
      planSummary: "holmes: 32 GPUs on 4 nodes",
      placement: {
        islands: ["ib-a"],
        ranksPerIsland: { "ib-a": 32 },
        layersPerStage: [16, 16],
        nodes: ["a", "b", "c", "d"],
        predictedStepMs: 4940.5,
        obliviousStepMs: 14922.8,
      },
      faults: [
        {
          id: "0-slow-link-b",
          attempt: 0,
          faultClass: "slow-link",
          action: "mark-nic",
          node: "b",
          nic: "mlx5_3",
          peerNode: "c",
          ranks: [8],
          communicator: "dp0",
          collective: "AllReduce",
          sequence: 41,
          evidenceRanks: [8, 16],
          detail: "send 8→16 took 3.1× its baseline",
          timesMs: {},
          firstAffectedTime: at(900),
          detectedTime: at(890),
          actedTime: at(889),
        },
      ],
      conditions: [],
    },
  } as unknown as TrainingJob;
  const text = explainTraining(job, [], [], NOW);
  it("tells the placement, the fault and what was isolated", () => {
    expect(text).toMatch(/^TrainingJob default\/gpt: Running, 4\/4 pods running, 1 restart\(s\) of 3 allowed$/m);
    expect(text).toContain("last complete checkpoint: step 500");
    expect(text).toContain("predicted step 4940.5 ms vs 14922.8 ms NIC-oblivious");
    expect(text).toMatch(
      /slow-link on node b, NIC mlx5_3, peer c → mark-nic \(dp0 AllReduce #41, ranks 8\)\n {4}send 8→16 took 3\.1× its baseline/,
    );
    expect(text).toContain("EVENTS  none");
  });
});

describe("topView", () => {
  it("reads the operator's own metrics page (OperatorMetrics) into rows per deployment and job", async () => {
    const m = new OperatorMetrics({ defaultMetrics: false });
    const id = { namespace: "llm", name: "chat" };
    m.servingGoodputPerGpu.set({ ...id, plan: "chosen" }, 20.3);
    m.servingGoodputPerGpu.set({ ...id, plan: "colocated" }, 21.4);
    m.servingGpus.set(id, 2);
    m.servingInstances.set({ ...id, state: "ready" }, 1);
    m.servingInstances.set({ ...id, state: "desired" }, 2);
    m.servingQueuedRequests.set({ ...id, role: "prefill" }, 4);
    m.servingQueuedRequests.set({ ...id, role: "decode" }, 1);
    m.servingRunningRequests.set({ ...id, role: "decode" }, 30);
    m.servingSloAttainmentRatio.set({ ...id, role: "prefill", slo: "ttft" }, 0.97);
    m.servingSloAttainmentRatio.set({ ...id, role: "decode", slo: "tpot" }, 0.88);
    m.servingMigrationsTotal.inc({ ...id, outcome: "completed" }, 5);
    m.servingMigrationsTotal.inc({ ...id, outcome: "rejected" }, 1);
    m.trainingPredictedStepSeconds.set({ namespace: "default", name: "gpt", placement: "holmes" }, 4.9405);
    m.trainingPredictedStepSeconds.set({ namespace: "default", name: "gpt", placement: "oblivious" }, 14.9228);
    m.trainingRestarts.set({ namespace: "default", name: "gpt" }, 1);
    m.trainingFaultsTotal.inc({ class: "slow-link" });
    m.trainingIsolationsTotal.inc({ target: "nic" });
    const v = topView(await m.registry.metrics());
    expect(v.serving).toEqual([
      {
        namespace: "llm",
        name: "chat",
        goodputPerGpu: 20.3,
        colocatedGoodputPerGpu: 21.4,
        gpus: 2,
        ready: 1,
        desired: 2,
        queued: 5,
        running: 30,
        attainment: 0.88,
        migrationsCompleted: 5,
        migrationsFailed: 1,
        migrationsInFlight: 0,
      },
    ]);
    expect(v.training).toMatchObject([{ namespace: "default", name: "gpt", restarts: 1 }]);
    expect(v.training[0]!.predictedStepMs).toBeCloseTo(4940.5, 6);
    expect(v.training[0]!.obliviousStepMs).toBeCloseTo(14922.8, 6);
    expect(v.faultsByClass["slow-link"]).toBe(1);
    expect(v.isolations).toEqual({ node: 0, nic: 1 });
    const text = topTable(v, "http://op/metrics");
    expect(text).toMatch(/llm\s+chat\s+20\.30\s+21\.40\s+2\s+1\/2\s+5\s+30\s+88\.0%\s+5\/1\/0/);
    expect(text).toMatch(/default\s+gpt\s+4940\.5\s+14922\.8\s+1\s+-/);
  });
});

describe("helpers", () => {
  it("aligns columns and ages", () => {
    expect(
      table([
        ["A", "BB"],
        ["ccc", "d"],
      ]),
    ).toBe("A     BB\nccc   d");
    expect(ago(at(30), NOW)).toBe("30s ago");
    expect(ago(at(7200), NOW)).toBe("2h ago");
    expect(ago(undefined, NOW)).toBe("-");
  });
});
