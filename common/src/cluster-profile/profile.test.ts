import { describe, expect, it } from "vitest";
import { GpuResource, parseNodeTopology, TopologyLabel } from "../../../crds/src/topology.js";
import {
  expandProfile,
  KwokNodeAnnotation,
  loadProfile,
  parseProfile,
  ProfileError,
  validateProfile,
} from "./profile.js";

const group = {
  namePrefix: "h100-ib",
  count: 5,
  gpuModel: "H100-80GB",
  gpusPerNode: 8,
  nicType: "infiniband",
  nicCount: 8,
  nicBandwidthGbps: 400,
  island: "ib-a",
  leafPrefix: "ib-a-leaf",
  nodesPerLeaf: 2,
  cpu: "224",
  memory: "2Ti",
};
const profileWith = (overrides: Record<string, unknown>, extraGroups: Record<string, unknown>[] = []): unknown => ({
  name: "t",
  groups: [{ ...group, ...overrides }, ...extraGroups],
});

describe("validateProfile rejects bad input, naming the field", () => {
  describe.each([
    { name: "not a mapping", doc: ["x"], field: "(document)" },
    { name: "unknown top-level field", doc: { name: "t", groups: [group], grups: [] }, field: "grups" },
    { name: "name not a DNS label", doc: { name: "Big_One", groups: [group] }, field: "name" },
    { name: "no groups", doc: { name: "t", groups: [] }, field: "groups" },
    { name: "misspelt group field", doc: profileWith({ nicBandwithGbps: 400 }), field: "groups[0].nicBandwithGbps" },
    { name: "missing count", doc: profileWith({ count: undefined }), field: "groups[0].count" },
    { name: "zero count", doc: profileWith({ count: 0 }), field: "groups[0].count" },
    { name: "fractional GPUs", doc: profileWith({ gpusPerNode: 1.5 }), field: "groups[0].gpusPerNode" },
    { name: "unknown GPU model", doc: profileWith({ gpuModel: "B200" }), field: "groups[0].gpuModel" },
    { name: "unknown NIC type", doc: profileWith({ nicType: "omnipath" }), field: "groups[0].nicType" },
    { name: "bandwidth as text", doc: profileWith({ nicBandwidthGbps: "400G" }), field: "groups[0].nicBandwidthGbps" },
    { name: "island with capitals", doc: profileWith({ island: "IB-A" }), field: "groups[0].island" },
    { name: "memory not a quantity", doc: profileWith({ memory: "2 TB" }), field: "groups[0].memory" },
    { name: "duplicate name prefix", doc: profileWith({}, [{ ...group }]), field: "groups[1].namePrefix" },
  ])("$name", ({ doc, field }) => {
    it(`throws ProfileError for ${field}`, () => {
      const err = (() => {
        try {
          validateProfile(doc, "test.yaml");
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err).toBeInstanceOf(ProfileError);
      expect((err as ProfileError).field).toBe(field);
      expect((err as ProfileError).message).toContain(`cluster profile test.yaml: ${field}`);
    });
  });

  it("reports invalid YAML as a ProfileError with the parser's error as cause", () => {
    expect(() => parseProfile("name: [unclosed", "bad.yaml")).toThrow(ProfileError);
  });

  it("accepts cpu written as a YAML number and defaults pods to 110", () => {
    const profile = validateProfile(profileWith({ cpu: 224 }));
    expect(profile.groups[0]).toMatchObject({ cpu: "224", pods: 110 });
  });
});

describe("expandProfile", () => {
  it("names nodes with zero-padded indexes and fills leaves of nodesPerLeaf nodes", () => {
    const nodes = expandProfile(validateProfile(profileWith({ count: 12, nodesPerLeaf: 5 })));
    expect(nodes.map((n) => n.metadata?.name)).toEqual(
      Array.from({ length: 12 }, (_, i) => `h100-ib-${String(i).padStart(2, "0")}`),
    );
    expect(nodes.map((n) => n.metadata?.labels?.[TopologyLabel.leaf])).toEqual([
      ...Array(5).fill("ib-a-leaf-0"),
      ...Array(5).fill("ib-a-leaf-1"),
      ...Array(2).fill("ib-a-leaf-2"),
    ]);
  });

  it("gives each node the kwok annotation, GPU capacity and allocatable, and topology labels the API parses", () => {
    const [node] = expandProfile(validateProfile(profileWith({ count: 1 })));
    expect(node?.metadata?.annotations).toEqual({ [KwokNodeAnnotation.key]: KwokNodeAnnotation.value });
    expect(node?.metadata?.labels?.["type"]).toBe("kwok");
    expect(node?.spec?.taints).toBeUndefined();
    expect(node?.status?.capacity).toEqual({ cpu: "224", memory: "2Ti", pods: "110", [GpuResource]: "8" });
    expect(node?.status?.allocatable).toEqual(node?.status?.capacity);
    expect(parseNodeTopology("h100-ib-0", node?.metadata?.labels ?? {})).toEqual({
      nodeName: "h100-ib-0",
      gpuModel: "H100-80GB",
      gpuCount: 8,
      nicType: "infiniband",
      nicCount: 8,
      nicBandwidthGbps: 400,
      leaf: "ib-a-leaf-0",
      island: "ib-a",
    });
  });
});

describe("checked-in profiles", () => {
  it("default: 4 H100 on InfiniBand over 2 leaves, 4 H100 on RoCE, 2 A100 on Ethernet, 80 GPUs", async () => {
    const nodes = expandProfile(await loadProfile("default"));
    const topo = nodes.map((n) => parseNodeTopology(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
    const count = (pred: (t: (typeof topo)[number]) => boolean): number => topo.filter(pred).length;
    expect(nodes).toHaveLength(10);
    expect(count((t) => t.gpuModel === "H100-80GB" && t.nicType === "infiniband" && t.island === "ib-a")).toBe(4);
    expect(new Set(topo.filter((t) => t.island === "ib-a").map((t) => t.leaf)).size).toBe(2);
    expect(count((t) => t.gpuModel === "H100-80GB" && t.nicType === "roce" && t.island === "roce-a")).toBe(4);
    expect(count((t) => t.gpuModel === "A100-80GB" && t.nicType === "ethernet")).toBe(2);
    expect(topo.reduce((sum, t) => sum + t.gpuCount, 0)).toBe(80);
  });

  it("large: 1,000 uniquely named nodes on 50 leaves of 20, in 5 islands", async () => {
    const nodes = expandProfile(await loadProfile("large"));
    const topo = nodes.map((n) => parseNodeTopology(n.metadata?.name ?? "", n.metadata?.labels ?? {}));
    expect(nodes).toHaveLength(1000);
    expect(new Set(topo.map((t) => t.nodeName)).size).toBe(1000);
    const perLeaf = new Map<string, number>();
    for (const t of topo) perLeaf.set(t.leaf, (perLeaf.get(t.leaf) ?? 0) + 1);
    expect(perLeaf.size).toBe(50);
    expect(new Set(perLeaf.values())).toEqual(new Set([20]));
    expect(new Set(topo.map((t) => t.island)).size).toBe(5);
  });

  it("loading a missing profile names the file", async () => {
    await expect(loadProfile("no-such-profile")).rejects.toThrow(/no-such-profile\.yaml: \(file\) cannot be read/);
  });
});
