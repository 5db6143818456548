import { describe, expect, it } from "vitest";
import type { ServingDeployment } from "../../../crds/src/serving-deployment.js";
import { planGroups, planHash, planSummary, placeGroups, podObject, serviceObjects, type StatusPlan } from "./pools.js";

const pool = (tp: number, pp: number, replicas: number) => ({ tp, pp, replicas, gpus: tp * pp * replicas });

const colocated: StatusPlan = {
  mode: "colocated",
  gpuModel: "H100-80GB",
  colocated: pool(1, 1, 3),
  totalGpus: 3,
  goodputPerGpu: 21,
};
const high: StatusPlan = {
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  affinity: "high",
  prefill: pool(2, 1, 2),
  decode: pool(1, 1, 4),
  totalGpus: 8,
  goodputPerGpu: 12,
};
const pipelined: StatusPlan = {
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  affinity: "high",
  prefill: pool(1, 4, 1),
  decode: pool(1, 1, 1),
  totalGpus: 5,
  goodputPerGpu: 12,
};
// The planner's A100 chatbot answer: per stage a unit needs 4 + 1 GPUs, so two units' stages cannot share a node.
const low: StatusPlan = {
  mode: "disaggregated",
  gpuModel: "A100-80GB",
  affinity: "low",
  prefill: pool(4, 2, 2),
  decode: pool(1, 2, 4),
  totalGpus: 24,
  goodputPerGpu: 6,
};

const engine = {
  image: "vllm/vllm-openai:v0.11.0",
  args: ["--max-model-len", "8192"],
  port: 8000,
  env: [{ name: "VLLM_LOGGING_LEVEL", value: "INFO" }],
};

function sd(): ServingDeployment {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name: "chat", namespace: "llm", uid: "uid-1" },
    spec: {
      model: {
        name: "llama-3-8b",
        layers: 32,
        hiddenSize: 4096,
        heads: 32,
        kvHeads: 8,
        vocabSize: 128256,
        dtype: "bf16",
        paramsBillions: 8,
      },
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
      workload: { arrivalRatePerSec: 10, preset: "chatbot" },
      gpu: {},
      mode: "auto",
      engine: {
        ...engine,
        env: [
          { name: "GPUFLEET_TP", value: "user" },
          { name: "HF_TOKEN_PATH", value: "/secrets/hf" },
        ],
      },
      scaling: { minInstances: 1 },
    },
  };
}

const nodes = (...free: number[]) => free.map((gpusFree, i) => ({ nodeName: `n${i}`, gpusFree }));

describe("planGroups", () => {
  it.each<[string, StatusPlan, string[]]>([
    ["colocated: one group per instance", colocated, ["colocated-0", "colocated-1", "colocated-2"]],
    [
      "high affinity: prefill then decode instances",
      high,
      ["prefill-0", "prefill-1", "decode-0", "decode-1", "decode-2", "decode-3"],
    ],
    ["low affinity: units of 1 prefill + 2 decode (gcd of 2 and 4)", low, ["unit-0", "unit-1"]],
  ])("%s", (_name, plan, keys) => {
    expect(planGroups(plan).map((g) => g.key)).toEqual(keys);
  });

  it("pairs a low-affinity unit's instances and counts its GPUs", () => {
    const [unit1] = planGroups(low).slice(1);
    expect(unit1).toEqual({
      key: "unit-1",
      unit: 1,
      gpus: 8 + 2 + 2,
      instances: [
        { role: "prefill", index: 1, tp: 4, pp: 2 },
        { role: "decode", index: 2, tp: 1, pp: 2 },
        { role: "decode", index: 3, tp: 1, pp: 2 },
      ],
    });
  });
});

describe("planSummary", () => {
  it.each<[StatusPlan, string]>([
    [colocated, "coloc 3×TP1 (3 GPU)"],
    [high, "disagg P2×TP2 D4×TP1 (8 GPU)"],
    [pipelined, "disagg P1×TP1PP4 D1×TP1 (5 GPU)"],
    [low, "disagg P2×TP4PP2 D4×TP1PP2 low-affinity (24 GPU)"],
  ])("%j → %s", (plan, summary) => expect(planSummary(plan)).toBe(summary));
});

describe("planHash", () => {
  it("changes with what the pods run and not with predictions", () => {
    const base = planHash(high, engine);
    expect(planHash({ ...high, goodputPerGpu: 13, explanation: "x" }, engine)).toBe(base);
    expect(planHash({ ...high, decode: pool(1, 1, 5) }, engine)).not.toBe(base);
    expect(planHash(high, { ...engine, image: "vllm/vllm-openai:v0.12.0" })).not.toBe(base);
    expect(planHash(high, { ...engine, env: [] })).not.toBe(base);
    expect(base).toMatch(/^[0-9a-f]{8}$/);
  });
});

