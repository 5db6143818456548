import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { IsolatedTaintKey, TopologyLabel } from "../../../crds/src/topology.js";
import { capacityOf, describeCapacity, nodePlacementFacts, summarizeCapacity } from "./capacity.js";

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

describe("capacityOf", () => {
  /** A cache like the informer's: a list and a counter that grows on every change. */
  const source = <T>(items: T[]) => ({
    items,
    changeCount: 0,
    lists: 0,
    list() {
      this.lists++;
      return this.items;
    },
  });

  it("reuses the summary while neither cache changed, and computes it again when one did", () => {
    const nodes = source([node("a"), node("b")]);
    const pods = source([pod("a", 3)]);
    const first = capacityOf(nodes, pods);
    expect(capacityOf(nodes, pods)).toBe(first);
    expect(nodes.lists).toBe(1);
    pods.items = [pod("a", 3), pod("b", 8)];
    pods.changeCount++;
    const second = capacityOf(nodes, pods);
    expect(second).not.toBe(first);
    expect(second.nodes.map((n) => n.gpusFree)).toEqual([5, 0]);
    nodes.items = [node("a")];
    nodes.changeCount++;
    expect(capacityOf(nodes, pods).nodes.map((n) => n.nodeName)).toEqual(["a"]);
  });

  it("freezes the shared summary, so a caller that edits it fails loudly instead of corrupting the next", () => {
    const capacity = capacityOf(source([node("a")]), source([]));
    expect(() => ((capacity.nodes[0] as { gpusFree: number }).gpusFree = 0)).toThrow(TypeError);
    expect(() => (capacity.nodes as unknown[]).push(1)).toThrow(TypeError);
  });

  it("summarizes on every call for sources without a change count", () => {
    const nodes = { list: () => [node("a")] };
    const pods = { list: () => [] as V1Pod[] };
    expect(capacityOf(nodes, pods)).not.toBe(capacityOf(nodes, pods));
  });
});

describe("nodePlacementFacts", () => {
  const base = (): V1Node => ({
    metadata: { name: "n", labels: { "gpufleet.io/leaf": "l1" }, resourceVersion: "1" },
    spec: {},
    status: {
      allocatable: { "nvidia.com/gpu": "8" },
      conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date(1000) }],
    },
  });

  it("ignores a heartbeat and a new resourceVersion, and sees every fact placement reads", () => {
    const facts = nodePlacementFacts(base());
    const heartbeat = base();
    heartbeat.metadata!.resourceVersion = "2";
    heartbeat.status!.conditions![0]!.lastHeartbeatTime = new Date(5000);
    heartbeat.metadata!.annotations = { "node.alpha.kubernetes.io/ttl": "30" }; // kube-controller-manager's
    expect(nodePlacementFacts(heartbeat)).toBe(facts);
    const changes: ((n: V1Node) => void)[] = [
      (n) => (n.metadata!.labels!["gpufleet.io/leaf"] = "l2"),
      (n) => (n.metadata!.annotations = { "gpufleet.io/agent-endpoint": "10.0.0.1:50051" }),
      (n) => (n.spec!.taints = [{ key: "gpufleet.io/isolated", effect: "NoSchedule" }]),
      (n) => (n.spec!.unschedulable = true),
      (n) => (n.status!.allocatable!["nvidia.com/gpu"] = "7"),
      (n) => (n.status!.conditions![0]!.status = "False"),
    ];
    for (const change of changes) {
      const n = base();
      change(n);
      expect(nodePlacementFacts(n), String(change)).not.toBe(facts);
    }
  });
});
