import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parseNodeTopology, TopologyLabel } from "../../../crds/src/topology.js";
import { factsToLabels } from "../discovery/facts.js";
import { MODEL_SHAPES } from "../../../common/src/models/model-shapes.js";
import { DEFAULT_SIM_MODEL, isSimulatedNode, PodSpecError, simulatedNodeFacts, workerSpecsForPod } from "./model.js";

const node = (
  name: string,
  labels: Record<string, string> = {},
  annotations: Record<string, string> = { "kwok.x-k8s.io/node": "fake" },
): V1Node => ({ metadata: { name, labels, annotations } });

describe("simulated nodes", () => {
  it.each([
    { name: "kwok annotation", n: node("a"), simulated: true },
    { name: "kwok label", n: node("b", { "kwok.x-k8s.io/node": "fake" }, {}), simulated: true },
    { name: "real node", n: node("c", {}, {}), simulated: false },
  ])("$name", ({ n, simulated }) => expect(isSimulatedNode(n)).toBe(simulated));

  it("builds labels that parse as topology from sim annotations and defaults", () => {
    const n = node(
      "gpu-1",
      { [TopologyLabel.leaf]: "leaf-1", [TopologyLabel.island]: "ib-0" },
      {
        "kwok.x-k8s.io/node": "fake",
        "gpufleet.io/sim-gpu-model": "H200-141GB",
        "gpufleet.io/sim-nic-type": "roce",
        "gpufleet.io/sim-nic-bandwidth-gbps": "200",
      },
    );
    const topology = parseNodeTopology("gpu-1", factsToLabels(simulatedNodeFacts(n)));
    expect(topology).toEqual({
      nodeName: "gpu-1",
      gpuModel: "H200-141GB",
      gpuCount: 8,
      nicType: "roce",
      nicCount: 8,
      nicBandwidthGbps: 200,
      leaf: "leaf-1",
      island: "ib-0",
    });
  });

  it("reproduces a node's existing labels", () => {
    const labels = {
      [TopologyLabel.gpuModel]: "A100-80GB",
      [TopologyLabel.gpuCount]: "4",
      [TopologyLabel.nicType]: "ethernet",
      [TopologyLabel.nicCount]: "2",
      [TopologyLabel.nicBandwidthGbps]: "100",
      [TopologyLabel.leaf]: "l",
      [TopologyLabel.island]: "i",
    };
    expect(factsToLabels(simulatedNodeFacts(node("x", labels)))).toEqual(labels);
  });
});

const pod = (labels: Record<string, string>, env: Record<string, string> = {}, nodeName = "gpu-1"): V1Pod => ({
  metadata: { name: "p", namespace: "ns", uid: "u1", labels },
  spec: {
    ...(nodeName ? { nodeName } : {}),
    containers: [{ name: "c", env: Object.entries(env).map(([name, value]) => ({ name, value })) }],
  },
});

describe("workerSpecsForPod", () => {
  it.each([
    {
      name: "training pod with 4 local ranks",
      p: pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "8", GPUFLEET_RANKS: "4,5,6,7" }),
      kinds: ["training", "training", "training", "training"],
      ranks: [4, 5, 6, 7],
    },
    {
      name: "decode pod",
      p: pod({ "gpufleet.io/serving-deployment": "s", "gpufleet.io/role": "decode" }),
      kinds: ["serving-decode"],
      ranks: [-1],
    },
    { name: "plain serving pod", p: pod({ "gpufleet.io/serving-deployment": "s" }), kinds: ["serving"], ranks: [-1] },
    { name: "unrelated pod", p: pod({ app: "x" }), kinds: [], ranks: [] },
    { name: "unbound pod", p: pod({ "gpufleet.io/serving-deployment": "s" }, {}, ""), kinds: [], ranks: [] },
  ])("$name", ({ p, kinds, ranks }) => {
    const specs = workerSpecsForPod(p);
    expect(specs.map((s) => s.kind)).toEqual(kinds);
    expect(specs.map((s) => s.rank)).toEqual(ranks);
  });

  it("names the pod when the training env is inconsistent", () => {
    expect(() =>
      workerSpecsForPod(pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "2", GPUFLEET_RANKS: "3" })),
    ).toThrow(PodSpecError);
    expect(() =>
      workerSpecsForPod(pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "2", GPUFLEET_RANKS: "3" })),
    ).toThrow(/ns\/p/);
  });
});

const OPT_13B = MODEL_SHAPES["OPT-13B"];
const servingPod = (env: Record<string, string>, labels: Record<string, string> = {}) =>
  pod({ "gpufleet.io/serving-deployment": "s", ...labels }, env);

