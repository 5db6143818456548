/**
 * Simulated training step (pure): per-rank compute, then one ring all-reduce per gradient bucket, as NCCL would
 * report it per rank through the profiler plugin.
 *
 * Ring all-reduce (Patarasuk & Yuan 2009): 2(n-1) steps, each moving bytes/n over every ring link at once, so
 * time = 2(n-1)/n * bytes / B_min + 2(n-1) * latency, where B_min is the slowest ring link (a ring runs at its
 * slowest link). Links between ranks on one node run at NVLink speed, others at the NIC speed.
 * A collective is synchronous: it starts on a rank when that rank's compute is done and ends on all ranks at
 * max(starts) + transfer time; so a slow rank shows as long collectives on every other rank (they wait for it).
 * Per-peer transfers: rank r sends 2(n-1)/n * bytes to r+1, taking that share over its own link's bandwidth.
 * A hung rank never enters the collective: it reports nothing, the others report a start and no end, and the job
 * makes no further progress.
 *
 * Optional, for the C4D benchmark (defaults reproduce the single ring above exactly):
 * - `channels` > 1: the bucket is split over that many rings, as NCCL splits a collective over channels. Channel 0
 *   is the ring above; channel c visits the nodes with a different stride (1, -1, 3, -3, ... coprime with the node
 *   count) and the ranks of a node rotated by c (reversed when c is odd), so each node's NIC talks to several
 *   nodes and each GPU to two NVLink peers, as a job with several rings or communicators does. Each record has one
 *   peer transfer per channel; the collective takes as long as its slowest ring.
 * - `noise`: per-rank compute and per-transfer time multipliers (jitter, stragglers of a few percent, noisy links).
 * - `layout: "rails"` (what the agent's simulated jobs use; see railRingOrder): channels in pairs that enter every node
 *   at one GPU's NIC and leave by its neighbour's, one of the pair visiting the nodes forwards, the other backwards,
 *   so every NIC a ring crosses the network through talks to two different nodes' NICs (C4D's matrix needs >= 2
 *   peers per endpoint to tell a slow link from a slow NIC).
 * - `rankNics` (the NIC index each rank's inter-node traffic uses on its node): a slow-nic fault then slows that NIC
 *   only, not every inter-node link of the node.
 * - `fabricShare(a, b)`: the share (0, 1] of the NIC bandwidth the fabric gives the connection a -> b (a congested
 *   or failed spine path, agent/src/simulation/fabric.ts); 1 when absent.
 * - faults `slowNics` (a node's NIC at a fraction of its bandwidth, both directions, all its inter-node links) and
 *   `downLinks` (a link that stopped: every rank entered, the transfers over it never finish, so neither does the
 *   collective).
 */
import type { CollectiveRecord } from "../../../../common/src/telemetry/records.js";
import { linkKey, type Faults } from "./faults.js";

export interface TrainingPlacement {
  communicator: string;
  /** nodeName per global rank (index = rank). */
  rankNodes: string[];
  intraNodeGBps: number;
  /** Per-node NIC bandwidth for inter-node ring links, GB/s (Gbit/s / 8). */
  interNodeGBps: number;
  latencyUs: number;
  computeMs: number;
  bucketBytes: number;
  bucketsPerStep: number;
  /** Rings the bucket is split over (NCCL channels); 1 when absent. */
  channels?: number;
  /** How channels > 0 order the ranks (see the file comment); "strides" when absent. */
  layout?: "strides" | "rails";
  /** NIC index (on its node) of each rank's inter-node traffic; absent: one NIC per node. */
  rankNics?: readonly number[];
  /** Share (0, 1] of the NIC bandwidth the fabric gives the inter-node connection a -> b; 1 when absent. */
  fabricShare?: (a: number, b: number) => number;
}

/** Random variation of one step, drawn by the caller (pure here: same draws, same records). */
export interface StepNoise {
  /** Multiplier of rank r's compute slice before one bucket. */
  computeFactor(rank: number): number;
  /** Multiplier of one transfer's time on the connection sender -> receiver. */
  transferFactor(sender: number, receiver: number): number;
}

