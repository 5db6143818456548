import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { IsolatedTaintKey, TopologyLabel } from "../../../crds/src/topology.js";
import { describeCapacity, summarizeCapacity } from "./capacity.js";

function node(
  name: string,
  opts: { gpus?: number; model?: string; ready?: boolean; isolated?: boolean; labels?: Record<string, string> } = {},
): V1Node {
  return {
    metadata: {
      name,
      labels: opts.labels ?? {
        [TopologyLabel.gpuModel]: opts.model ?? "H100-80GB",
        [TopologyLabel.gpuCount]: String(opts.gpus ?? 8),
        [TopologyLabel.nicType]: "infiniband",
        [TopologyLabel.nicCount]: "8",
        [TopologyLabel.nicBandwidthGbps]: "400",
        [TopologyLabel.leaf]: "leaf-0",
        [TopologyLabel.island]: "ib-a",
      },
    },
    spec: { taints: opts.isolated ? [{ key: IsolatedTaintKey, value: "hung-rank", effect: "NoSchedule" }] : [] },
    status: {
      allocatable: { "nvidia.com/gpu": String(opts.gpus ?? 8) },
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
    },
  };
}

const pod = (nodeName: string, gpus: number, phase = "Running"): V1Pod => ({
  spec: { nodeName, containers: [{ name: "c", resources: { requests: { "nvidia.com/gpu": String(gpus) } } }] },
  status: { phase },
});

describe("summarizeCapacity", () => {
  it("subtracts GPUs of live pods and ignores finished ones", () => {
    const { nodes } = summarizeCapacity(
      [node("a"), node("b")],
      [pod("a", 3), pod("a", 2), pod("a", 8, "Succeeded"), pod("b", 8)],
    );
    expect(nodes.map((n) => [n.nodeName, n.gpusFree])).toEqual([
      ["a", 3],
      ["b", 0],
    ]);
  });

  it("counts a pod pinned to one node by a required hostname affinity before it is bound, and no other unbound pod", () => {
    const pinned = (values: string[]): V1Pod => ({
      spec: {
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [{ matchExpressions: [{ key: "kubernetes.io/hostname", operator: "In", values }] }],
            },
          },
        },
        containers: [{ name: "c", resources: { requests: { "nvidia.com/gpu": "2" } } }],
      },
      status: { phase: "Pending" },
    });
    const unbound: V1Pod = {
      spec: { containers: [{ name: "c", resources: { requests: { "nvidia.com/gpu": "4" } } }] },
      status: { phase: "Pending" },
    };
    const { nodes } = summarizeCapacity([node("a"), node("b")], [pinned(["a"]), pinned(["a", "b"]), unbound]);
    expect(nodes.map((n) => [n.nodeName, n.gpusFree])).toEqual([
      ["a", 6],
      ["b", 8],
    ]);
  });

  it("marks isolated and not-ready nodes unschedulable", () => {
    const { nodes } = summarizeCapacity([node("a", { isolated: true }), node("b", { ready: false }), node("c")], []);
    expect(nodes.map((n) => [n.nodeName, n.schedulable, n.isolated])).toEqual([
      ["a", false, true],
      ["b", false, false],
      ["c", true, false],
    ]);
  });

  it("skips unlabeled nodes and reports badly labeled ones", () => {
    const bad = node("bad");
    bad.metadata!.labels![TopologyLabel.nicType] = "token-ring";
    const result = summarizeCapacity([node("cpu-only", { labels: {} }), bad], []);
    expect(result.nodes).toEqual([]);
    expect(result.invalidNodes).toEqual([{ nodeName: "bad", error: expect.stringMatching(/nic-type must be one of/) }]);
  });

  it("describes capacity per GPU model", () => {
    const { nodes } = summarizeCapacity([node("a"), node("b"), node("c", { model: "A100-80GB" })], [pod("a", 8)]);
    expect(describeCapacity(nodes)).toBe("A100-80GB: 1 node, 8 GPUs; H100-80GB: 2 nodes, 16 GPUs");
  });
});