describe("serving pods run the engine their env describes", () => {
  it.each<{
    name: string;
    env: Record<string, string>;
    labels?: Record<string, string>;
    kind: string;
    role: string;
    model: string;
    tp: number;
    pp: number;
  }>([
    {
      name: "prefill with the plan's model and TP",
      env: {
        GPUFLEET_ROLE: "prefill",
        GPUFLEET_MODEL_SHAPE: JSON.stringify(OPT_13B),
        GPUFLEET_TP: "2",
        GPUFLEET_PP: "1",
      },
      kind: "serving-prefill",
      role: "prefill",
      model: "OPT-13B",
      tp: 2,
      pp: 1,
    },
    {
      name: "decode at TP4 PP2, leader",
      env: {
        GPUFLEET_ROLE: "decode",
        GPUFLEET_MODEL_SHAPE: JSON.stringify(OPT_13B),
        GPUFLEET_TP: "4",
        GPUFLEET_PP: "2",
        GPUFLEET_WORKER_INDEX: "0",
        GPUFLEET_INSTANCE_PODS: "2",
      },
      kind: "serving-decode",
      role: "decode",
      model: "OPT-13B",
      tp: 4,
      pp: 2,
    },
    {
      name: "colocated",
      env: { GPUFLEET_ROLE: "colocated", GPUFLEET_MODEL_SHAPE: JSON.stringify(OPT_13B) },
      kind: "serving",
      role: "colocated",
      model: "OPT-13B",
      tp: 1,
      pp: 1,
    },
    {
      name: "role from the label when the env has none; default model",
      env: {},
      labels: { "gpufleet.io/role": "decode" },
      kind: "serving-decode",
      role: "decode",
      model: DEFAULT_SIM_MODEL.name,
      tp: 1,
      pp: 1,
    },
  ])("$name", ({ env, labels, kind, role, model, tp, pp }) => {
    const [spec] = workerSpecsForPod(servingPod(env, labels));
    expect(spec!.kind).toBe(kind);
    expect(spec!.serving).toMatchObject({ deployment: "s", role, tp, pp });
    expect(spec!.serving!.shape.name).toBe(model);
  });

  it("carries the GpuProfile the plan used from GPUFLEET_GPU_PROFILE, and none without it", () => {
    const profile = { name: "m", gpuModel: "H100-80GB", coefficients: { achievedHbmGBps: 1500 } };
    const [spec] = workerSpecsForPod(servingPod({ GPUFLEET_GPU_PROFILE: JSON.stringify(profile) }));
    expect(spec!.serving!.gpuProfile).toEqual(profile);
    expect(workerSpecsForPod(servingPod({}))[0]!.serving!.gpuProfile).toBeUndefined();
  });

  it.each<{ name: string; env: Record<string, string>; error: RegExp }>([
    {
      name: "profile with an unknown coefficient",
      env: { GPUFLEET_GPU_PROFILE: JSON.stringify({ name: "m", gpuModel: "H100-80GB", coefficients: { x: 1 } }) },
      error: /GPUFLEET_GPU_PROFILE \(profile m\): unknown coefficient\(s\) x/,
    },
    { name: "unknown role", env: { GPUFLEET_ROLE: "encode" }, error: /role "encode"/ },
    { name: "shape not JSON", env: { GPUFLEET_MODEL_SHAPE: "{" }, error: /GPUFLEET_MODEL_SHAPE is not JSON/ },
    { name: "shape not an object", env: { GPUFLEET_MODEL_SHAPE: "[1]" }, error: /must be a JSON object/ },
    {
      name: "invalid shape",
      env: { GPUFLEET_MODEL_SHAPE: JSON.stringify({ ...OPT_13B, heads: 0 }) },
      error: /heads must be a positive integer/,
    },
    { name: "TP zero", env: { GPUFLEET_TP: "0" }, error: /GPUFLEET_TP="0" must be an integer >= 1/ },
    { name: "PP not a number", env: { GPUFLEET_PP: "two" }, error: /GPUFLEET_PP="two"/ },
  ])("names the pod and the field: $name", ({ env, error }) => {
    expect(() => workerSpecsForPod(servingPod(env))).toThrow(PodSpecError);
    expect(() => workerSpecsForPod(servingPod(env))).toThrow(error);
    expect(() => workerSpecsForPod(servingPod(env))).toThrow(/ns\/p/);
  });
});

describe("training pods resume and checkpoint as their env says", () => {
  const trainingPod = (env: Record<string, string>) =>
    pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "2", GPUFLEET_RANKS: "0,1", ...env });
  it.each<{ name: string; env: Record<string, string>; want: object }>([
    {
      name: "resume step, interval and path",
      env: {
        GPUFLEET_RESUME_STEP: "1200",
        GPUFLEET_CHECKPOINT_INTERVAL_STEPS: "100",
        GPUFLEET_CHECKPOINT_PATH: "/ckpt/j",
      },
      want: { resumeStep: 1200, checkpointIntervalSteps: 100, checkpointPath: "/ckpt/j" },
    },
    {
      name: "a pod without them: fresh start, no checkpoints",
      env: {},
      want: { resumeStep: 0, checkpointIntervalSteps: undefined, checkpointPath: "" },
    },
  ])("$name", ({ env, want }) => {
    expect(workerSpecsForPod(trainingPod(env)).map((s) => s.training)).toEqual([want, want]);
  });

  it.each<{ env: Record<string, string>; error: RegExp }>([
    { env: { GPUFLEET_RESUME_STEP: "-3" }, error: /GPUFLEET_RESUME_STEP="-3"/ },
    { env: { GPUFLEET_CHECKPOINT_INTERVAL_STEPS: "0" }, error: /GPUFLEET_CHECKPOINT_INTERVAL_STEPS="0"/ },
  ])("rejects $env", ({ env, error }) => {
    expect(() => workerSpecsForPod(trainingPod(env))).toThrow(error);
  });
});
