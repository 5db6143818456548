/**
 * The scheduler's view of a deployment's instances (pure): the telemetry read model's latest load report per pod,
 * kept only for leader pods of the running plan that still exist and reported recently, as the policies' inputs.
 *
 * A report outlives its pod in the read model (it is evicted only by the model's bounds), and a pod keeps
 * reporting while it is being deleted: both are dropped here, so nothing is planned onto an instance that is gone.
 */
import type { InstanceLoad as Freeness } from "../../../../common/src/scheduler/freeness.js";
import type { InstanceLoad as ReportedLoad } from "../../telemetry/read-model.js";
import type { ObservedPod } from "../rollout.js";
import type { Role } from "../pools.js";
import type { MigrationCandidate, MigrationInstance } from "./policy.js";

export interface LiveInstance {
  /** The worker id: what load reports, commands and the policies call the instance. */
  id: string;
  podName: string;
  podNamespace: string;
  node: string;
  role: Role;
  index: number;
  engineUrl: string | undefined;
  load: Freeness;
  candidates: readonly MigrationCandidate[];
  /** A migration in or out is in progress on the instance, as it last reported. */
  migrating: "in" | "out" | undefined;
  reportedUnixMs: number;
  /** TTFT and TPOT the instance last reported (ms; 0 before its first request). */
  ttftMs: number;
  tpotMs: number;
  /** KV blocks the whole waiting queue needs. */
  waitingDemandBlocks: number;
}

/**
 * Instances of the deployment's plan `hash`: a fresh report (received within `staleMs`) from the leader pod of
 * an instance that is in the pod cache and not being deleted. Reports without KV figures are skipped (the
 * policies need blocks).
 */
export function liveInstances(
  reports: readonly ReportedLoad[],
  pods: readonly ObservedPod[],
  hash: string,
  nowMs: number,
  staleMs: number,
): LiveInstance[] {
  const leaders = new Map(
    pods.filter((p) => p.hash === hash && p.worker === 0 && !p.deleting && !p.failed).map((p) => [p.name, p]),
  );
  const out: LiveInstance[] = [];
  for (const r of reports) {
    const pod = leaders.get(r.podName);
    if (!pod || nowMs - r.receivedUnixMs > staleMs || !r.kvBlocksTotal || !r.blockSizeTokens) continue;
    out.push({
      id: r.workerId,
      podName: r.podName,
      podNamespace: r.podNamespace,
      node: r.node,
      role: pod.role,
      index: pod.index,
      engineUrl: r.engineUrl,
      load: {
        kvBlocksTotal: r.kvBlocksTotal,
        kvBlocksUsed: r.kvBlocksUsed ?? 0,
        blockSizeTokens: r.blockSizeTokens,
        runningRequests: r.runningRequests,
        queuedRequests: r.queueLength,
        headOfLineDemandBlocks: r.headOfLineDemandBlocks ?? 0,
        highPriorityRunning: r.highPriorityRunning ?? 0,
        draining: r.draining ?? false,
        outstandingPromptTokens: r.outstandingPromptTokens ?? 0,
      },
      // Absent from workers that do not migrate (the Python reference worker today): no candidates.
      candidates: r.migrationCandidates ?? [],
      migrating: r.migrating,
      reportedUnixMs: r.unixMs,
      ttftMs: r.ttftMs,
      tpotMs: r.tpotMs,
      waitingDemandBlocks: r.waitingDemandBlocks ?? 0,
    });
  }
  return out.sort((a, b) => a.index - b.index || a.id.localeCompare(b.id));
}

/**
 * The migration policy's input for one pool. An instance counts as migrating when it says so or when this
 * operator has a command to it in flight (its report may predate the command): at most one migration per
 * instance at a time.
 */
export function migrationInstances(pool: readonly LiveInstance[], inFlight: ReadonlySet<string>): MigrationInstance[] {
  return pool.map((i) => ({
    id: i.id,
    load: i.load,
    candidates: i.candidates,
    migrating: i.migrating !== undefined || inFlight.has(i.id),
  }));
}

/** Roles whose requests may move between instances: decode and colocated pools (prefill requests hand off instead). */
export const MIGRATING_ROLES: readonly Role[] = ["colocated", "decode"];
