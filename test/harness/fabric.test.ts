import { describe, expect, it } from "vitest";
import { buildFabric } from "../../operator/src/traffic/fabric.js";
import { fabricSpecOf, fabricTopologyStatus } from "../../operator/src/traffic/topology-status.js";
import { expandFabrics } from "../../common/src/cluster-profile/fabric.js";
import { expandProfile, loadProfile, parseProfile } from "../../common/src/cluster-profile/profile.js";

const base = `
name: t
groups:
  - { namePrefix: n, count: 4, gpuModel: H100-80GB, gpusPerNode: 8, nicType: infiniband, nicCount: 8,
      nicBandwidthGbps: 400, island: ib, leafPrefix: ib-leaf, nodesPerLeaf: 2, cpu: "1", memory: 1Gi }
`;

describe("profile fabrics", () => {
  it.each([
    {
      name: "an island no group has",
      fabrics: "[{ island: nope, spines: 2, portsPerSpine: 8, portGbps: 400 }]",
      error: /fabrics\[0\]\.island must be the island of a node group \(ib\)/,
    },
    {
      name: "a zero spine count",
      fabrics: "[{ island: ib, spines: 0, portsPerSpine: 8, portGbps: 400 }]",
      error: /fabrics\[0\]\.spines must be a positive integer/,
    },
    {
      name: "an unknown field",
      fabrics: "[{ island: ib, spines: 2, portsPerSpine: 8, portGbps: 400, oversub: 2 }]",
      error: /fabrics\[0\]\.oversub is not a known field/,
    },
    {
      name: "two fabrics for one island",
      fabrics:
        "[{ island: ib, spines: 2, portsPerSpine: 8, portGbps: 400 }, { island: ib, spines: 1, portsPerSpine: 8, portGbps: 400 }]",
      error: /fabrics\[1\]\.island "ib" has a fabric already/,
    },
  ])("rejects $name", ({ fabrics, error }) => {
    expect(() => parseProfile(`${base}fabrics: ${fabrics}\n`)).toThrow(error);
  });

  it("expands to a FabricTopology whose leaves are exactly the nodes' leaves, in step with them", () => {
    const profile = parseProfile(`${base}fabrics: [{ island: ib, spines: 2, portsPerSpine: 8, portGbps: 400 }]\n`);
    const [fabric] = expandFabrics(profile);
    expect(fabric!.spec.leaves.map((l) => l.name)).toEqual(["ib-leaf-0", "ib-leaf-1"]);
    expect(fabric!.spec.leaves[0]!.uplinks).toEqual([
      { spine: "ib-spine-0", ports: 8, portGbps: 400 },
      { spine: "ib-spine-1", ports: 8, portGbps: 400 },
    ]);
    const nodes = expandProfile(profile).map((n) => ({ name: n.metadata!.name!, labels: n.metadata!.labels! }));
    expect(fabricTopologyStatus(fabric!.spec, nodes).condition).toMatchObject({ status: "True", reason: "NodesMatch" });
  });

  it.each(["default", "large"])("the %s profile's fabrics are valid and in step with its nodes", async (name) => {
    const profile = await loadProfile(name);
    const fabrics = expandFabrics(profile);
    expect(fabrics.length).toBeGreaterThan(0);
    const nodes = expandProfile(profile).map((n) => ({ name: n.metadata!.name!, labels: n.metadata!.labels! }));
    for (const f of fabrics) {
      expect(fabricTopologyStatus(f.spec, nodes).condition.status).toBe("True");
      expect(() => buildFabric(fabricSpecOf(f.spec))).not.toThrow();
    }
  });
});
