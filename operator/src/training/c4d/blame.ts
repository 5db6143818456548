/** Turning attributed endpoints and cells into verdicts, and the "too many at once" rule into ambiguity. */
import {
  C4dAction,
  type C4dAmbiguity,
  type C4dBlame,
  type C4dEvidence,
  type C4dFaultClass,
  type C4dVerdict,
} from "./types.js";
import type { Topology } from "./topology.js";

/** Blame for an endpoint: a NIC when known (mark it), otherwise the node (a GPU, its NVLink, an unnamed NIC). */
export function endpointBlame(
  topology: Topology,
  endpoint: number,
  ranks?: number[],
): { blame: C4dBlame; action: C4dAction } {
  const e = topology.endpoints[endpoint]!;
  const blameRanks = ranks ?? topology.ranksOf(endpoint);
  if (e.nic !== undefined) return { blame: { node: e.node, nic: e.nic, ranks: blameRanks }, action: C4dAction.markNic };
  return { blame: { node: e.node, ranks: blameRanks }, action: C4dAction.isolateNode };
}

/** Blame for the path between two endpoints: nobody is isolated (neither end is proven faulty); the job restarts. */
export function linkBlame(
  topology: Topology,
  sender: number,
  receiver: number,
  ranks: number[],
): { blame: C4dBlame; action: C4dAction } {
  const s = topology.endpoints[sender]!;
  const d = topology.endpoints[receiver]!;
  const blame: C4dBlame = { node: s.node, ranks, peerNode: d.node };
  if (s.nic !== undefined) blame.nic = s.nic;
  return { blame, action: C4dAction.restartOnly };
}

export interface Candidate {
  faultClass: C4dFaultClass;
  blame: C4dBlame;
  action: C4dAction;
  evidence: C4dEvidence;
  firstAffectedUnixMs: number;
}

/**
 * Verdicts from one test, unless they blame more nodes than `maxBlamedNodes` at once: many components failing in
 * the same instant is more likely one shared cause (a switch, a partition, lost telemetry) than many faulty nodes,
 * and blaming them all would taint healthy nodes. Then every candidate becomes one ambiguity.
 */
export function verdictsOrAmbiguity(
  candidates: readonly Candidate[],
  maxBlamedNodes: number,
  nowMs: number,
  out: { verdicts: C4dVerdict[]; ambiguous: C4dAmbiguity[] },
  what: string,
): void {
  if (candidates.length === 0) return;
  const nodes = new Set<string>();
  for (const c of candidates) {
    nodes.add(c.blame.node);
    if (c.blame.peerNode !== undefined) nodes.add(c.blame.peerNode);
  }
  if (nodes.size <= maxBlamedNodes) {
    for (const c of candidates) out.verdicts.push({ ...c, detectedUnixMs: nowMs });
    return;
  }
  const first = candidates[0]!;
  out.ambiguous.push({
    suspected: first.faultClass,
    communicator: first.evidence.communicator,
    sequence: Math.min(...candidates.map((c) => c.evidence.sequence)),
    ranks: [...new Set(candidates.flatMap((c) => c.blame.ranks))].sort((a, b) => a - b).slice(0, 64),
    nodes: [...nodes].sort().slice(0, 64),
    detail: `${what}: ${candidates.length} components on ${nodes.size} nodes at once (more than ${maxBlamedNodes}): a shared cause (switch, partition, lost telemetry) is likelier than that many faulty nodes; nobody blamed`,
    timesMs: first.evidence.timesMs,
  });
}

export const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 1 ? ms.toFixed(1) : ms.toFixed(3));

export function rankList(ranks: readonly number[], max = 8): string {
  return ranks.length <= max ? ranks.join(", ") : `${ranks.slice(0, max).join(", ")} and ${ranks.length - max} more`;
}
