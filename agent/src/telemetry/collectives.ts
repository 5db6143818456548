/**
 * Per-collective records from workers (what an NCCL profiler plugin reports per collective: communicator, rank,
 * collective, sequence number, bytes, start/end, and per-peer transfers from its proxy/net events), validated at the
 * gRPC edge into plain objects.
 */
import type { CollectiveRecord__Output } from "../grpc/generated/gpufleet/worker/v1/CollectiveRecord.js";

export const Collective = {
  allReduce: "AllReduce",
  allGather: "AllGather",
  reduceScatter: "ReduceScatter",
  broadcast: "Broadcast",
  reduce: "Reduce",
  allToAll: "AllToAll",
  send: "Send",
  recv: "Recv",
} as const;
export type Collective = (typeof Collective)[keyof typeof Collective];
const COLLECTIVES: ReadonlySet<string> = new Set(Object.values(Collective));

export interface PeerTransfer {
  peerRank: number;
  bytes: number;
  startUnixUs: number;
  endUnixUs: number;
}

export interface CollectiveRecord {
  communicator: string;
  rank: number;
  nRanks: number;
  collective: Collective;
  sequence: number;
  bytes: number;
  startUnixUs: number;
  /** 0 while not completed (a hung rank never completes). */
  endUnixUs: number;
  peers: PeerTransfer[];
}

export class InvalidRecordError extends Error {
  override name = "InvalidRecordError";
  constructor(readonly index: number, message: string) {
    super(`record ${index}: ${message}`);
  }
}

/** Validates one record from the wire; throws InvalidRecordError saying which field is wrong. */
export function validateRecord(r: CollectiveRecord__Output, index: number): CollectiveRecord {
  const fail = (m: string): never => { throw new InvalidRecordError(index, m); };
  if (!r.communicator) fail("communicator is empty");
  if (!COLLECTIVES.has(r.collective)) fail(`collective "${r.collective}" is not one of ${[...COLLECTIVES].join(", ")}`);
  if (r.nRanks <= 0) fail(`nRanks must be positive, got ${r.nRanks}`);
  if (r.rank < 0 || r.rank >= r.nRanks) fail(`rank ${r.rank} is outside 0..${r.nRanks - 1}`);
  if (r.startUnixUs <= 0) fail("startUnixUs is missing");
  if (r.endUnixUs !== 0 && r.endUnixUs < r.startUnixUs) fail(`endUnixUs ${r.endUnixUs} is before startUnixUs ${r.startUnixUs}`);
  const peers = r.peers.map((p, i) => {
    if (p.peerRank < 0 || p.peerRank >= r.nRanks) fail(`peer ${i}: rank ${p.peerRank} is outside 0..${r.nRanks - 1}`);
    if (p.endUnixUs !== 0 && p.endUnixUs < p.startUnixUs) fail(`peer ${i}: end before start`);
    return { peerRank: p.peerRank, bytes: p.bytes, startUnixUs: p.startUnixUs, endUnixUs: p.endUnixUs };
  });
  return {
    communicator: r.communicator, rank: r.rank, nRanks: r.nRanks, collective: r.collective as Collective,
    sequence: r.sequence, bytes: r.bytes, startUnixUs: r.startUnixUs, endUnixUs: r.endUnixUs, peers,
  };
}
