/**
 * The network connections a running training job opens, from its placement and collective pattern (pure).
 *
 * Ranks follow Megatron's order (operator/src/training/types.ts): rank = (ppRank·dp + dpRank)·tp + tpRank and
 * rank = nodeRank·gpusPerNode + localRank. GPU localRank uses NIC localRank mod nicCount (rail-optimised
 * fabrics: one NIC per GPU, the nearest one, as NCCL picks) for PP; a DP group's channels use its share of NICs.
 *
 *  - TP stays inside a node (NVLink): no network connection.
 *  - DP: one communicator per (ppRank, tpRank), its ranks in dpRank order. NCCL builds its inter-node pattern over
 *    the group's nodes in that order (consecutive ranks on one node collapse into one hop) and runs it on
 *    `channels` NICs at once: a node holds tp such groups, so each gets nicCount ÷ tp of the node's NICs (at
 *    least one). Every channel's connection carries its NIC's line rate while the all-reduce runs.
 *      ring: node i → node i+1 (cyclic), per channel.
 *      tree: NCCL's double binary tree: two complementary binary trees over the nodes (the second is the first
 *            with node order reversed), channels split between them; every tree edge carries reduce traffic up
 *            and broadcast traffic down, so it is a connection in each direction. With one channel both trees
 *            share its NIC, half its line rate each.
 *  - PP: rank r of stage s exchanges activations (forward) and gradients (backward) with the rank of the same
 *    (dpRank, tpRank) in stage s + 1: a connection each way between their nodes, at ppLoadFraction of the NIC's
 *    line rate (the share of time the sends keep the link busy; 1 = worst case, all at once with the all-reduce).
 *
 * Every connection of every job is taken to be active at once: the planner bounds the worst case.
 */

export const CollectiveAlgorithm = { ring: "ring", tree: "tree" } as const;
export type CollectiveAlgorithm = (typeof CollectiveAlgorithm)[keyof typeof CollectiveAlgorithm];

export interface TrafficJob {
  name: string;
  tp: number;
  pp: number;
  dp: number;
  gpusPerNode: number;
  /** Node of every global rank (index = rank). */
  rankNodes: readonly string[];
  dpAlgorithm: CollectiveAlgorithm;
  /** Fraction of NIC line rate a PP connection carries on average; default 1 (worst case). 0: no PP connections. */
  ppLoadFraction?: number;
}

/** What the planner needs of a node. */
export interface FabricNode {
  leaf: string;
  nicCount: number;
  nicBandwidthGbps: number;
}

export const ConnectionKind = { dpRing: "dp-ring", dpTree: "dp-tree", pp: "pp" } as const;
export type ConnectionKind = (typeof ConnectionKind)[keyof typeof ConnectionKind];

export interface Connection {
  /** Stable across re-plans: job, communicator, channel and the two ranks. */
  id: string;
  job: string;
  kind: ConnectionKind;
  /** "dp-pp<s>-tp<t>" or "pp<s>-dp<d>-tp<t>". */
  communicator: string;
  srcRank: number;
  dstRank: number;
  srcNode: string;
  dstNode: string;
  /** Source NIC index on srcNode (mlx5_<nic>). */
  nic: number;
  demandGbps: number;
}

export class TrafficJobError extends Error {
  override name = "TrafficJobError";
  constructor(
    readonly job: string,
    message: string,
  ) {
    super(`job ${job}: ${message}`);
  }
}

/** All network connections of one job; throws TrafficJobError on an inconsistent shape or unknown node. */
export function jobConnections(job: TrafficJob, nodes: ReadonlyMap<string, FabricNode>): Connection[] {
  validateJob(job, nodes);
  const out: Connection[] = [];
  for (let s = 0; s < job.pp; s++) {
    for (let t = 0; t < job.tp; t++) out.push(...dpConnections(job, nodes, s, t));
  }
  const fraction = job.ppLoadFraction ?? 1;
  if (fraction > 0) out.push(...ppConnections(job, nodes, fraction));
  return out;
}

function validateJob(job: TrafficJob, nodes: ReadonlyMap<string, FabricNode>): void {
  for (const [field, value] of [
    ["tp", job.tp],
    ["pp", job.pp],
    ["dp", job.dp],
    ["gpusPerNode", job.gpusPerNode],
  ] as const) {
    if (!Number.isInteger(value) || value < 1)
      throw new TrafficJobError(job.name, `${field} must be a positive integer, got ${value}`);
  }
  const world = job.tp * job.pp * job.dp;
  if (job.rankNodes.length !== world)
    throw new TrafficJobError(job.name, `has ${job.rankNodes.length} ranks but tp × pp × dp = ${world}`);
  if (job.gpusPerNode % job.tp !== 0)
    throw new TrafficJobError(job.name, `tp ${job.tp} must divide gpusPerNode ${job.gpusPerNode}`);
  const fraction = job.ppLoadFraction ?? 1;
  if (!(fraction >= 0 && fraction <= 1))
    throw new TrafficJobError(job.name, `ppLoadFraction must be in [0, 1], got ${fraction}`);
  for (const [rank, node] of job.rankNodes.entries()) {
    if (!nodes.has(node))
      throw new TrafficJobError(job.name, `rank ${rank} is on node ${node}, which is not in the fabric`);
  }
}