describe("placeGroups", () => {
  it("puts whole instances on one node, best fit, largest first", () => {
    const { placed, blocked } = placeGroups("chat", "h", planGroups(high), nodes(8, 3, 2));
    expect(blocked).toEqual([]);
    const where = Object.fromEntries(
      placed.map((g) => [g.key, g.pods.map((p) => `${p.nodeName}:${p.gpus}`).join(" ")]),
    );
    // prefill (2 GPUs) first: n2 (2 free) then n1 (3 → 1); decodes: n1 (1 left), then n0.
    expect(where).toEqual({
      "prefill-0": "n2:2",
      "prefill-1": "n1:2",
      "decode-0": "n1:1",
      "decode-1": "n0:1",
      "decode-2": "n0:1",
      "decode-3": "n0:1",
    });
    expect(placed.every((g) => g.pods.length === 1 && g.pods[0]!.worker === 0)).toBe(true);
  });

  it("splits an instance larger than any node's free GPUs into a leader and workers by stage", () => {
    const { placed } = placeGroups(
      "chat",
      "h",
      planGroups(pipelined).filter((g) => g.key === "prefill-0"),
      nodes(2, 2),
    );
    expect(
      placed[0]!.pods.map((p) => [p.name, p.nodeName, p.stages, p.gpus, p.worker, p.instancePods, p.leaderName]),
    ).toEqual([
      ["chat-h-p0", "n0", [0, 1], 2, 0, 2, "chat-h-p0"],
      ["chat-h-p0-1", "n1", [2, 3], 2, 1, 2, "chat-h-p0"],
    ]);
  });

  it("co-locates a low-affinity unit's prefill and decode segments of each stage on one node", () => {
    const { placed, blocked } = placeGroups("chat", "h", planGroups(low), nodes(8, 8, 8, 8));
    expect(blocked).toEqual([]);
    for (const group of placed) {
      const stageNodes = new Map<string, Set<string>>();
      for (const pod of group.pods)
        for (const s of pod.stages)
          stageNodes.set(String(s), new Set([...(stageNodes.get(String(s)) ?? []), pod.nodeName]));
      // Every stage of every member (1 prefill of TP4, 2 decodes of TP1) on a single node: 6 GPUs per stage.
      expect([...stageNodes.values()].map((s) => s.size)).toEqual([1, 1]);
      expect(group.pods).toHaveLength(6);
      expect(group.pods.every((p) => p.groupPods === 6 && p.unit !== undefined)).toBe(true);
    }
    const used = new Map<string, number>();
    for (const p of placed.flatMap((g) => g.pods)) used.set(p.nodeName, (used.get(p.nodeName) ?? 0) + p.gpus);
    expect([...used.values()].every((g) => g <= 8)).toBe(true);
  });

  it("returns the groups that fit nowhere as blocked and places the rest", () => {
    const { placed, blocked } = placeGroups("chat", "h", planGroups(high), nodes(4, 1));
    // Largest first: both 2-GPU prefills take n0, one decode takes n1, and no GPU is left for the others.
    expect(placed.map((g) => g.key)).toEqual(["decode-0", "prefill-0", "prefill-1"]);
    expect(blocked.map((g) => g.key)).toEqual(["decode-1", "decode-2", "decode-3"]);
  });
});

