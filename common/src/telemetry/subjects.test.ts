import { describe, expect, it } from "vitest";
import {
  collectivesMessage,
  decodeCollectives,
  decodeLoad,
  encodeCollectives,
  encodeJson,
  subjectFor,
  subscriptionFor,
  TelemetryDecodeError,
} from "./subjects.js";

describe("subjects", () => {
  it.each([
    ["gpu-node-1", "gpufleet.v1.collectives.gpu-node-1"],
    ["node.with.dots", "gpufleet.v1.collectives.node_with_dots"],
  ])("node %s -> %s", (node, subject) => expect(subjectFor("collectives", node)).toBe(subject));

  it("subscriptions match every node", () => expect(subscriptionFor("rdma")).toBe("gpufleet.v1.rdma.*"));
});

describe("decoding at the operator's edge", () => {
  const good = {
    communicator: "c",
    rank: 0,
    nRanks: 2,
    collective: "AllGather" as const,
    sequence: 3,
    bytes: 8,
    startUnixUs: 1,
    endUnixUs: 2,
    peers: [],
  };

  it("round-trips records", () => {
    expect(decodeCollectives("s", encodeCollectives("n", [good], 5, 0)).records).toEqual([good]);
  });

  it("writes exactly what JSON.stringify writes for the message", () => {
    const records = [
      good,
      {
        ...good,
        communicator: 'c"q\u00e9\n',
        sequence: 2 ** 52 + 1,
        bytes: 0.5,
        endUnixUs: Number.NaN,
        peers: [
          { peerRank: 1, bytes: 1e21, startUnixUs: -0, endUnixUs: Infinity },
          { peerRank: 0, bytes: 1, startUnixUs: 2, endUnixUs: 3 },
        ],
      },
      { ...good, collective: "Send" as const },
    ];
    const decoder = new TextDecoder();
    for (const source of [undefined, { podNamespace: "ns", podName: "p\u2028" }]) {
      for (const batch of [[], records]) {
        expect(decoder.decode(encodeCollectives("node.a", batch, 17, 3, source))).toBe(
          decoder.decode(encodeJson(collectivesMessage("node.a", batch, 17, 3, source))),
        );
      }
    }
  });

  it.each([
    ["not JSON", new TextEncoder().encode("{"), /not JSON/],
    [
      "wrong schema version",
      encodeJson({ schema: "gpufleet.collectives/v0", node: "n", sentUnixMs: 1, droppedSincePrevious: 0, records: [] }),
      /schema/,
    ],
    [
      "short tuple",
      encodeJson({
        schema: "gpufleet.collectives/v1",
        node: "n",
        sentUnixMs: 1,
        droppedSincePrevious: 0,
        records: [["c", 0, 2]],
      }),
      /records\/0/,
    ],
  ])("rejects %s", (_name, data, error) => {
    expect(() => decodeCollectives("gpufleet.v1.collectives.n", data)).toThrow(TelemetryDecodeError);
    expect(() => decodeCollectives("gpufleet.v1.collectives.n", data)).toThrow(error);
  });

  it("rejects a load report with a KV fraction above 1", () => {
    const report = {
      workerId: "w",
      podNamespace: "ns",
      podName: "p",
      unixMs: 1,
      queueLength: 0,
      runningRequests: 0,
      kvCacheUsedFraction: 1.5,
      kvCacheUsedBytes: 0,
      ttftMs: 0,
      tpotMs: 0,
      tokensPerSecond: 0,
    };
    expect(() =>
      decodeLoad("s", encodeJson({ schema: "gpufleet.load/v1", node: "n", sentUnixMs: 1, reports: [report] })),
    ).toThrow(/kvCacheUsedFraction/);
  });
});
