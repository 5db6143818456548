import { describe, expect, it } from "vitest";
import { parseReplay, ReplayFormatError } from "./replay.js";

const header = JSON.stringify({ job: "ns/j", rankNodes: ["a", "b"] });
const record = {
  communicator: "c",
  rank: 0,
  nRanks: 2,
  collective: "AllReduce",
  sequence: 0,
  bytes: 8,
  startUnixUs: 1_000_000,
  endUnixUs: 2_000_000,
  peers: [{ peerRank: 1, bytes: 8, startUnixUs: 1_000_000, endUnixUs: 1_500_000 }],
};

describe("replay file format", () => {
  it("reads the header and records, visible at receivedUnixMs or completion + 300 ms", () => {
    const { header: h, records } = parseReplay(
      [header, JSON.stringify(record), JSON.stringify({ ...record, rank: 1, receivedUnixMs: 1_000 })].join("\n"),
    );
    expect(h.rankNodes).toEqual(["a", "b"]);
    expect(records.map((r) => [r.record.rank, r.visibleUnixMs])).toEqual([
      [1, 1_000],
      [0, 2_300],
    ]);
    expect("receivedUnixMs" in records[0]!.record).toBe(false);
  });
  it.each([
    { name: "no header", text: JSON.stringify(record), message: /first line must be the job header/ },
    { name: "not JSON", text: `${header}\n{oops`, message: /line 2: not JSON/ },
    {
      name: "a field of the wrong type",
      text: `${header}\n${JSON.stringify({ ...record, sequence: "x" })}`,
      message: /line 2: "sequence" must be a number/,
    },
    {
      name: "a bad peer",
      text: `${header}\n${JSON.stringify({ ...record, peers: [{ peerRank: 1 }] })}`,
      message: /peers\[0\]\.bytes/,
    },
    { name: "empty", text: "", message: /no job header/ },
  ])("refuses $name with the line", ({ text, message }) => {
    expect(() => parseReplay(text)).toThrow(ReplayFormatError);
    expect(() => parseReplay(text)).toThrow(message);
  });
});
