import { describe, expect, it } from "vitest";
import type { CollectiveRecord } from "../../../../common/src/telemetry/records.js";
import type { CommunicatorView } from "../../telemetry/read-model.js";
import type { NodeTopology } from "../../../../crds/src/topology.js";
import { currentAttemptCommunicators, rankLatencies, rankNicsOf, rankNodesOf } from "./input.js";

const T = 1_800_000_000_000; // ms

function rec(rank: number, sequence: number, startMs: number, durationMs: number, sendMs?: number): CollectiveRecord {
  const startUnixUs = startMs * 1000;
  return {
    communicator: "c",
    rank,
    nRanks: 4,
    collective: "AllReduce",
    sequence,
    bytes: 1 << 20,
    startUnixUs,
    endUnixUs: durationMs < 0 ? 0 : startUnixUs + durationMs * 1000,
    peers:
      sendMs === undefined
        ? []
        : [{ peerRank: (rank + 1) % 4, bytes: 1 << 20, startUnixUs, endUnixUs: startUnixUs + sendMs * 1000 }],
  };
}

function comm(id: string, records: CollectiveRecord[]): CommunicatorView {
  const sequences = new Map<number, Map<number, CollectiveRecord>>();
  for (const r of records) {
    if (!sequences.has(r.sequence)) sequences.set(r.sequence, new Map());
    sequences.get(r.sequence)!.set(r.rank, r);
  }
  return {
    communicator: id,
    job: "ns/job",
    nRanks: 4,
    sequences,
    evictedThrough: -1,
    recordsAccepted: records.length,
    updatedUnixMs: T,
  };
}

describe("rankNodesOf", () => {
  it("maps global ranks to nodes as torchrun does (rank = nodeRank × gpusPerNode + localRank)", () => {
    expect(rankNodesOf(["a", "b"], 3)).toEqual(["a", "a", "a", "b", "b", "b"]);
  });
});

describe("currentAttemptCommunicators", () => {
  it("drops communicators of an earlier attempt and sequences that began before the attempt", () => {
    const old = comm("old", [rec(0, 7, T - 5000, -1), rec(1, 7, T - 5000, -1)]); // a hung collective of the old gang
    const mixed = comm("new", [rec(0, 0, T - 10, 5), rec(1, 0, T + 1, 5), rec(0, 1, T + 20, 5), rec(1, 1, T + 20, 5)]);
    const out = currentAttemptCommunicators([old, mixed], T);
    expect(out.map((c) => c.communicator)).toEqual(["new"]);
    expect([...out[0]!.sequences.keys()]).toEqual([1]);
  });

  it("hands a communicator on unchanged when all of it belongs to the attempt", () => {
    const c = comm("new", [rec(0, 0, T, 5), rec(1, 0, T, 5)]);
    expect(currentAttemptCommunicators([c], T)[0]).toBe(c);
  });
});

describe("rankLatencies", () => {
  it("gives each rank's median collective and send time over recent completed sequences", () => {
    const records: CollectiveRecord[] = [];
    for (let s = 0; s < 5; s++) {
      // rank 2's are open
      records.push(rec(0, s, T + s * 100, 10 + s, 2), rec(1, s, T + s * 100, 30, 8), rec(2, s, T + s * 100, -1));
    }
    expect(rankLatencies([comm("c", records)])).toEqual([
      { rank: 0, collectiveMs: 12, sendMs: 2 },
      { rank: 1, collectiveMs: 30, sendMs: 8 },
    ]);
  });

  it("reads only the last windowSequences sequences", () => {
    const records = [rec(0, 0, T, 100), rec(0, 1, T + 200, 10), rec(0, 2, T + 300, 20)];
    expect(rankLatencies([comm("c", records)], 2)).toEqual([{ rank: 0, collectiveMs: 15, sendMs: undefined }]);
  });
});

describe("rankNicsOf", () => {
  const topo = (nicType: NodeTopology["nicType"], nicCount: number): NodeTopology => ({
    nodeName: "n",
    gpuModel: "H100-80GB",
    gpuCount: 8,
    nicType,
    nicCount,
    nicBandwidthGbps: 400,
    leaf: "l",
    island: "i",
  });
  it("names the NIC nearest each rank's GPU, as NCCL_IB_HCA names them (one per GPU, or shared evenly)", () => {
    const nodes: Record<string, NodeTopology> = { a: topo("infiniband", 8), b: topo("ethernet", 2) };
    expect(rankNicsOf(["a", "b"], 8, (n) => nodes[n], "mlx5_")).toEqual([
      "mlx5_0",
      "mlx5_1",
      "mlx5_2",
      "mlx5_3",
      "mlx5_4",
      "mlx5_5",
      "mlx5_6",
      "mlx5_7",
      "eth0",
      "eth0",
      "eth0",
      "eth0",
      "eth1",
      "eth1",
      "eth1",
      "eth1",
    ]);
  });
  it("is undefined when a node's topology is unknown (C4D then blames nodes)", () => {
    expect(rankNicsOf(["a", "gone"], 2, (n) => (n === "a" ? topo("roce", 8) : undefined), "mlx5_")).toBeUndefined();
  });
});
