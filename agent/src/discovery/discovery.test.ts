import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { TopologyLabel, parseNodeTopology } from "../../../crds/src/topology.js";
import { discoverNode, type CommandRunner } from "./discover.js";
import { FactsError, factsToLabels, scaleOutNics } from "./facts.js";
import { catalogModel, NvidiaSmiParseError, parseNvidiaSmiXml } from "./gpus.js";
import { classifyLinkLayer, parsePortState, parseRateGbps, readNics } from "./nics.js";
import { nearestGpus, nvlinkCount, parseTopoMatrix } from "./topo.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
const fixture = (path: string): Promise<string> => readFile(join(fixtures, path), "utf8");

/** Replays captured nvidia-smi output: the command path names the fixture folder. */
const fixtureRunner: CommandRunner = async (command, args) => {
  const file = args[0] === "-q" ? "nvidia-smi-q-x.xml" : "topo-m.txt";
  return fixture(join(command, file));
};

describe("parseNvidiaSmiXml", () => {
  it.each([
    {
      name: "captured H100",
      dir: "h100",
      count: 1,
      model: "H100-80GB",
      product: "NVIDIA H100 80GB HBM3",
      memoryMiB: 81559,
      first: { uuid: "GPU-306528c3-1377-01be-7d90-7db28afb6fcc", pciBusId: "00000000:00:06.0" },
    },
    {
      name: "captured H200",
      dir: "h200-captured",
      count: 1,
      model: "H200-141GB",
      product: "NVIDIA H200",
      memoryMiB: 143771,
      first: { uuid: "GPU-30ab8efd-a464-e6b4-99d2-b444c66bd336", pciBusId: "00000000:00:06.0" },
    },
    {
      name: "HGX H200 (hand-built)",
      dir: "h200",
      count: 8,
      model: "H200-141GB",
      product: "NVIDIA H200",
      memoryMiB: 143771,
      first: { uuid: "GPU-5e1f9c2a-0b7d-4a3e-9c61-1f2a3b4c5d01", pciBusId: "00000000:18:00.0" },
    },
  ])("$name", async ({ dir, count, model, product, memoryMiB, first }) => {
    const gpus = parseNvidiaSmiXml(await fixture(`${dir}/nvidia-smi-q-x.xml`));
    expect(gpus).toHaveLength(count);
    expect(gpus.map((g) => g.index)).toEqual([...Array(count).keys()]);
    expect(new Set(gpus.map((g) => g.uuid)).size).toBe(count);
    for (const g of gpus) expect(g).toMatchObject({ model, productName: product, memoryMiB });
    expect(gpus[0]).toMatchObject(first);
  });

  it("names the element when a field is malformed", () => {
    const xml = `<nvidia_smi_log><gpu id="0"><uuid>GPU-1</uuid><product_name>NVIDIA H100</product_name><fb_memory_usage><total>lots</total></fb_memory_usage></gpu></nvidia_smi_log>`;
    expect(() => parseNvidiaSmiXml(xml)).toThrow(/fb_memory_usage\/total.*"lots"/);
    expect(() => parseNvidiaSmiXml("<other/>")).toThrow(NvidiaSmiParseError);
  });
});

describe("catalogModel", () => {
  it.each([
    ["NVIDIA H100 80GB HBM3", 81559, "H100-80GB"],
    ["NVIDIA H200", 143771, "H200-141GB"],
    ["NVIDIA A100-SXM4-80GB", 81920, "A100-80GB"],
    ["NVIDIA A100-SXM4-40GB", 40960, "A100-40GB"],
    ["NVIDIA A100-PCIE-40GB", 40536, "A100-40GB"],
    ["NVIDIA H100 NVL", 95830, undefined], // 94 GB SKU: not in the catalog, must not pass for H100-80GB
    ["Tesla T4", 15360, undefined],
  ])("%s with %d MiB -> %s", (product, memoryMiB, expected) => {
    expect(catalogModel(product, memoryMiB)).toBe(expected);
  });
});

describe("parseTopoMatrix", () => {
  it.each(["h100", "h200-captured"])("reads the captured single-GPU matrix with its ANSI header (%s)", async (dir) => {
    const topo = parseTopoMatrix(await fixture(`${dir}/topo-m.txt`));
    expect(topo.devices).toEqual(["GPU0"]);
    expect(topo.numaNode).toEqual({ GPU0: 0 });
    expect(topo.nicNames).toEqual({});
  });

  it("reads GPU/NIC links, NUMA and the NIC legend of an 8-GPU node", async () => {
    const topo = parseTopoMatrix(await fixture("h200/topo-m.txt"));
    expect(topo.devices).toHaveLength(16);
    expect(topo.numaNode).toMatchObject({ GPU0: 0, GPU3: 0, GPU4: 1, GPU7: 1 });
    expect(nvlinkCount(topo, 0, 5)).toBe(18);
    expect(nvlinkCount(topo, 2, 2)).toBe(0);
    expect(topo.nicNames.NIC6).toBe("mlx5_6");
    expect(nearestGpus(topo, "mlx5_6")).toEqual([6]);
    expect(nearestGpus(topo, "eno1")).toEqual([]);
  });

  it("fails on output without a matrix", () => {
    expect(() => parseTopoMatrix("No devices were found\n")).toThrow(/GPU0/);
  });
});

