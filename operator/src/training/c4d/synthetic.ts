/**
 * Hand-made collective telemetry for the detector's unit tests: every rank computes, enters the collective, sends
 * to four peers (r+1, r-1, r+g+1, r-g-1 around the job, g ranks per node: two NVLink and two network peers for most
 * ranks) and the collective ends when the slowest transfer of the slowest rank's arrival is done. Faults are
 * functions of (rank or connection, sequence), so a test states exactly what is wrong and when. Records go through
 * the real read model.
 */
import type { CollectiveRecord, PeerTransfer } from "../../../../common/src/telemetry/records.js";
import { TelemetryReadModel, type CommunicatorView } from "../../telemetry/read-model.js";

export interface SyntheticJob {
  nodes: number;
  ranksPerNode: number;
  sequences: number;
  startUnixMs?: number;
  /** Compute before collective k on rank r, µs (default 50,000). */
  computeUs?: (rank: number, sequence: number) => number;
  /** Transfer time of sender -> receiver in collective k, µs (default 1,000 on a node, 4,000 between nodes). */
  transferUs?: (sender: number, receiver: number, sequence: number, sameNode: boolean) => number;
  /** Rank r never enters collective k (and the job stops there). */
  missing?: (rank: number, sequence: number) => boolean;
  /** The transfer sender -> receiver in collective k never finishes (and the job stops there). */
  unfinished?: (sender: number, receiver: number, sequence: number) => boolean;
  /** Records not delivered (telemetry loss). */
  lost?: (rank: number, sequence: number) => boolean;
  /** Only ring peers r+1 (one channel): each endpoint has a single network peer. */
  ringOnly?: boolean;
}

export interface SyntheticTelemetry {
  communicators: CommunicatorView[];
  rankNodes: string[];
  /** When the last collective ended (or, when it never did, when the last rank entered it), Unix ms. */
  lastUnixMs: number;
  /** Start (first entry) of each sequence, Unix ms. */
  sequenceStartUnixMs: number[];
}

export const BYTES_PER_TRANSFER = 64 * 2 ** 20;

export function peersOf(rank: number, n: number, g: number, ringOnly: boolean): number[] {
  const mod = (x: number): number => ((x % n) + n) % n;
  if (ringOnly) return [mod(rank + 1)];
  return [...new Set([mod(rank + 1), mod(rank - 1), mod(rank + g + 1), mod(rank - g - 1)])].filter((p) => p !== rank);
}

export function syntheticTelemetry(job: SyntheticJob): SyntheticTelemetry {
  const n = job.nodes * job.ranksPerNode;
  const rankNodes = Array.from({ length: n }, (_, r) => `node-${Math.floor(r / job.ranksPerNode)}`);
  const computeUs = job.computeUs ?? (() => 50_000);
  const transferUs = job.transferUs ?? ((_s: number, _d: number, _k: number, same: boolean) => (same ? 1_000 : 4_000));
  const model = new TelemetryReadModel();
  let prevEndUs = (job.startUnixMs ?? 1_700_000_000_000) * 1000;
  const sequenceStartUnixMs: number[] = [];
  let lastUnixMs = prevEndUs / 1000;
  for (let k = 0; k < job.sequences; k++) {
    const starts = Array.from({ length: n }, (_, r) => Math.round(prevEndUs + computeUs(r, k)));
    const entered = starts.map((_, r) => !job.missing?.(r, k));
    const allIn = starts.reduce((m, s, r) => (entered[r] ? Math.max(m, s) : m), 0);
    const hung = entered.some((e) => !e);
    let stalled = hung;
    let slowest = 0;
    const peers: PeerTransfer[][] = [];
    for (let r = 0; r < n; r++) {
      peers.push(
        peersOf(r, n, job.ranksPerNode, job.ringOnly ?? false).map((d) => {
          const stuck = hung || (job.unfinished?.(r, d, k) ?? false);
          if (stuck) stalled = true;
          const t = Math.round(transferUs(r, d, k, rankNodes[r] === rankNodes[d]));
          slowest = Math.max(slowest, t);
          return { peerRank: d, bytes: BYTES_PER_TRANSFER, startUnixUs: allIn, endUnixUs: stuck ? 0 : allIn + t };
        }),
      );
    }
    const endUs = stalled ? 0 : allIn + slowest;
    const records: CollectiveRecord[] = [];
    for (let r = 0; r < n; r++) {
      if (!entered[r] || job.lost?.(r, k)) continue;
      records.push({
        communicator: "job-a",
        rank: r,
        nRanks: n,
        collective: "AllReduce",
        sequence: k,
        bytes: BYTES_PER_TRANSFER,
        startUnixUs: starts[r]!,
        endUnixUs: endUs,
        peers: peers[r]!,
      });
    }
    model.applyCollectives(
      { node: "synthetic", sentUnixMs: allIn / 1000, droppedSincePrevious: 0, source: undefined, records },
      "ns/job-a",
      allIn / 1000,
    );
    sequenceStartUnixMs.push(Math.min(...starts.filter((_, r) => entered[r])) / 1000);
    if (stalled) {
      lastUnixMs = allIn / 1000;
      break;
    }
    prevEndUs = endUs;
    lastUnixMs = endUs / 1000;
  }
  return { communicators: [...model.communicatorsOf("ns/job-a")], rankNodes, lastUnixMs, sequenceStartUnixMs };
}