export interface StepResult {
  /** Records by rank (hung ranks have none). */
  records: CollectiveRecord[];
  /** Time the step ends (all collectives done), or undefined when a hung rank stalls the job. */
  endUnixUs: number | undefined;
  sequenceAfter: number;
}

export function linkGBps(p: TrainingPlacement, a: number, b: number, faults: Faults): number {
  const sameNode = p.rankNodes[a] === p.rankNodes[b];
  const base = sameNode ? p.intraNodeGBps : p.interNodeGBps;
  let factor = faults.slowLinks.get(linkKey(a, b)) ?? 1;
  if (!sameNode && faults.slowNics) {
    const onNic = (rank: number, end: number): boolean =>
      p.rankNodes[rank] === p.rankNodes[end] && (p.rankNics === undefined || p.rankNics[rank] === p.rankNics[end]);
    for (const [rank, f] of faults.slowNics) if (onNic(rank, a) || onNic(rank, b)) factor *= f;
  }
  if (!sameNode && p.fabricShare) factor *= p.fabricShare(a, b);
  return base * factor;
}

/** Ring order (ranks) of channel c; channel 0 is 0, 1, ..., n-1. See the file comment. */
export function ringOrder(p: TrainingPlacement, channel: number): number[] {
  const n = p.rankNodes.length;
  if (p.layout === "rails") return railRingOrder(nodeGroups(p), channel);
  if (channel === 0) return Array.from({ length: n }, (_, r) => r);
  const nodes = nodeGroups(p);
  const stride = nodeStride(nodes.length, channel);
  const order: number[] = [];
  for (let k = 0, i = 0; k < nodes.length; k++, i = (i + stride) % nodes.length) {
    const local = nodes[i]!;
    const rotated = local.map((_, j) => local[(j + channel) % local.length]!);
    order.push(...(channel % 2 === 1 ? rotated.reverse() : rotated));
  }
  return order;
}

/**
 * Rail layout: channel pair k rotates every node's ranks by 2k, so the ring enters each node at its local rank 2k
 * and leaves by local rank 2k - 1 (through their NICs, as NCCL's rings cross the network GPU-NIC pair by pair);
 * the even channel of the pair visits the nodes 0, 1, 2, ..., the odd one 0, n-1, n-2, .... Channel 0 is the
 * plain ring 0, 1, ..., n-1. Each leaving NIC thus sends to two nodes and each entering NIC receives from two
 * (one when the job has two nodes: then a slow link and a slow NIC look alike, and C4D says so).
 */
export function railRingOrder(nodes: readonly (readonly number[])[], channel: number): number[] {
  const rotation = 2 * Math.floor(channel / 2);
  const backwards = channel % 2 === 1 && nodes.length > 2;
  const order: number[] = [];
  for (let k = 0; k < nodes.length; k++) {
    const local = nodes[backwards ? (nodes.length - k) % nodes.length : k]!;
    for (let j = 0; j < local.length; j++) order.push(local[(j + rotation) % local.length]!);
  }
  return order;
}

/** Ranks grouped by node, nodes in order of their first rank. */
function nodeGroups(p: TrainingPlacement): number[][] {
  const n = p.rankNodes.length;
  const nodes: number[][] = [];
  const index = new Map<string, number>();
  for (let r = 0; r < n; r++) {
    const node = p.rankNodes[r]!;
    let i = index.get(node);
    if (i === undefined) {
      index.set(node, (i = nodes.length));
      nodes.push([]);
    }
    nodes[i]!.push(r);
  }
  return nodes;
}

/** The channel-th of 1, -1, 3, -3, 5, ... (mod nodes) that is coprime with the node count (1 when none is left). */
function nodeStride(nodes: number, channel: number): number {
  if (nodes <= 2) return 1;
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const strides: number[] = [];
  for (let k = 1; k < nodes && strides.length <= channel; k += 2) {
    for (const s of [k % nodes, (nodes - k) % nodes]) if (gcd(s, nodes) === 1 && !strides.includes(s)) strides.push(s);
  }
  return strides[channel] ?? 1;
}

