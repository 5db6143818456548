/**
 * One benchmark run: a simulated training job (agent/src/workers/simulated/training.ts, the step the simulated
 * workers run, with its faults from faults.ts) publishes its collective records, the operator's read model receives
 * them after the publish delay, and the detector runs every tick. A fault is injected at a step boundary after a
 * fault-free warm-up; the run ends at its horizon, or shortly after the fault is correctly blamed.
 */
import { gpuSpec } from "../../common/src/hardware/catalog.js";
import { seededRandom } from "../../common/src/random.js";
import type { CollectiveRecord } from "../../common/src/telemetry/records.js";
import { linkKey, NO_FAULTS, type Faults } from "../../agent/src/workers/simulated/faults.js";
import { ringOrder, simulateStep, type TrainingPlacement } from "../../agent/src/workers/simulated/training.js";
import type { C4dConfig, C4dVerdict } from "../../operator/src/training/c4d/index.js";
import { DetectorDriver, visibleAt, type TimedRecord } from "./drive.js";
import { realisticNoise } from "./noise.js";

export const ScenarioClass = {
  none: "none",
  hang: "hang",
  unfinished: "unfinished",
  straggler: "straggler",
  slowLink: "slow-link",
  nicFlap: "nic-flap",
  jobHang: "job-hang",
} as const;
export type ScenarioClass = (typeof ScenarioClass)[keyof typeof ScenarioClass];

/** The simulated job: H100 nodes of 8 GPUs, one 400 Gb/s NIC per node (the simulator's model), 4 NCCL channels. */
export const BENCH_JOB = {
  ranksPerNode: 8,
  channels: 4,
  computeMs: 200,
  bucketBytes: 256 * 2 ** 20,
  bucketsPerStep: 4,
  latencyUs: 10,
  intraNodeGBps: gpuSpec("H100-80GB").nvlinkGBpsPerDirection,
  interNodeGBps: 400 / 8,
  nic: "mlx5_0",
} as const;

export interface ScenarioSpec {
  faultClass: ScenarioClass;
  ranks: number;
  /** slow rank: compute multiplier (>= 1); slow link: bandwidth multiplier (0, 1]; NIC flap: bandwidth while down. */
  factor?: number;
  seed: number;
  warmupMs: number;
  /** How long after the injection the run goes on (fault-free: the whole run after warm-up). */
  horizonMs: number;
  tickMs: number;
  /** Stop this long after the first correct verdict (to see what else gets blamed meanwhile). */
  afterDetectionMs: number;
}

export interface ScenarioOutcome {
  spec: ScenarioSpec;
  /** What was injected, in words. */
  injected: string;
  verdicts: C4dVerdict[];
  correct: number;
  wrong: number;
  ambiguous: number;
  detected: boolean;
  /** First correct verdict's time minus the start of the first affected collective. */
  detectionLatencyMs: number | undefined;
  firstAffectedUnixMs: number | undefined;
  simulatedMs: number;
  detectorCpuUs: number;
  ticks: number;
}

interface Injection {
  describe: string;
  /** Faults for the step starting at `stepIndexSinceFault` (0 = the first faulty step). */
  faultsFor(stepIndexSinceFault: number): Faults;
  /** Whether the job stops stepping once the fault starts (a non-communication hang). */
  stopsJob: boolean;
  accepts(v: C4dVerdict): boolean;
}

const T0_UNIX_MS = 1_780_000_000_000;

export function placementFor(ranks: number): TrainingPlacement {
  return {
    communicator: "bench-job",
    rankNodes: Array.from(
      { length: ranks },
      (_, r) => `node-${String(Math.floor(r / BENCH_JOB.ranksPerNode)).padStart(4, "0")}`,
    ),
    intraNodeGBps: BENCH_JOB.intraNodeGBps,
    interNodeGBps: BENCH_JOB.interNodeGBps,
    latencyUs: BENCH_JOB.latencyUs,
    computeMs: BENCH_JOB.computeMs,
    bucketBytes: BENCH_JOB.bucketBytes,
    bucketsPerStep: BENCH_JOB.bucketsPerStep,
    channels: BENCH_JOB.channels,
  };
}

