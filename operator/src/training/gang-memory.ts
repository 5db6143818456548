/**
 * What the training gang step remembers between reconciles because the caches lag its own writes (kube-scheduler's
 * "assumed pods" and client-go's expectations, kept small):
 *
 *  - pods it created that the pod cache does not show yet: their GPUs are taken (so the next job's plan does not
 *    bind the same GPUs) and their gang is "placing", not missing members;
 *  - pods it deleted that the cache still shows: going away, neither running nor failed;
 *  - each job's restart bookkeeping (restart count, backoff deadline, nodes to avoid), which the status write
 *    makes durable a moment later: until the job cache shows that write, the memory wins, so a stale cache can
 *    neither skip a backoff nor lose a restart from the count.
 *
 * Entries expire after `ttlMs`: a watch event that never comes must not hold GPUs forever. Everything here is also
 * recoverable from the API (a new leader starts with full caches and reads status, nodes to avoid included).
 */
import type { TrainingJobStatus } from "../../../crds/src/training-job.js";

export type TrainingPlacementStatus = NonNullable<TrainingJobStatus["placement"]>;

export interface AssumedPod {
  namespace: string;
  name: string;
  jobUid: string;
  nodeName: string;
  gpus: number;
}

/**
 * What this step last decided about a job. Authoritative over the cached status (this process is the only writer
 * of those fields; the cache can only be older), and rebuilt from status after a restart of the operator.
 */
export interface JobRecord {
  /** Restart count, including a restart decided but maybe not yet visible in the cache. */
  restarts: number;
  /** The phase last reported. */
  phase: string;
  /** Wall time when re-placing may start; 0 when not restarting. */
  notBeforeMs: number;
  /** Nodes of failed members, avoided by the next placement when it can be. */
  avoidNodes: readonly string[];
  /** Message of the last restart or failure decision. */
  message: string;
  /** The placement the current gang was made from. */
  placement?: TrainingPlacementStatus;
  planSummary?: string;
}

export interface PodRef {
  namespace?: string;
  name?: string;
  uid?: string;
}

const DEFAULT_TTL_MS = 60_000;
const MAX_RECORDS = 10_000;

export class GangMemory {
  private readonly assumed = new Map<string, AssumedPod & { atMs: number }>();
  private readonly deleted = new Map<string, { jobUid: string; atMs: number }>();
  private readonly records = new Map<string, JobRecord & { atMs: number }>();

  constructor(private readonly ttlMs = DEFAULT_TTL_MS) {}

  /** Drops assumptions the cache has caught up with (or that expired). Call with the pod cache's current list. */
  sync(pods: readonly PodRef[], nowMs: number): void {
    const keys = new Set<string>();
    const uids = new Set<string>();
    for (const p of pods) {
      keys.add(`${p.namespace}/${p.name}`);
      if (p.uid) uids.add(p.uid);
    }
    for (const [key, a] of this.assumed) if (keys.has(key) || nowMs - a.atMs > this.ttlMs) this.assumed.delete(key);
    for (const [uid, d] of this.deleted) if (!uids.has(uid) || nowMs - d.atMs > this.ttlMs) this.deleted.delete(uid);
  }

  assume(pods: readonly AssumedPod[], nowMs: number): void {
    for (const p of pods) this.assumed.set(`${p.namespace}/${p.name}`, { ...p, atMs: nowMs });
  }

  /** Names of this job's created pods the cache has not shown yet. */
  awaiting(jobUid: string): Set<string> {
    const out = new Set<string>();
    for (const a of this.assumed.values()) if (a.jobUid === jobUid) out.add(a.name);
    return out;
  }

  /** GPUs per node taken by created pods the cache has not shown yet (any job). */
  claimedGpus(): Map<string, number> {
    const out = new Map<string, number>();
    for (const a of this.assumed.values()) out.set(a.nodeName, (out.get(a.nodeName) ?? 0) + a.gpus);
    return out;
  }

  markDeleted(jobUid: string, uids: readonly string[], nowMs: number): void {
    for (const uid of uids) this.deleted.set(uid, { jobUid, atMs: nowMs });
  }

  deletedUids(): Set<string> {
    return new Set(this.deleted.keys());
  }

  record(jobUid: string, record: JobRecord, nowMs: number): void {
    this.records.set(jobUid, { ...record, atMs: nowMs });
    if (this.records.size > MAX_RECORDS) {
      const oldest = [...this.records.entries()]
        .sort(([, a], [, b]) => a.atMs - b.atMs)
        .slice(0, this.records.size - MAX_RECORDS);
      for (const [uid] of oldest) this.records.delete(uid);
    }
  }

  jobRecord(jobUid: string): JobRecord | undefined {
    return this.records.get(jobUid);
  }

  /** Drops the job's assumed pods (their creation was rolled back). */
  forgetPods(jobUid: string): void {
    for (const [key, a] of this.assumed) if (a.jobUid === jobUid) this.assumed.delete(key);
  }

  /** Forgets a job entirely (it was deleted). */
  forget(jobUid: string): void {
    this.records.delete(jobUid);
    for (const [key, a] of this.assumed) if (a.jobUid === jobUid) this.assumed.delete(key);
    for (const [uid, d] of this.deleted) if (d.jobUid === jobUid) this.deleted.delete(uid);
  }
}
