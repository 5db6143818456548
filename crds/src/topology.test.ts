import { describe, expect, it } from "vitest";
import { parseNodeTopology, TopologyLabel } from "./topology.js";

const labels = {
  [TopologyLabel.gpuModel]: "H100-80GB",
  [TopologyLabel.gpuCount]: "8",
  [TopologyLabel.nicType]: "roce",
  [TopologyLabel.nicCount]: "8",
  [TopologyLabel.nicBandwidthGbps]: "200",
  [TopologyLabel.leaf]: "leaf-3",
  [TopologyLabel.island]: "roce-a",
};

describe("parseNodeTopology", () => {
  it("parses a complete label set", () => {
    expect(parseNodeTopology("n1", labels)).toEqual({
      nodeName: "n1",
      gpuModel: "H100-80GB",
      gpuCount: 8,
      nicType: "roce",
      nicCount: 8,
      nicBandwidthGbps: 200,
      leaf: "leaf-3",
      island: "roce-a",
    });
  });

  it.each([
    [
      "missing island",
      { ...labels, [TopologyLabel.island]: undefined },
      /node n1: label gpufleet.io\/island is missing/,
    ],
    [
      "bad NIC type",
      { ...labels, [TopologyLabel.nicType]: "myrinet" },
      /nic-type must be one of infiniband, roce, ethernet, got "myrinet"/,
    ],
    [
      "non-integer count",
      { ...labels, [TopologyLabel.gpuCount]: "8.5" },
      /gpu-count must be a positive integer, got "8.5"/,
    ],
    [
      "zero bandwidth",
      { ...labels, [TopologyLabel.nicBandwidthGbps]: "0" },
      /nic-bandwidth-gbps must be a positive integer/,
    ],
  ])("rejects %s naming node and label", (_name, bad, message) => {
    expect(() => parseNodeTopology("n1", bad as Record<string, string>)).toThrow(message);
  });
});
