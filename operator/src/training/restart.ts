/**
 * Restart policy of a TrainingJob's gang, as a pure decision over what the reconciler observed.
 *
 * Synchronous 3D-parallel training cannot continue with a rank missing: one failed pod, or one node that fault
 * detection isolated (taint gpufleet.io/isolated), stops every collective. So the whole gang is torn down and
 * re-placed on healthy nodes, resuming from the last checkpoint step the job reported, after an exponential
 * backoff (base × 2^restarts, capped). After maxRestarts restarts the job fails. The count only ever grows: this
 * function returns the next count and has no path that lowers it, so a job that fails every few hours still runs
 * out of budget (a reset would hide a flapping node forever).
 *
 * Faults C4D found (operator/src/training/faults/) restart the gang too: through the isolated taint when they
 * isolated a node, or through `faults` when they only marked a NIC or asked for a restart.
 *
 * Pods in phase Unknown are not failures by themselves: the kubelet may be back within seconds, and a node that
 * really died is isolated by fault detection, which this policy does act on.
 */
import { Reason } from "../../../crds/src/reasons.js";

export const RestartAction = { none: "none", restart: "restart", fail: "fail" } as const;
export type RestartAction = (typeof RestartAction)[keyof typeof RestartAction];

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

export interface RestartState {
  jobName: string;
  /** Restarts so far (status.restarts). */
  restarts: number;
  /** spec.faultPolicy.maxRestarts. */
  maxRestarts: number;
  /** The gang's current pods. */
  pods: readonly { name: string; nodeName: string; phase: PodPhase }[];
  /** The gang's planned nodes that now carry the isolated taint (or are gone). */
  isolatedNodes: readonly string[];
  /** Faults C4D found in this attempt that tainted nothing (a NIC marked, or a restart only), described. */
  faults?: readonly string[];
  /** status.lastCheckpointStep; undefined when no checkpoint was reported yet. */
  lastCheckpointStep?: number;
  /** spec.faultPolicy.restartBackoffSeconds × 1000. */
  backoffBaseMs: number;
  /** Cap on one backoff; default 10 minutes. */
  backoffMaxMs?: number;
}

export interface RestartDecision {
  action: RestartAction;
  /** How long to wait before re-placing (restart only; 0 otherwise). */
  backoffMs: number;
  /** CamelCase condition reason: AsExpected, Completed, GangMemberFailed, RestartBudgetExhausted. */
  reason: Reason;
  message: string;
  /** The restart count to record: restarts + 1 on restart, unchanged otherwise. */
  restarts: number;
  /** Step the re-placed gang resumes from (restart only). */
  resumeStep?: number;
}

export const DEFAULT_BACKOFF_MAX_MS = 10 * 60_000;

export function decideRestart(state: RestartState): RestartDecision {
  for (const [field, value] of [
    ["restarts", state.restarts],
    ["maxRestarts", state.maxRestarts],
  ] as const) {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`TrainingJob ${state.jobName}: ${field} must be a non-negative integer, got ${value}`);
  }
  const failed = state.pods.filter((p) => p.phase === "Failed");
  const isolated = [...new Set(state.isolatedNodes)];
  const faults = state.faults ?? [];
  if (failed.length === 0 && isolated.length === 0 && faults.length === 0) {
    const done = state.pods.length > 0 && state.pods.every((p) => p.phase === "Succeeded");
    return done
      ? {
          action: RestartAction.none,
          backoffMs: 0,
          reason: Reason.Completed,
          message: `all ${state.pods.length} pods succeeded`,
          restarts: state.restarts,
        }
      : {
          action: RestartAction.none,
          backoffMs: 0,
          reason: Reason.AsExpected,
          message: "no failed pod and no isolated node",
          restarts: state.restarts,
        };
  }
  const what = describe(failed, isolated, faults);
  if (state.restarts >= state.maxRestarts) {
    return {
      action: RestartAction.fail,
      backoffMs: 0,
      reason: Reason.RestartBudgetExhausted,
      message: `${what}; restart budget spent (${state.restarts} of maxRestarts ${state.maxRestarts} used)`,
      restarts: state.restarts,
    };
  }
  const maxMs = state.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS;
  const backoffMs = Math.min(maxMs, state.backoffBaseMs * 2 ** state.restarts);
  const resumeStep = state.lastCheckpointStep ?? 0;
  return {
    action: RestartAction.restart,
    backoffMs,
    reason: Reason.GangMemberFailed,
    message: `${what}; restarting the whole gang (restart ${state.restarts + 1} of ${state.maxRestarts}) from step ${resumeStep} after ${Math.round(backoffMs / 1000)}s`,
    restarts: state.restarts + 1,
    resumeStep,
  };
}

function describe(
  failed: readonly { name: string; nodeName: string }[],
  isolated: readonly string[],
  faults: readonly string[],
): string {
  const parts: string[] = [];
  if (failed.length > 0)
    parts.push(
      `pod${failed.length === 1 ? "" : "s"} ${list(failed.map((p) => `${p.name} (node ${p.nodeName})`))} failed`,
    );
  if (isolated.length > 0) parts.push(`node${isolated.length === 1 ? "" : "s"} ${list(isolated)} isolated`);
  if (faults.length > 0) parts.push(`fault detection found ${list(faults)}`);
  return parts.join("; ");
}

function list(items: readonly string[]): string {
  return items.length <= 5 ? items.join(", ") : `${items.slice(0, 5).join(", ")} and ${items.length - 5} more`;
}