describe("podObject", () => {
  const [worker] = placeGroups(
    "chat",
    "abc12345",
    planGroups(pipelined).filter((g) => g.key === "prefill-0"),
    nodes(2, 2),
  ).placed[0]!.pods.slice(1);
  const pod = podObject(sd(), worker!, "abc12345", "H100-80GB");
  const env = Object.fromEntries((pod.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]));

  it("requests the stage's GPUs and is pinned to its node and GPU model", () => {
    expect(pod.spec?.containers[0]?.resources).toEqual({
      requests: { "nvidia.com/gpu": "2" },
      limits: { "nvidia.com/gpu": "2" },
    });
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual(
      [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values: ["n1"] }] }],
    );
    expect(pod.spec?.nodeSelector).toEqual({ "gpufleet.io/gpu-model": "H100-80GB" });
    expect(pod.spec?.nodeName).toBeUndefined();
  });

  it("is labelled and owned for selection and garbage collection", () => {
    expect(pod.metadata?.labels).toMatchObject({
      "gpufleet.io/serving-deployment": "chat",
      "gpufleet.io/role": "prefill",
      "gpufleet.io/instance": "0",
      "gpufleet.io/plan-hash": "abc12345",
      "gpufleet.io/worker": "1",
    });
    expect(pod.metadata?.ownerReferences).toEqual([
      {
        apiVersion: "gpufleet.io/v1alpha1",
        kind: "ServingDeployment",
        name: "chat",
        uid: "uid-1",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
  });

  it("tells the engine its role, parallelism, stages and leader, with the user's env applied over it", () => {
    expect(env).toMatchObject({
      GPUFLEET_ROLE: "prefill",
      GPUFLEET_PP: "4",
      GPUFLEET_STAGES: "2,3",
      GPUFLEET_WORKER_INDEX: "1",
      GPUFLEET_INSTANCE_PODS: "2",
      GPUFLEET_LEADER_ADDRESS: "chat-abc12345-p0.chat-pods.llm.svc",
      GPUFLEET_DECODE_SERVICE: "chat-decode.llm.svc:8000",
      GPUFLEET_TP: "user",
      HF_TOKEN_PATH: "/secrets/hf",
    });
    expect(pod.spec?.containers[0]?.env?.filter((e) => e.name === "GPUFLEET_TP")).toHaveLength(1);
    expect(pod.spec).toMatchObject({ hostname: "chat-abc12345-p0-1", subdomain: "chat-pods", restartPolicy: "Never" });
  });

  it("renders the GpuProfile the plan used as GPUFLEET_GPU_PROFILE, over the user's env, and nothing without one", () => {
    const profile = { name: "h100-measured", gpuModel: "H100-80GB", coefficients: { achievedHbmGBps: 1500 } };
    const withUserValue = sd();
    withUserValue.spec.engine.env.push({ name: "GPUFLEET_GPU_PROFILE", value: "{}" });
    const profiled = podObject(withUserValue, worker!, "abc12345", "H100-80GB", undefined, profile);
    const rendered = profiled.spec?.containers[0]?.env?.filter((e) => e.name === "GPUFLEET_GPU_PROFILE");
    expect(rendered?.map((e) => JSON.parse(e.value!) as unknown)).toEqual([profile]);
    expect(env.GPUFLEET_GPU_PROFILE).toBeUndefined();
  });

  // Services route to Ready pods and Available counts Ready instances: Ready must mean "model loaded", which only
  // the engine itself can say, on its port.
  it.each([
    [
      "a leader",
      podObject(
        sd(),
        placeGroups(
          "chat",
          "abc12345",
          planGroups(pipelined).filter((g) => g.key === "prefill-0"),
          nodes(2, 2),
        ).placed[0]!.pods[0]!,
        "abc12345",
        "H100-80GB",
      ),
    ],
    ["a worker", pod],
  ])("makes %s Ready only when its engine answers GET /health on the engine port", (_name, p) => {
    const container = p.spec?.containers[0];
    expect(container?.ports).toEqual([{ name: "http", containerPort: 8000, protocol: "TCP" }]);
    expect(container?.readinessProbe).toEqual({
      httpGet: { path: "/health", port: "http" },
      periodSeconds: 5,
      timeoutSeconds: 2,
      failureThreshold: 3,
      successThreshold: 1,
    });
    // No liveness and so no startup probe: a load deadline the operator cannot know would kill slow, healthy loads.
    expect(container?.livenessProbe).toBeUndefined();
    expect(container?.startupProbe).toBeUndefined();
  });
});

describe("serviceObjects", () => {
  it("gives each role a Service selecting its leaders, plus a headless Service for pod names", () => {
    const services = serviceObjects(sd(), ["prefill", "decode"]);
    expect(services.map((s) => [s.metadata?.name, s.spec?.clusterIP ?? "", s.spec?.selector])).toEqual([
      [
        "chat-prefill",
        "",
        {
          "gpufleet.io/serving-deployment": "chat",
          "app.kubernetes.io/managed-by": "gpufleet-operator",
          "gpufleet.io/role": "prefill",
          "gpufleet.io/worker": "0",
        },
      ],
      [
        "chat-decode",
        "",
        {
          "gpufleet.io/serving-deployment": "chat",
          "app.kubernetes.io/managed-by": "gpufleet-operator",
          "gpufleet.io/role": "decode",
          "gpufleet.io/worker": "0",
        },
      ],
      [
        "chat-pods",
        "None",
        { "gpufleet.io/serving-deployment": "chat", "app.kubernetes.io/managed-by": "gpufleet-operator" },
      ],
    ]);
    expect(
      services.every((s) => s.metadata?.ownerReferences?.[0]?.uid === "uid-1" && s.spec?.ports?.[0]?.port === 8000),
    ).toBe(true);
  });
});

describe("podObject: the agent's worker socket", () => {
  const [group] = placeGroups(
    "chat",
    "abc12345",
    planGroups(pipelined).filter((g) => g.key === "prefill-0"),
    nodes(2, 2),
  ).placed;
  it.each([
    { name: "the default directory", dir: undefined, hostPath: "/var/run/gpufleet" },
    { name: "the configured directory", dir: "/opt/gpufleet/run", hostPath: "/opt/gpufleet/run" },
  ])("mounts $name and points GPUFLEET_AGENT_SOCKET at the socket", ({ dir, hostPath }) => {
    const pod = podObject(sd(), group!.pods[0]!, "abc12345", "H100-80GB", dir);
    expect(pod.spec?.volumes).toEqual([
      { name: "gpufleet-agent-socket", hostPath: { path: hostPath, type: "DirectoryOrCreate" } },
    ]);
    expect(pod.spec?.containers[0]?.volumeMounts).toEqual([
      { name: "gpufleet-agent-socket", mountPath: "/run/gpufleet" },
    ]);
    expect(pod.spec?.containers[0]?.env).toContainEqual({
      name: "GPUFLEET_AGENT_SOCKET",
      value: "/run/gpufleet/agent.sock",
    });
  });
});
