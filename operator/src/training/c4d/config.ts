/**
 * Per-job detector configuration. Everything that decides "hung" or "slow" is relative to the job itself: timeouts
 * are multiples of the job's own collective period, slowness is relative to the same collective's other ranks or
 * connections. The job's faultPolicy bounds them: `slowRankTolerancePercent` is how much slower than the median
 * counts as slow, `hangTimeoutSeconds` the longest a collective may stay open. docs/c4d.md explains each default.
 */
import type { TrainingJobSpec } from "../../../../crds/src/training-job.js";

export interface C4dConfig {
  /** A time at least this many times its baseline (the median of its peers in the same collective) is slow. */
  slowFactor: number;
  /** ...and also this many robust standard deviations (1.4826 MAD) above it, so a noisy job is judged by its noise. */
  slowMinRobustZ: number;
  /** Longest a collective may stay open (faultPolicy.hangTimeoutSeconds), and the wait before a job-wide hang. */
  hangTimeoutMaxMs: number;
  /** Shortest hang timeout, whatever the period. */
  hangTimeoutMinMs: number;
  /** A collective open this many collective periods (median start-to-start interval) is hung. */
  hangPeriodMultiple: number;
  /** Completed sequences per communicator (the most recent) that the slow tests read. */
  slowWindowSequences: number;
  /**
   * A slowdown is acted on once it has lasted max(this, slowPersistPeriodMultiple periods) since its change-point...
   */
  slowPersistMinMs: number;
  slowPersistPeriodMultiple: number;
  /** ...with at least this many more slow than normal observations since then (sign CUSUM excess). */
  slowMinExcess: number;
  /** An endpoint slow in this many sequences of the window, each time on most of its connections at once, flaps... */
  flapMinEvents: number;
  /**
   * ...if chance is an unlikely cause: coincidences at the job's own rate of such events (the other endpoints' count
   * in the same window) would blame a healthy endpoint at most this often per job-hour.
   */
  flapFalseAlarmsPerHour: number;
  /** A row (column) is slow in a sequence when this fraction of its cells is... */
  rowSlowFraction: number;
  /** ...and it has at least this many cells (fewer cannot tell a slow endpoint from a slow path). */
  minCellsPerRow: number;
  /** Compute gaps shorter than this (back-to-back collectives) say nothing about stragglers. */
  minComputeGapMs: number;
  /** More nodes than this blamed at once by one test: a switch, a partition or lost telemetry, not a node. */
  maxBlamedNodes: number;
}

type FaultPolicy = TrainingJobSpec["faultPolicy"];

/** The CRD's defaults (crds/src/training-job.ts), for callers that have no job spec. */
export const DEFAULT_FAULT_POLICY = { slowRankTolerancePercent: 30, hangTimeoutSeconds: 60 } as const;

export const C4D_DEFAULTS = {
  slowMinRobustZ: 4,
  hangTimeoutMinMs: 1_000,
  hangPeriodMultiple: 20,
  slowWindowSequences: 128,
  slowPersistMinMs: 5_000,
  slowPersistPeriodMultiple: 30,
  slowMinExcess: 8,
  flapMinEvents: 4,
  flapFalseAlarmsPerHour: 0.001,
  rowSlowFraction: 0.75,
  minCellsPerRow: 2,
  minComputeGapMs: 1,
  maxBlamedNodes: 2,
} as const;

export function c4dConfigFor(
  faultPolicy: Partial<Pick<FaultPolicy, "slowRankTolerancePercent" | "hangTimeoutSeconds">> = {},
): C4dConfig {
  const tolerancePercent = faultPolicy.slowRankTolerancePercent ?? DEFAULT_FAULT_POLICY.slowRankTolerancePercent;
  const hangTimeoutSeconds = faultPolicy.hangTimeoutSeconds ?? DEFAULT_FAULT_POLICY.hangTimeoutSeconds;
  if (!(tolerancePercent > 0))
    throw new RangeError(`faultPolicy.slowRankTolerancePercent must be > 0, got ${tolerancePercent}`);
  if (!(hangTimeoutSeconds >= 1))
    throw new RangeError(`faultPolicy.hangTimeoutSeconds must be >= 1, got ${hangTimeoutSeconds}`);
  const hangTimeoutMaxMs = hangTimeoutSeconds * 1000;
  return {
    ...C4D_DEFAULTS,
    slowFactor: 1 + tolerancePercent / 100,
    hangTimeoutMaxMs,
    hangTimeoutMinMs: Math.min(C4D_DEFAULTS.hangTimeoutMinMs, hangTimeoutMaxMs),
  };
}