export function ringAllReduceUs(p: TrainingPlacement, faults: Faults): number {
  const n = p.rankNodes.length;
  if (n < 2) return 0;
  let minGBps = Infinity;
  for (let r = 0; r < n; r++) minGBps = Math.min(minGBps, linkGBps(p, r, (r + 1) % n, faults));
  const bytesOnWire = ((2 * (n - 1)) / n) * p.bucketBytes;
  return (bytesOnWire / (minGBps * 1e9)) * 1e6 + 2 * (n - 1) * p.latencyUs;
}

export function simulateStep(
  p: TrainingPlacement,
  faults: Faults,
  stepStartUnixUs: number,
  sequence: number,
  noise?: StepNoise,
): StepResult {
  const n = p.rankNodes.length;
  const channels = Math.max(1, Math.floor(p.channels ?? 1));
  if (channels === 1 && noise === undefined && !faults.downLinks?.size)
    return simulateSingleRing(p, faults, stepStartUnixUs, sequence);
  const rings = Array.from({ length: channels }, (_, c) => ringOrder(p, c));
  // next[c][r]: rank r's successor in ring c.
  const next = rings.map((order) => {
    const succ = new Int32Array(n);
    for (let i = 0; i < n; i++) succ[order[i]!] = order[(i + 1) % n]!;
    return succ;
  });
  const perPeerBytes = Math.round(((2 * (n - 1)) / n) * (p.bucketBytes / channels));
  const linkUs = (a: number, b: number): number => (perPeerBytes / (linkGBps(p, a, b, faults) * 1e9)) * 1e6;
  const down = (a: number, b: number): boolean => faults.downLinks?.has(linkKey(a, b)) ?? false;
  const records: CollectiveRecord[] = [];
  const hungSet = faults.hungRanks;
  const hung = [...hungSet].some((r) => r < n);
  let t = Array.from({ length: n }, () => stepStartUnixUs);
  let seq = sequence;
  for (let b = 0; b < p.bucketsPerStep; b++) {
    const starts = t.map((at, r) =>
      Math.round(
        at + (p.computeMs * 1000 * (faults.slowRanks.get(r) ?? 1) * (noise?.computeFactor(r) ?? 1)) / p.bucketsPerStep,
      ),
    );
    const peerStart = starts.reduce((m, x) => Math.max(m, x), -Infinity);
    // Per-transfer times, then each ring takes as long as its slowest link (plus its 2(n-1) latency steps).
    const transfer = next.map((succ) =>
      Float64Array.from(succ, (to, from) => (n < 2 ? 0 : linkUs(from, to) * (noise?.transferFactor(from, to) ?? 1))),
    );
    let stalled = hung;
    let ringUs = 0;
    for (let c = 0; c < channels && n >= 2; c++) {
      for (let r = 0; r < n; r++) {
        if (down(r, next[c]![r]!)) stalled = true;
        ringUs = Math.max(ringUs, transfer[c]![r]!);
      }
    }
    const end = stalled ? 0 : Math.round(peerStart + ringUs + (n < 2 ? 0 : 2 * (n - 1) * p.latencyUs));
    for (let r = 0; r < n; r++) {
      if (hungSet.has(r)) continue;
      const peers =
        n < 2
          ? []
          : next.map((succ, c) => {
              const to = succ[r]!;
              const finished = !hung && !down(r, to);
              return {
                peerRank: to,
                bytes: perPeerBytes,
                startUnixUs: peerStart,
                endUnixUs: finished ? Math.round(peerStart + transfer[c]![r]!) : 0,
              };
            });
      records.push({
        communicator: p.communicator,
        rank: r,
        nRanks: n,
        collective: "AllReduce",
        sequence: seq,
        bytes: p.bucketBytes,
        startUnixUs: starts[r]!,
        endUnixUs: end,
        peers,
      });
    }
    seq++;
    if (stalled) return { records, endUnixUs: undefined, sequenceAfter: seq };
    t = t.map(() => end);
  }
  return { records, endUnixUs: t[0], sequenceAfter: seq };
}

