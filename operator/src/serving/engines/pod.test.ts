import { describe, expect, it } from "vitest";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import { planGroups, planHash, placeGroups, podObject, type PodPlacement, type StatusPlan } from "../pools.js";
import { AdapterEnv, ENGINE_ADAPTER_CONTAINER, withEngine } from "./pod.js";

const plan: StatusPlan = {
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  affinity: "high",
  prefill: { tp: 2, pp: 1, replicas: 1, gpus: 2 },
  decode: { tp: 8, pp: 2, replicas: 1, gpus: 16 },
  totalGpus: 18,
  goodputPerGpu: 1,
};

function sd(kind?: "reference" | "vllm" | "sglang"): ServingDeployment {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name: "chat", namespace: "llm", uid: "uid-1" },
    spec: {
      model: {
        name: "meta-llama/Llama-3.1-8B-Instruct",
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
        ...(kind ? { kind } : {}),
        image: "vllm/vllm-openai:v0.11.0",
        args: ["--max-model-len", "8192"],
        port: 8000,
        env: [{ name: "UCX_NET_DEVICES", value: "mine" }],
      },
      scaling: { minInstances: 1 },
    },
  };
}

const placements = (): PodPlacement[] => {
  const { placed } = placeGroups("chat", "h", planGroups(plan), [
    { nodeName: "a", gpusFree: 8 },
    { nodeName: "b", gpusFree: 8 },
    { nodeName: "c", gpusFree: 8 },
  ]);
  return placed.flatMap((g) => g.pods);
};
const ib = { nicType: "infiniband" as const, nicCount: 8 };

describe("withEngine", () => {
  it("leaves reference pods (kind unset or reference) as pools.ts made them", () => {
    for (const kind of [undefined, "reference" as const]) {
      const p = placements()[0]!;
      const pod = podObject(sd(kind), p, "h", plan.gpuModel);
      expect(withEngine(pod, sd(kind), p, plan.gpuModel, ib)).toBe(pod);
    }
  });

  it("renders vLLM into the engine container and adds the load adapter to leaders only", () => {
    const pods = placements().map((p) => ({
      p,
      pod: withEngine(podObject(sd("vllm"), p, "h", plan.gpuModel), sd("vllm"), p, plan.gpuModel, ib),
    }));
    const prefill = pods.find(({ p }) => p.role === "prefill")!.pod;
    const [engine, adapter] = prefill.spec!.containers;
    expect(engine!.command).toEqual(["vllm"]);
    expect(engine!.args).toContain("--kv-transfer-config");
    expect(engine!.args!.slice(-2)).toEqual(["--max-model-len", "8192"]);
    // The user's env wins over the rendered default of the same name.
    expect(engine!.env!.filter((e) => e.name === "UCX_NET_DEVICES").map((e) => e.value)).toEqual(["mine"]);
    expect(adapter!.name).toBe(ENGINE_ADAPTER_CONTAINER);
    const env = Object.fromEntries(adapter!.env!.map((e) => [e.name, e.value ?? e.valueFrom?.fieldRef?.fieldPath]));
    expect(env).toMatchObject({
      GPUFLEET_ENGINE_KIND: "vllm",
      GPUFLEET_ENGINE_METRICS_URL: "http://127.0.0.1:8000/metrics",
      GPUFLEET_ROLE: "prefill",
      GPUFLEET_TP: "2",
      GPUFLEET_GPU_MODEL: "H100-80GB",
      POD_UID: "metadata.uid",
    });
    expect(adapter!.volumeMounts).toEqual(engine!.volumeMounts);

    const decode = pods.filter(({ p }) => p.role === "decode");
    expect(decode.map(({ pod }) => pod.spec!.containers.map((c) => c.name))).toEqual([
      ["engine", ENGINE_ADAPTER_CONTAINER],
      ["engine"],
    ]);
    expect(decode[1]!.pod.spec!.containers[0]!.args![0]).toMatch(
      /^exec ray start --address=chat-h-d0\.chat-pods\.llm\.svc:6379 --block$/,
    );
  });

  it("renders SGLang with the node rank of each pod of a two-pod instance", () => {
    const decode = placements().filter((p) => p.role === "decode");
    const ranks = decode.map((p) => {
      const args = withEngine(podObject(sd("sglang"), p, "h", plan.gpuModel), sd("sglang"), p, plan.gpuModel, ib).spec!
        .containers[0]!.args!;
      return args[args.indexOf("--node-rank") + 1];
    });
    expect(ranks).toEqual(["0", "1"]);
  });

  it("tells the SGLang prefill adapter its bootstrap port (the default, or the user's flag); nobody else", () => {
    const adapterEnv = (spec: ServingDeployment, role: "prefill" | "decode") => {
      const p = placements().find((x) => x.role === role && x.worker === 0)!;
      const pod = withEngine(podObject(spec, p, "h", plan.gpuModel), spec, p, plan.gpuModel, ib);
      const adapter = pod.spec!.containers.find((c) => c.name === ENGINE_ADAPTER_CONTAINER)!;
      return Object.fromEntries(adapter.env!.map((e) => [e.name, e.value]));
    };
    expect(adapterEnv(sd("sglang"), "prefill")[AdapterEnv.bootstrapPort]).toBe("8998");
    expect(adapterEnv(sd("sglang"), "decode")[AdapterEnv.bootstrapPort]).toBeUndefined();
    expect(adapterEnv(sd("vllm"), "prefill")[AdapterEnv.bootstrapPort]).toBeUndefined();
    const moved = sd("sglang");
    moved.spec.engine.args = ["--disaggregation-bootstrap-port", "9100"];
    expect(adapterEnv(moved, "prefill")[AdapterEnv.bootstrapPort]).toBe("9100");
  });

  it("rolls pods when the engine kind changes, and keeps reference hashes as before", () => {
    const ref = planHash(plan, sd().spec.engine);
    expect(planHash(plan, sd("reference").spec.engine)).toBe(ref);
    expect(planHash(plan, sd("vllm").spec.engine)).not.toBe(ref);
    expect(planHash(plan, sd("sglang").spec.engine)).not.toBe(planHash(plan, sd("vllm").spec.engine));
  });
});