describe("sysfs NICs", () => {
  it.each([
    ["400 Gb/sec (4X NDR)", 400],
    ["200 Gb/sec (4X HDR)", 200],
    ["2.5 Gb/sec (1X SDR)", 2.5],
  ])("rate %s -> %d Gb/s", (text, gbps) => expect(parseRateGbps(text)).toBe(gbps));

  it.each([
    ["4: ACTIVE", "ACTIVE"],
    ["1: DOWN", "DOWN"],
    ["2: INIT", "INIT"],
  ])("state %s", (text, state) => expect(parsePortState(text)).toBe(state));

  it.each([
    ["InfiniBand", "infiniband"],
    ["Ethernet", "roce"],
  ])("link_layer %s -> %s", (ll, type) => expect(classifyLinkLayer(ll)).toBe(type));

  it.each([
    { name: "InfiniBand NDR", root: "sysfs-ib", rdma: 8, type: "infiniband", gbps: 400, active: 8, ethernet: ["eno1"] },
    { name: "RoCE", root: "sysfs-roce", rdma: 4, type: "roce", gbps: 200, active: 3, ethernet: ["eno1"] },
    {
      name: "Ethernet only",
      root: "sysfs-ethernet",
      rdma: 0,
      type: "ethernet",
      gbps: 100,
      active: 2,
      ethernet: ["eth0", "eth1"],
    },
  ])("$name tree", async ({ root, rdma, type, gbps, active, ethernet }) => {
    const nics = await readNics(join(fixtures, root));
    expect(nics.filter((n) => n.type !== "ethernet")).toHaveLength(rdma);
    expect(nics.filter((n) => n.type === "ethernet").map((n) => n.device)).toEqual(ethernet);
    const chosen = scaleOutNics(nics);
    expect(chosen).toHaveLength(active);
    for (const n of chosen) expect(n).toMatchObject({ type, bandwidthGbps: gbps, active: true });
  });

  it("maps RDMA devices to their netdev and NUMA node", async () => {
    const nics = await readNics(join(fixtures, "sysfs-ib"));
    expect(nics.find((n) => n.device === "mlx5_5")).toMatchObject({
      netdev: "ib5",
      numaNode: 1,
      port: 1,
      gidCount: 1,
      state: "ACTIVE",
    });
    const roce = await readNics(join(fixtures, "sysfs-roce"));
    expect(roce.find((n) => n.device === "mlx5_3")).toMatchObject({
      state: "DOWN",
      active: false,
      netdev: "ens4f0np0",
    });
  });

  it("returns nothing for a root without sysfs classes", async () => {
    expect(await readNics(join(fixtures, "does-not-exist"))).toEqual([]);
  });
});

describe("discoverNode -> labels", () => {
  it.each([
    {
      name: "HGX H200 on InfiniBand",
      smi: "h200",
      sysfs: "sysfs-ib",
      leaf: "leaf-3",
      island: "ib-a",
      labels: {
        [TopologyLabel.gpuModel]: "H200-141GB",
        [TopologyLabel.gpuCount]: "8",
        [TopologyLabel.nicType]: "infiniband",
        [TopologyLabel.nicCount]: "8",
        [TopologyLabel.nicBandwidthGbps]: "400",
        [TopologyLabel.leaf]: "leaf-3",
        [TopologyLabel.island]: "ib-a",
      },
    },
    {
      name: "captured H100 on RoCE, no fabric position configured",
      smi: "h100",
      sysfs: "sysfs-roce",
      leaf: undefined,
      island: undefined,
      labels: {
        [TopologyLabel.gpuModel]: "H100-80GB",
        [TopologyLabel.gpuCount]: "1",
        [TopologyLabel.nicType]: "roce",
        [TopologyLabel.nicCount]: "3",
        [TopologyLabel.nicBandwidthGbps]: "200",
      },
    },
  ])("$name", async ({ smi, sysfs, leaf, island, labels }) => {
    const facts = await discoverNode({
      nodeName: "n1",
      nvidiaSmiPath: smi,
      sysfsRoot: join(fixtures, sysfs),
      commandTimeoutMs: 1000,
      leaf,
      island,
      run: fixtureRunner,
    });
    expect(factsToLabels(facts)).toEqual(labels);
    if (leaf)
      expect(parseNodeTopology("n1", factsToLabels(facts))).toMatchObject({ gpuCount: 8, nicBandwidthGbps: 400 });
  });

  it("joins GPU NUMA nodes and NIC affinity from the topology matrix", async () => {
    const facts = await discoverNode({
      nodeName: "n1",
      nvidiaSmiPath: "h200",
      sysfsRoot: join(fixtures, "sysfs-ib"),
      commandTimeoutMs: 1000,
      leaf: undefined,
      island: undefined,
      run: fixtureRunner,
    });
    expect(facts.gpus.map((g) => g.numaNode)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(facts.nics.find((n) => n.device === "mlx5_2")?.nearestGpus).toEqual([2]);
  });

  it.each([
    { name: "no GPUs", gpus: [], error: /no GPUs/ },
    {
      name: "unknown model",
      gpus: [
        { index: 0, uuid: "u", productName: "Tesla T4", model: undefined, memoryMiB: 15360, pciBusId: "", numaNode: 0 },
      ],
      error: /not in the hardware catalog/,
    },
  ])("refuses facts with $name", ({ gpus, error }) => {
    expect(() =>
      factsToLabels({ nodeName: "n1", simulated: false, gpus, nics: [], leaf: undefined, island: undefined }),
    ).toThrow(error);
    expect(() =>
      factsToLabels({ nodeName: "n1", simulated: false, gpus, nics: [], leaf: undefined, island: undefined }),
    ).toThrow(FactsError);
  });
});
