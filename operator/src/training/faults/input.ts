/**
 * What the fault monitor feeds the detector, and the per-rank latencies it exports (pure).
 *
 * The read model keeps a job's communicators across gang restarts, and the old attempt's evidence (a hung
 * collective, the old rank → node map) must never be judged against the new placement: only communicators with
 * records of the current attempt are passed on, and of those only the sequences whose every record started after
 * the attempt's first pod was created.
 */
import type { NodeTopology } from "../../../../crds/src/topology.js";
import { nicDeviceName } from "../nccl.js";
import type { CommunicatorView } from "../../telemetry/read-model.js";
import type { CollectiveRecord } from "../../../../common/src/telemetry/records.js";

/** Global rank → node, from the placement's node list (rank = nodeRank × gpusPerNode + localRank; see ../types.ts). */
export function rankNodesOf(placementNodes: readonly string[], gpusPerNode: number): string[] {
  return placementNodes.flatMap((node) => Array.from({ length: gpusPerNode }, () => node));
}

/**
 * Global rank → the NIC its inter-node traffic uses: the NIC nearest its GPU (local rank i of a node with as many
 * NICs as GPUs uses NIC i; fewer NICs are shared evenly), named as NCCL is told to use them (nccl.ts: NCCL_IB_HCA
 * `${hcaPrefix}${i}`; plain Ethernet `eth${i}`). The agent's simulated ranks send the same way (agent/src/simulation
 * runtime.ts rankNics). Undefined when a node's topology is unknown: C4D then blames nodes, not NICs.
 */
export function rankNicsOf(
  placementNodes: readonly string[],
  gpusPerNode: number,
  topologyOf: (node: string) => NodeTopology | undefined,
  hcaPrefix: string,
): string[] | undefined {
  const out: string[] = [];
  for (const node of placementNodes) {
    const t = topologyOf(node);
    if (!t) return undefined;
    for (let local = 0; local < gpusPerNode; local++)
      out.push(
        nicDeviceName(
          t.nicType,
          Math.floor((local * t.nicCount) / Math.max(t.gpuCount, gpusPerNode)) % t.nicCount,
          hcaPrefix,
        ),
      );
  }
  return out;
}

/** The communicators (and sequences) of the attempt that started at `sinceUnixMs`. */
export function currentAttemptCommunicators(
  communicators: readonly CommunicatorView[],
  sinceUnixMs: number,
): CommunicatorView[] {
  const sinceUs = sinceUnixMs * 1000;
  const out: CommunicatorView[] = [];
  for (const c of communicators) {
    const sequences = new Map<number, ReadonlyMap<number, CollectiveRecord>>();
    for (const [sequence, ranks] of c.sequences) {
      let current = true;
      for (const r of ranks.values()) if (r.startUnixUs < sinceUs) current = false;
      if (current) sequences.set(sequence, ranks);
    }
    if (sequences.size === 0) continue;
    out.push(sequences.size === c.sequences.size ? c : { ...c, sequences });
  }
  return out;
}

export interface RankLatency {
  rank: number;
  /** Median of (end − start) of the rank's completed collectives: long on ranks that wait for a slow peer. */
  collectiveMs: number;
  /** Median time of the rank's sends to its peers: long on the sending end of a slow link. */
  sendMs: number | undefined;
}

/** Per-rank medians over the last `windowSequences` completed sequences of every communicator. */
export function rankLatencies(communicators: readonly CommunicatorView[], windowSequences = 32): RankLatency[] {
  const collective = new Map<number, number[]>();
  const send = new Map<number, number[]>();
  for (const c of communicators) {
    const recent = [...c.sequences.keys()].sort((a, b) => b - a).slice(0, windowSequences);
    for (const sequence of recent) {
      for (const r of c.sequences.get(sequence)!.values()) {
        if (r.endUnixUs <= 0) continue;
        push(collective, r.rank, (r.endUnixUs - r.startUnixUs) / 1000);
        for (const p of r.peers) if (p.endUnixUs > 0) push(send, r.rank, (p.endUnixUs - p.startUnixUs) / 1000);
      }
    }
  }
  return [...collective.keys()]
    .sort((a, b) => a - b)
    .map((rank) => ({
      rank,
      collectiveMs: median(collective.get(rank)!),
      sendMs: send.has(rank) ? median(send.get(rank)!) : undefined,
    }));
}

function push(map: Map<number, number[]>, key: number, value: number): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