const samePair = (v: C4dVerdict, a: string, b: string): boolean =>
  v.blame.peerNode !== undefined &&
  ((v.blame.node === a && v.blame.peerNode === b) || (v.blame.node === b && v.blame.peerNode === a));

function injectionFor(spec: ScenarioSpec, p: TrainingPlacement, random: () => number): Injection {
  const n = p.rankNodes.length;
  const pick = (): number => Math.floor(random() * n);
  const nodeOf = (r: number): string => p.rankNodes[r]!;
  const interNodeEdge = (): [number, number] => {
    for (;;) {
      const order = ringOrder(p, Math.floor(random() * (p.channels ?? 1)));
      const i = Math.floor(random() * n);
      const a = order[i]!;
      const b = order[(i + 1) % n]!;
      if (nodeOf(a) !== nodeOf(b)) return [a, b];
    }
  };
  const f = spec.factor ?? 1;
  switch (spec.faultClass) {
    case "none":
      return { describe: "nothing", faultsFor: () => NO_FAULTS, stopsJob: false, accepts: () => false };
    case "hang": {
      const r = pick();
      return {
        describe: `hang-rank=${r} (${nodeOf(r)})`,
        faultsFor: () => ({ ...NO_FAULTS, hungRanks: new Set([r]) }),
        stopsJob: false,
        accepts: (v) => v.faultClass === "hang" && v.blame.node === nodeOf(r),
      };
    }
    case "unfinished": {
      const [a, b] = interNodeEdge();
      return {
        describe: `down-link=${linkKey(a, b)} (${nodeOf(a)}-${nodeOf(b)})`,
        faultsFor: () => ({ ...NO_FAULTS, downLinks: new Set([linkKey(a, b)]) }),
        stopsJob: false,
        accepts: (v) => v.faultClass === "unfinished" && samePair(v, nodeOf(a), nodeOf(b)),
      };
    }
    case "straggler": {
      const r = pick();
      return {
        describe: `slow-rank=${r}:x${f} (${nodeOf(r)})`,
        faultsFor: () => ({ ...NO_FAULTS, slowRanks: new Map([[r, f]]) }),
        stopsJob: false,
        accepts: (v) => v.faultClass === "straggler" && v.blame.node === nodeOf(r),
      };
    }
    case "slow-link": {
      const [a, b] = interNodeEdge();
      return {
        describe: `slow-link=${linkKey(a, b)}:x${f} (${nodeOf(a)}-${nodeOf(b)})`,
        faultsFor: () => ({ ...NO_FAULTS, slowLinks: new Map([[linkKey(a, b), f]]) }),
        stopsJob: false,
        accepts: (v) => v.faultClass === "slow-link" && samePair(v, nodeOf(a), nodeOf(b)),
      };
    }
    case "nic-flap": {
      // The NIC goes down for one step (its transfers crawl at `factor` of the bandwidth) every 3-8 steps.
      const r = pick();
      const downSteps = new Set<number>();
      for (let s = 0; s < 10_000; s += 3 + Math.floor(random() * 6)) downSteps.add(s);
      const down: Faults = { ...NO_FAULTS, slowNics: new Map([[r, f]]) };
      return {
        describe: `slow-nic=${r}:x${f} for one step in every 3-8 (${nodeOf(r)})`,
        faultsFor: (i) => (downSteps.has(i) ? down : NO_FAULTS),
        stopsJob: false,
        accepts: (v) =>
          ["slow-sender", "slow-receiver", "unfinished"].includes(v.faultClass) &&
          v.blame.node === nodeOf(r) &&
          v.blame.peerNode === undefined,
      };
    }
    case "job-hang":
      return {
        describe: "every rank stops before its next collective (no collective open)",
        faultsFor: () => NO_FAULTS,
        stopsJob: true,
        accepts: (v) => v.faultClass === "job-hang",
      };
  }
}

