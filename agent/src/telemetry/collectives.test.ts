import { describe, expect, it } from "vitest";
import type { CollectiveRecord__Output } from "../grpc/generated/gpufleet/worker/v1/CollectiveRecord.js";
import { InvalidRecordError, validateRecord } from "./collectives.js";

const base: CollectiveRecord__Output = {
  communicator: "a1b2",
  rank: 1,
  nRanks: 4,
  collective: "AllReduce",
  sequence: 9,
  bytes: 4096,
  startUnixUs: 1000,
  endUnixUs: 1500,
  peers: [{ peerRank: 2, bytes: 2048, startUnixUs: 1000, endUnixUs: 1400 }],
};

describe("validateRecord", () => {
  it("accepts a well-formed record and a not-yet-completed one", () => {
    expect(validateRecord(base, 0)).toMatchObject({ communicator: "a1b2", rank: 1, peers: [{ peerRank: 2 }] });
    expect(validateRecord({ ...base, endUnixUs: 0 }, 0).endUnixUs).toBe(0);
  });

  it.each([
    { name: "empty communicator", patch: { communicator: "" }, error: /communicator/ },
    { name: "unknown collective", patch: { collective: "AllTheThings" }, error: /collective "AllTheThings"/ },
    { name: "rank outside the communicator", patch: { rank: 4 }, error: /rank 4 is outside 0..3/ },
    { name: "no ranks", patch: { nRanks: 0 }, error: /nRanks/ },
    { name: "end before start", patch: { endUnixUs: 10 }, error: /before/ },
    { name: "missing start", patch: { startUnixUs: 0 }, error: /startUnixUs/ },
    { name: "bad peer", patch: { peers: [{ peerRank: 9, bytes: 1, startUnixUs: 1, endUnixUs: 2 }] }, error: /peer 0/ },
  ])("rejects $name", ({ patch, error }) => {
    expect(() => validateRecord({ ...base, ...patch }, 3)).toThrow(InvalidRecordError);
    expect(() => validateRecord({ ...base, ...patch }, 3)).toThrow(error);
  });
});
