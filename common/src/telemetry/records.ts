/**
 * Per-collective records as workers report them (what an NCCL profiler plugin sees per collective: communicator,
 * rank, collective, sequence number, bytes, start/end, and per-peer transfers from its proxy/net events). Shared by
 * the agent (which validates them at its gRPC edge) and the operator (which reads them from JetStream).
 */

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
export const COLLECTIVES: ReadonlySet<string> = new Set(Object.values(Collective));

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