export function runScenario(spec: ScenarioSpec, config: C4dConfig): ScenarioOutcome {
  const p = placementFor(spec.ranks);
  const random = seededRandom(spec.seed);
  const noise = realisticNoise(spec.seed + 1, spec.ranks);
  const injection = injectionFor(spec, p, random);
  const rankNics = p.rankNodes.map(() => BENCH_JOB.nic);
  const driver = new DetectorDriver("bench/job", p.rankNodes, rankNics, config);
  const faultAtMs = T0_UNIX_MS + spec.warmupMs;
  const endMs = faultAtMs + spec.horizonMs;
  const firstTickMs = spec.faultClass === "none" ? T0_UNIX_MS + spec.tickMs : faultAtMs - 2_000;
  let stepStartUs = T0_UNIX_MS * 1000;
  let sequence = 0;
  let faultySteps = 0;
  let stalled = false;
  let firstAffectedUnixMs: number | undefined;
  const queue: TimedRecord[] = [];
  let head = 0;
  let detectedAtMs: number | undefined;
  let correct = 0;
  let wrong = 0;
  for (let nowMs = firstTickMs; nowMs <= endMs; nowMs += spec.tickMs) {
    // Run the job up to now.
    while (!stalled && stepStartUs / 1000 <= nowMs) {
      const faulty = stepStartUs / 1000 >= faultAtMs;
      if (faulty && injection.stopsJob) {
        firstAffectedUnixMs ??= stepStartUs / 1000;
        stalled = true;
        break;
      }
      const faults = faulty ? injection.faultsFor(faultySteps++) : NO_FAULTS;
      const step = simulateStep(p, faults, stepStartUs, sequence, noise);
      if (faulty && firstAffectedUnixMs === undefined && faults !== NO_FAULTS)
        firstAffectedUnixMs = firstStartMs(step.records, sequence);
      sequence = step.sequenceAfter;
      const timed = step.records
        .map((record) => ({ visibleUnixMs: visibleAt(record), record }))
        .sort((a, b) => a.visibleUnixMs - b.visibleUnixMs);
      queue.push(...timed);
      if (step.endUnixUs === undefined) stalled = true;
      else stepStartUs = step.endUnixUs;
    }
    let last = head;
    while (last < queue.length && queue[last]!.visibleUnixMs <= nowMs) last++;
    if (last > head) {
      driver.deliver(
        queue.slice(head, last).map((t) => t.record),
        nowMs,
      );
      head = last;
      if (head > 100_000) {
        queue.splice(0, head);
        head = 0;
      }
    }
    const tick = driver.tick(nowMs);
    for (const v of tick.newVerdicts) {
      if (injection.accepts(v)) {
        correct++;
        detectedAtMs ??= nowMs;
      } else wrong++;
    }
    if (detectedAtMs !== undefined && nowMs - detectedAtMs >= spec.afterDetectionMs) break;
  }
  return {
    spec,
    injected: injection.describe,
    verdicts: driver.verdicts,
    correct,
    wrong,
    ambiguous: driver.ambiguities.length,
    detected: detectedAtMs !== undefined,
    detectionLatencyMs:
      detectedAtMs !== undefined && firstAffectedUnixMs !== undefined ? detectedAtMs - firstAffectedUnixMs : undefined,
    firstAffectedUnixMs,
    simulatedMs: Math.min(endMs, detectedAtMs ?? endMs) - T0_UNIX_MS,
    detectorCpuUs: driver.cpuUs,
    ticks: driver.ticks,
  };
}

/** Start of the first collective a step ran (its first rank to enter), Unix ms. */
function firstStartMs(records: readonly CollectiveRecord[], sequence: number): number | undefined {
  let min = Infinity;
  for (const r of records) if (r.sequence === sequence && r.startUnixUs < min) min = r.startUnixUs;
  return Number.isFinite(min) ? min / 1000 : undefined;
}
