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
}

export interface StepResult {
  /** Records by rank (hung ranks have none). */
  records: CollectiveRecord[];
  /** Time the step ends (all collectives done), or undefined when a hung rank stalls the job. */
  endUnixUs: number | undefined;
  sequenceAfter: number;
}

export function linkGBps(p: TrainingPlacement, a: number, b: number, faults: Faults): number {
  const base = p.rankNodes[a] === p.rankNodes[b] ? p.intraNodeGBps : p.interNodeGBps;
  return base * (faults.slowLinks.get(linkKey(a, b)) ?? 1);
}

export function ringAllReduceUs(p: TrainingPlacement, faults: Faults): number {
  const n = p.rankNodes.length;
  if (n < 2) return 0;
  let minGBps = Infinity;
  for (let r = 0; r < n; r++) minGBps = Math.min(minGBps, linkGBps(p, r, (r + 1) % n, faults));
  const bytesOnWire = (2 * (n - 1) / n) * p.bucketBytes;
  return (bytesOnWire / (minGBps * 1e9)) * 1e6 + 2 * (n - 1) * p.latencyUs;
}

export function simulateStep(p: TrainingPlacement, faults: Faults, stepStartUnixUs: number, sequence: number): StepResult {
  const n = p.rankNodes.length;
  const transferUs = ringAllReduceUs(p, faults);
  const perPeerBytes = Math.round((2 * (n - 1) / n) * p.bucketBytes);
  const records: CollectiveRecord[] = [];
  // Compute is split evenly before each bucket (backward pass produces gradients bucket by bucket).
  const computeSliceUs = (r: number): number => (p.computeMs * 1000 * (faults.slowRanks.get(r) ?? 1)) / p.bucketsPerStep;
  let t = Array.from({ length: n }, () => stepStartUnixUs);
  let seq = sequence;
  const hung = [...faults.hungRanks].some((r) => r < n);
  for (let b = 0; b < p.bucketsPerStep; b++) {
    const starts = t.map((at, r) => Math.round(at + computeSliceUs(r)));
    const end = hung ? 0 : Math.round(Math.max(...starts) + transferUs);
    for (let r = 0; r < n; r++) {
      if (faults.hungRanks.has(r)) continue;
      const next = (r + 1) % n;
      const linkUs = n < 2 ? 0 : (perPeerBytes / (linkGBps(p, r, next, faults) * 1e9)) * 1e6;
      const peerStart = Math.max(...starts);
      records.push({
        communicator: p.communicator, rank: r, nRanks: n, collective: "AllReduce", sequence: seq, bytes: p.bucketBytes,
        startUnixUs: starts[r]!, endUnixUs: end,
        peers: n < 2 ? [] : [{ peerRank: next, bytes: perPeerBytes, startUnixUs: peerStart, endUnixUs: hung ? 0 : Math.round(peerStart + linkUs) }],
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

  constructor(worldSize: number, readonly resumeStep: number, readonly intervalSteps: number | undefined) {
    if (!Number.isInteger(resumeStep) || resumeStep < 0) throw new RangeError(`resume step must be a non-negative integer, got ${resumeStep}`);
    if (intervalSteps !== undefined && !(Number.isInteger(intervalSteps) && intervalSteps > 0)) throw new RangeError(`checkpoint interval must be a positive integer, got ${intervalSteps}`);
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
    if (this.completed[rank] === undefined) throw new RangeError(`rank ${rank} is outside world size ${this.completed.length}`);
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
