import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { parseNodeTopology, TopologyLabel } from "../../../crds/src/topology.js";
import { factsToLabels } from "../discovery/facts.js";
import { isSimulatedNode, PodSpecError, simulatedNodeFacts, workerSpecsForPod } from "./model.js";

const node = (name: string, labels: Record<string, string> = {}, annotations: Record<string, string> = { "kwok.x-k8s.io/node": "fake" }): V1Node => ({ metadata: { name, labels, annotations } });

describe("simulated nodes", () => {
  it.each([
    { name: "kwok annotation", n: node("a"), simulated: true },
    { name: "kwok label", n: node("b", { "kwok.x-k8s.io/node": "fake" }, {}), simulated: true },
    { name: "real node", n: node("c", {}, {}), simulated: false },
  ])("$name", ({ n, simulated }) => expect(isSimulatedNode(n)).toBe(simulated));

  it("builds labels that parse as topology from sim annotations and defaults", () => {
    const n = node("gpu-1", { [TopologyLabel.leaf]: "leaf-1", [TopologyLabel.island]: "ib-0" }, { "kwok.x-k8s.io/node": "fake", "gpufleet.io/sim-gpu-model": "H200-141GB", "gpufleet.io/sim-nic-type": "roce", "gpufleet.io/sim-nic-bandwidth-gbps": "200" });
    const topology = parseNodeTopology("gpu-1", factsToLabels(simulatedNodeFacts(n)));
    expect(topology).toEqual({ nodeName: "gpu-1", gpuModel: "H200-141GB", gpuCount: 8, nicType: "roce", nicCount: 8, nicBandwidthGbps: 200, leaf: "leaf-1", island: "ib-0" });
  });

  it("reproduces a node's existing labels", () => {
    const labels = { [TopologyLabel.gpuModel]: "A100-80GB", [TopologyLabel.gpuCount]: "4", [TopologyLabel.nicType]: "ethernet", [TopologyLabel.nicCount]: "2", [TopologyLabel.nicBandwidthGbps]: "100", [TopologyLabel.leaf]: "l", [TopologyLabel.island]: "i" };
    expect(factsToLabels(simulatedNodeFacts(node("x", labels)))).toEqual(labels);
  });
});

const pod = (labels: Record<string, string>, env: Record<string, string> = {}, nodeName = "gpu-1"): V1Pod => ({
  metadata: { name: "p", namespace: "ns", uid: "u1", labels },
  spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: "c", env: Object.entries(env).map(([name, value]) => ({ name, value })) }] },
});

describe("workerSpecsForPod", () => {
  it.each([
    { name: "training pod with 4 local ranks", p: pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "8", GPUFLEET_RANKS: "4,5,6,7" }), kinds: ["training", "training", "training", "training"], ranks: [4, 5, 6, 7] },
    { name: "decode pod", p: pod({ "gpufleet.io/serving-deployment": "s", "gpufleet.io/role": "decode" }), kinds: ["serving-decode"], ranks: [-1] },
    { name: "plain serving pod", p: pod({ "gpufleet.io/serving-deployment": "s" }), kinds: ["serving"], ranks: [-1] },
    { name: "unrelated pod", p: pod({ app: "x" }), kinds: [], ranks: [] },
    { name: "unbound pod", p: pod({ "gpufleet.io/serving-deployment": "s" }, {}, ""), kinds: [], ranks: [] },
  ])("$name", ({ p, kinds, ranks }) => {
    const specs = workerSpecsForPod(p);
    expect(specs.map((s) => s.kind)).toEqual(kinds);
    expect(specs.map((s) => s.rank)).toEqual(ranks);
  });

  it("names the pod when the training env is inconsistent", () => {
    expect(() => workerSpecsForPod(pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "2", GPUFLEET_RANKS: "3" }))).toThrow(PodSpecError);
    expect(() => workerSpecsForPod(pod({ "gpufleet.io/training-job": "j" }, { WORLD_SIZE: "2", GPUFLEET_RANKS: "3" }))).toThrow(/ns\/p/);
  });
});