const rankOf = (job: TrafficJob, s: number, d: number, t: number): number => (s * job.dp + d) * job.tp + t;
const localRankOf = (job: TrafficJob, rank: number): number => rank % job.gpusPerNode;

/** The group's nodes in dpRank order, consecutive ranks on one node collapsed; with the first rank on each. */
function groupHops(job: TrafficJob, s: number, t: number): { node: string; rank: number }[] {
  const hops: { node: string; rank: number }[] = [];
  for (let d = 0; d < job.dp; d++) {
    const rank = rankOf(job, s, d, t);
    const node = job.rankNodes[rank]!;
    if (hops.length === 0 || hops[hops.length - 1]!.node !== node) hops.push({ node, rank });
  }
  // A ring that leaves a node and comes back later is still one hop per visit; only a wrap-around duplicate merges.
  if (hops.length > 1 && hops[0]!.node === hops[hops.length - 1]!.node) hops.pop();
  return hops;
}

function dpConnections(job: TrafficJob, nodes: ReadonlyMap<string, FabricNode>, s: number, t: number): Connection[] {
  const hops = groupHops(job, s, t);
  if (hops.length < 2) return [];
  const communicator = `dp-pp${s}-tp${t}`;
  const out: Connection[] = [];
  const add = (
    kind: ConnectionKind,
    channel: number,
    from: { node: string; rank: number },
    to: { node: string; rank: number },
    share: number,
  ): void => {
    const node = nodes.get(from.node)!;
    // The node's NICs are split between its tp groups: group t uses NICs t·channels … (t + 1)·channels − 1.
    const nic = (t * channelsOf(job, node) + channel) % node.nicCount;
    out.push({
      id: `${job.name}/${communicator}/c${channel}/${from.rank}>${to.rank}`,
      job: job.name,
      kind,
      communicator,
      srcRank: from.rank,
      dstRank: to.rank,
      srcNode: from.node,
      dstNode: to.node,
      nic,
      demandGbps: node.nicBandwidthGbps * share,
    });
  };
  const channels = channelsOf(job, nodes.get(hops[0]!.node)!);
  if (job.dpAlgorithm === CollectiveAlgorithm.ring) {
    for (let c = 0; c < channels; c++) {
      for (let i = 0; i < hops.length; i++) add(ConnectionKind.dpRing, c, hops[i]!, hops[(i + 1) % hops.length]!, 1);
    }
    return out;
  }
  const trees = [hops, [...hops].reverse()];
  for (let c = 0; c < Math.max(channels, 2); c++) {
    const tree = trees[c % 2]!;
    // One channel: both trees share it, half the NIC each; otherwise each channel is one tree's.
    const share = channels === 1 ? 0.5 : 1;
    const channel = channels === 1 ? 0 : c;
    for (let i = 1; i < tree.length; i++) {
      const parent = tree[Math.floor((i - 1) / 2)]!;
      add(ConnectionKind.dpTree, channel, tree[i]!, parent, share);
      add(ConnectionKind.dpTree, channel, parent, tree[i]!, share);
    }
  }
  // Ids must stay unique when one channel carries both trees: tag the second tree's connections.
  return dedupeIds(out);
}

function channelsOf(job: TrafficJob, node: FabricNode): number {
  return Math.max(1, Math.floor(node.nicCount / job.tp));
}

function ppConnections(job: TrafficJob, nodes: ReadonlyMap<string, FabricNode>, fraction: number): Connection[] {
  const out: Connection[] = [];
  for (let s = 0; s + 1 < job.pp; s++) {
    for (let d = 0; d < job.dp; d++) {
      for (let t = 0; t < job.tp; t++) {
        const a = rankOf(job, s, d, t);
        const b = rankOf(job, s + 1, d, t);
        const communicator = `pp${s}-dp${d}-tp${t}`;
        for (const [from, to] of [
          [a, b],
          [b, a],
        ] as const) {
          const srcNode = job.rankNodes[from]!;
          const dstNode = job.rankNodes[to]!;
          if (srcNode === dstNode) continue;
          const node = nodes.get(srcNode)!;
          out.push({
            id: `${job.name}/${communicator}/${from}>${to}`,
            job: job.name,
            kind: ConnectionKind.pp,
            communicator,
            srcRank: from,
            dstRank: to,
            srcNode,
            dstNode,
            nic: localRankOf(job, from) % node.nicCount,
            demandGbps: node.nicBandwidthGbps * fraction,
          });
        }
      }
    }
  }
  return out;
}

function dedupeIds(connections: Connection[]): Connection[] {
  const seen = new Map<string, number>();
  return connections.map((c) => {
    const n = seen.get(c.id) ?? 0;
    seen.set(c.id, n + 1);
    return n === 0 ? c : { ...c, id: `${c.id}/t${n}` };
  });
}
