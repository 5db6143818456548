import { describe, expect, it } from "vitest";
import { latencyCoefficients } from "../../../../common/src/models/latency.js";
import { kvLink, kvTransferMs, parseKvDescription, type KvLinkEnd } from "./kv-transfer.js";

const h100 = (nodeName: string, gpus: number, nicGBpsPerGpu = 50): KvLinkEnd => ({
  nodeName,
  gpuModel: "H100-80GB",
  gpus,
  nicGBpsPerGpu,
});

describe("kvLink", () => {
  it.each([
    // Same node: NVLink pairs, min(GPUs) of them at 450 GB/s × 0.8.
    ["one GPU to one GPU on a node", h100("n1", 1), h100("n1", 1), { kind: "nvlink", GBps: 360 }],
    ["TP=2 to TP=4 on a node: two pairs", h100("n1", 2), h100("n1", 4), { kind: "nvlink", GBps: 720 }],
    // Across nodes: GPUs × NIC share × 0.8 on each side, the slower side wins.
    ["8 × 400G NICs on both nodes, one GPU each", h100("n1", 1), h100("n2", 1), { kind: "nic", GBps: 40 }],
    ["TP=4 prefill to a TP=1 decode", h100("n1", 4), h100("n2", 1), { kind: "nic", GBps: 40 }],
    ["a slow receiving node", h100("n1", 1), h100("n2", 1, 0.125), { kind: "nic", GBps: 0.1 }],
  ])("%s", (_name, source, destination, expected) => {
    const link = kvLink(source, destination);
    expect(link.kind).toBe(expected.kind);
    expect(link.GBps).toBeCloseTo(expected.GBps, 9);
  });

  it("takes NVLink from each side's GPU model (A100 pairs are slower)", () => {
    const a100: KvLinkEnd = { nodeName: "n1", gpuModel: "A100-80GB", gpus: 1, nicGBpsPerGpu: 50 };
    expect(kvLink(a100, a100).GBps).toBeCloseTo(latencyCoefficients("A100-80GB").p2pNvlinkGBps, 9);
    expect(kvLink(a100, a100).GBps).toBeCloseTo(240, 9);
  });
});

describe("kvTransferMs", () => {
  it.each([
    ["1000 Llama-3-8B tokens over NVLink", 1000 * 131072, { kind: "nvlink", GBps: 360 } as const, 0.3640889],
    ["the same over 40 GB/s of NICs", 1000 * 131072, { kind: "nic", GBps: 40 } as const, 3.2768],
    ["the same over 0.1 GB/s", 1000 * 131072, { kind: "nic", GBps: 0.1 } as const, 1310.72],
    ["nothing", 0, { kind: "nic", GBps: 40 } as const, 0],
  ])("%s", (_name, bytes, link, ms) => {
    expect(kvTransferMs(bytes, link)).toBeCloseTo(ms, 6);
  });

  it("refuses a link without bandwidth", () => {
    expect(() => kvTransferMs(1, { kind: "nic", GBps: 0 })).toThrow(RangeError);
  });
});

describe("parseKvDescription", () => {
  const good = {
    request_id: "r",
    model: "m",
    prompt_tokens: 10,
    output_tokens: 1,
    priority: 0,
    blocks: 1,
    bytes: 1310720,
    block_size_tokens: 16,
    source: { node: "n1", gpu_model: "H100-80GB", gpus: 1, nic_gbps_per_gpu: 50 },
  };

  it("accepts what a prefill instance sends", () => {
    expect(parseKvDescription(good)).toEqual(good);
  });

  it.each([
    ["no source", { ...good, source: undefined }, "/source"],
    ["negative bytes", { ...good, bytes: -1 }, "/bytes"],
    ["no request id", { ...good, request_id: "" }, "/request_id"],
  ])("names what is wrong: %s", (_name, value, path) => {
    expect(parseKvDescription(value)).toEqual(expect.stringContaining(path));
  });
});