/** The original single ring without noise (kept exactly, so records stay byte-for-byte what they were). */
function simulateSingleRing(
  p: TrainingPlacement,
  faults: Faults,
  stepStartUnixUs: number,
  sequence: number,
): StepResult {
  const n = p.rankNodes.length;
  const transferUs = ringAllReduceUs(p, faults);
  const perPeerBytes = Math.round(((2 * (n - 1)) / n) * p.bucketBytes);
  const records: CollectiveRecord[] = [];
  // Compute is split evenly before each bucket (backward pass produces gradients bucket by bucket).
  const computeSliceUs = (r: number): number =>
    (p.computeMs * 1000 * (faults.slowRanks.get(r) ?? 1)) / p.bucketsPerStep;
  let t = Array.from({ length: n }, () => stepStartUnixUs);
  let seq = sequence;
  const hung = [...faults.hungRanks].some((r) => r < n);
  for (let b = 0; b < p.bucketsPerStep; b++) {
    const starts = t.map((at, r) => Math.round(at + computeSliceUs(r)));
    const peerStart = starts.reduce((m, x) => Math.max(m, x), -Infinity);
    const end = hung ? 0 : Math.round(peerStart + transferUs);
    for (let r = 0; r < n; r++) {
      if (faults.hungRanks.has(r)) continue;
      const next = (r + 1) % n;
      const linkUs = n < 2 ? 0 : (perPeerBytes / (linkGBps(p, r, next, faults) * 1e9)) * 1e6;
      records.push({
        communicator: p.communicator,
        rank: r,
        nRanks: n,
        collective: "AllReduce",
        sequence: seq,
        bytes: p.bucketBytes,
        startUnixUs: starts[r]!,
        endUnixUs: end,
        peers:
          n < 2
            ? []
            : [
                {
                  peerRank: next,
                  bytes: perPeerBytes,
                  startUnixUs: peerStart,
                  endUnixUs: hung ? 0 : Math.round(peerStart + linkUs),
                },
              ],
      });
    }
    seq++;
    if (hung) return { records, endUnixUs: undefined, sequenceAfter: seq };
    t = t.map(() => end);
  }
  return { records, endUnixUs: t[0], sequenceAfter: seq };
}

/**
 * Checkpoint cadence of a job (pure): steps are numbered on from the step the job resumed at (the checkpoint it
 * restarted from, GPUFLEET_RESUME_STEP), and a checkpoint holds step s when s is a multiple of the interval. It is
 * durable, and reported, once every rank has finished step s.
 */
export class CheckpointCadence {
  private readonly completed: number[];
  private lastCheckpoint: number;

  constructor(
    worldSize: number,
    readonly resumeStep: number,
    readonly intervalSteps: number | undefined,
  ) {
    if (!Number.isInteger(resumeStep) || resumeStep < 0)
      throw new RangeError(`resume step must be a non-negative integer, got ${resumeStep}`);
    if (intervalSteps !== undefined && !(Number.isInteger(intervalSteps) && intervalSteps > 0))
      throw new RangeError(`checkpoint interval must be a positive integer, got ${intervalSteps}`);
    this.completed = Array.from({ length: worldSize }, () => resumeStep);
    this.lastCheckpoint = resumeStep;
  }

  /** The step every rank has finished. */
  get step(): number {
    return Math.min(...this.completed);
  }

  /** The step the job runs next. */
  get nextStep(): number {
    return this.step + 1;
  }

  rankCompleted(rank: number, step: number): void {
    if (this.completed[rank] === undefined)
      throw new RangeError(`rank ${rank} is outside world size ${this.completed.length}`);
    this.completed[rank] = Math.max(this.completed[rank], step);
  }

  /** Checkpoint steps all ranks are past and not yet returned, oldest first. */
  takeDue(): number[] {
    if (this.intervalSteps === undefined) return [];
    const due: number[] = [];
    const first = (Math.floor(this.lastCheckpoint / this.intervalSteps) + 1) * this.intervalSteps;
    for (let s = first; s <= this.step; s += this.intervalSteps) due.push(s);
    if (due.length > 0) this.lastCheckpoint = due[due.length - 1]!;
    return due;
  }
}

/** Where the checkpoint of `step` lives under the job's checkpoint path. */
export function checkpointPathFor(base: string, step: number): string {
  return `${base.replace(/\/+$/, "")}/step-${String(step).padStart(8, "0")}`;
}
