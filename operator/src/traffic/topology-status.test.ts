import { describe, expect, it } from "vitest";
import type { FabricTopologySpec } from "../../../crds/src/fabric-topology.js";
import { TopologyLabel } from "../../../crds/src/topology.js";
import { buildFabric } from "./fabric.js";
import { fabricSpecOf, fabricTopologyStatus } from "./topology-status.js";

const spec: FabricTopologySpec = {
  island: "ib-a",
  spines: ["spine-0", "spine-1"],
  leaves: ["leaf-0", "leaf-1", "leaf-2"].map((name) => ({
    name,
    uplinks: [
      { spine: "spine-0", ports: 2, portGbps: 400 },
      { spine: "spine-1", ports: 2, portGbps: 400, ...(name === "leaf-1" ? { failedPorts: [1] } : {}) },
    ],
  })),
};
const node = (name: string, leaf: string, island = "ib-a") => ({
  name,
  labels: { [TopologyLabel.island]: island, [TopologyLabel.leaf]: leaf },
});

describe("fabricTopologyStatus", () => {
  it.each([
    {
      name: "every island node on a listed leaf",
      nodes: [node("a", "leaf-0"), node("b", "leaf-1"), node("other", "x", "roce-a")],
      inSync: "True",
      reason: "NodesMatch",
      unknown: [] as string[],
    },
    {
      name: "a node on a leaf the fabric does not list",
      nodes: [node("a", "leaf-0"), node("b", "leaf-9")],
      inSync: "False",
      reason: "UnknownLeaf",
      unknown: ["b"],
    },
    {
      name: "no node of the island",
      nodes: [node("other", "leaf-0", "roce-a")],
      inSync: "False",
      reason: "NoNodes",
      unknown: [],
    },
  ])("$name", ({ nodes, inSync, reason, unknown }) => {
    const { status, condition } = fabricTopologyStatus(spec, nodes);
    expect(condition).toMatchObject({ type: "InSync", status: inSync, reason });
    expect(status.nodesOnUnknownLeaves).toEqual(unknown);
    expect(status.failedPorts).toBe(1);
  });

  it("names what the schema cannot check", () => {
    const bad: FabricTopologySpec = {
      ...spec,
      leaves: [{ name: "leaf-0", uplinks: [{ spine: "spine-0", ports: 2, portGbps: 400, failedPorts: [5] }] }],
    };
    expect(fabricTopologyStatus(bad, [node("a", "leaf-0")]).condition).toMatchObject({
      status: "False",
      reason: "InvalidSpec",
      message: expect.stringContaining("failed port 5 is not in 0..1"),
    });
  });

  it("gives the planner a fabric with the failed port at capacity 0", () => {
    const fabric = buildFabric(fabricSpecOf(spec));
    const leaf1 = fabric.leafIndex.get("leaf-1")!;
    expect([...fabric.up[leaf1]![1]!].map((id) => fabric.capacityGbps[id])).toEqual([400, 0]);
    expect([...fabric.down[1]![leaf1]!].map((id) => fabric.capacityGbps[id])).toEqual([400, 0]);
  });
});
