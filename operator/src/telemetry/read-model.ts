/**
 * The operator's view of agent telemetry: a pure read model (no I/O; time comes in as arguments) that the JetStream
 * consumers feed and controllers read. Memory is bounded by the limits below; what a limit pushes out is counted.
 *
 * - Collectives: per communicator (grouped per TrainingJob when the reporting pod belongs to one), the records of
 *   the most recent `maxSequencesPerCommunicator` sequences, by sequence and rank. A record is identified by
 *   (communicator, rank, sequence): a redelivered message adds nothing (counted as a duplicate). When the window is
 *   full the sequence inserted first is evicted and remembered as the communicator's eviction floor; a record at or
 *   below the floor that is not in the window is stale (counted, not stored), so an evicted sequence never comes
 *   back half-filled. Communicators beyond `maxCommunicators` are evicted least recently updated first.
 * - Load: the latest report per serving instance (pod), grouped per ServingDeployment; an older report never
 *   replaces a newer one (redelivery, reordering). Beyond `maxLoadInstances` the stalest instance is evicted.
 * - Checkpoints: the highest checkpoint step per TrainingJob.
 * - Workers: the latest supervision event per pod; rdma: the latest sample per node/device/port.
 */
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import type {
  CheckpointEvent,
  DecodedCollectives,
  LoadEntry,
  RdmaMessage,
  WorkersMessage,
} from "../../../common/src/telemetry/subjects.js";

export interface ReadModelLimits {
  maxCommunicators: number;
  maxSequencesPerCommunicator: number;
  maxLoadInstances: number;
  maxJobs: number;
  maxWorkers: number;
  maxRdmaPorts: number;
}

export const DEFAULT_READ_MODEL_LIMITS: ReadModelLimits = {
  maxCommunicators: 4096,
  maxSequencesPerCommunicator: 1024,
  maxLoadInstances: 20_000,
  maxJobs: 10_000,
  maxWorkers: 50_000,
  maxRdmaPorts: 20_000,
};

/** `namespace/name` of a TrainingJob or ServingDeployment. */
export type ResourceKey = string;

export interface CommunicatorView {
  readonly communicator: string;
  /** The TrainingJob of the pods that reported it (the first that did), if known. */
  readonly job: ResourceKey | undefined;
  readonly nRanks: number;
  /** sequence -> rank -> record, for the most recent sequences. */
  readonly sequences: ReadonlyMap<number, ReadonlyMap<number, CollectiveRecord>>;
  /** Highest sequence evicted from the window (-1: none yet). */
  readonly evictedThrough: number;
  /** Distinct records accepted for this communicator since the operator started (including evicted ones). */
  readonly recordsAccepted: number;
  readonly updatedUnixMs: number;
}

export interface InstanceLoad extends LoadEntry {
  readonly node: string;
  readonly receivedUnixMs: number;
}

export interface CheckpointView {
  readonly step: number;
  readonly unixMs: number;
  readonly path: string;
  readonly podName: string;
  readonly rank: number;
}

export interface ReadModelCounters {
  recordsAccepted: number;
  recordsDuplicate: number;
  recordsStale: number;
  /** Records agents reported dropping before JetStream (droppedSincePrevious), summed. */
  recordsDroppedAtAgents: number;
  evictedSequences: number;
  evictedCommunicators: number;
  evictedLoadInstances: number;
  evictedJobs: number;
  evictedWorkers: number;
  evictedRdmaPorts: number;
  loadReportsStale: number;
}

export interface CollectivesResult {
  accepted: number;
  duplicates: number;
  stale: number;
  evictedSequences: number;
  evictedCommunicators: number;
}

interface CommunicatorState {
  communicator: string;
  job: ResourceKey | undefined;
  nRanks: number;
  sequences: Map<number, Map<number, CollectiveRecord>>;
  evictedThrough: number;
  recordsAccepted: number;
  updatedUnixMs: number;
}

/** What controllers get: reads only. */
export interface TelemetryViews {
  communicator(id: string): CommunicatorView | undefined;
  communicatorsOf(job: ResourceKey): readonly CommunicatorView[];
  communicators(): readonly CommunicatorView[];
  loadOf(deployment: ResourceKey): readonly InstanceLoad[];
  lastCheckpoint(job: ResourceKey): CheckpointView | undefined;
  worker(podKey: ResourceKey): (WorkersMessage & { receivedUnixMs: number }) | undefined;
  rdma(node: string): readonly (RdmaMessage["ports"][number] & { receivedUnixMs: number })[];
  counters(): Readonly<ReadModelCounters>;
}

/** Sets key last in a Map's iteration order (the Maps here are LRU lists: first = least recently updated). */
function touch<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
}

export class TelemetryReadModel implements TelemetryViews {
  private readonly comms = new Map<string, CommunicatorState>();
  private readonly load = new Map<string, { deployment: ResourceKey | undefined; load: InstanceLoad }>();
  private readonly checkpoints = new Map<ResourceKey, CheckpointView>();
  private readonly workers = new Map<ResourceKey, WorkersMessage & { receivedUnixMs: number }>();
  private readonly ports = new Map<string, RdmaMessage["ports"][number] & { node: string; receivedUnixMs: number }>();
  private readonly count: ReadModelCounters = {
    recordsAccepted: 0,
    recordsDuplicate: 0,
    recordsStale: 0,
    recordsDroppedAtAgents: 0,
    evictedSequences: 0,
    evictedCommunicators: 0,
    evictedLoadInstances: 0,
    evictedJobs: 0,
    evictedWorkers: 0,
    evictedRdmaPorts: 0,
    loadReportsStale: 0,
  };

  constructor(readonly limits: ReadModelLimits = DEFAULT_READ_MODEL_LIMITS) {}

  /** Adds one decoded collectives message; `job` is the TrainingJob of the reporting pod, if known. */
  applyCollectives(message: DecodedCollectives, job: ResourceKey | undefined, nowMs: number): CollectivesResult {
    const result: CollectivesResult = {
      accepted: 0,
      duplicates: 0,
      stale: 0,
      evictedSequences: 0,
      evictedCommunicators: 0,
    };
    this.count.recordsDroppedAtAgents += message.droppedSincePrevious;
    let state: CommunicatorState | undefined;
    const touched = new Set<CommunicatorState>();
    for (const r of message.records) {
      if (state?.communicator !== r.communicator) state = this.communicatorState(r, job, result);
      touched.add(state);
      let ranks = state.sequences.get(r.sequence);
      if (!ranks) {
        if (r.sequence <= state.evictedThrough) {
          result.stale++;
          continue;
        }
        ranks = new Map();
        state.sequences.set(r.sequence, ranks);
        if (state.sequences.size > this.limits.maxSequencesPerCommunicator) this.evictOldestSequence(state, result);
      }
      if (ranks.has(r.rank)) {
        result.duplicates++;
        continue;
      }
      ranks.set(r.rank, r);
      state.recordsAccepted++;
      result.accepted++;
    }
    for (const s of touched) {
      s.updatedUnixMs = nowMs;
      touch(this.comms, s.communicator, s);
    }
    this.count.recordsAccepted += result.accepted;
    this.count.recordsDuplicate += result.duplicates;
    this.count.recordsStale += result.stale;
    this.count.evictedSequences += result.evictedSequences;
    this.count.evictedCommunicators += result.evictedCommunicators;
    return result;
  }

  private communicatorState(
    r: CollectiveRecord,
    job: ResourceKey | undefined,
    result: CollectivesResult,
  ): CommunicatorState {
    let state = this.comms.get(r.communicator);
    if (state) {
      state.job ??= job;
      return state;
    }
    state = {
      communicator: r.communicator,
      job,
      nRanks: r.nRanks,
      sequences: new Map(),
      evictedThrough: -1,
      recordsAccepted: 0,
      updatedUnixMs: 0,
    };
    this.comms.set(r.communicator, state);
    while (this.comms.size > this.limits.maxCommunicators) {
      const oldest = this.comms.keys().next().value as string;
      this.comms.delete(oldest);
      result.evictedCommunicators++;
    }
    return state;
  }

  private evictOldestSequence(state: CommunicatorState, result: CollectivesResult): void {
    const oldest = state.sequences.keys().next().value as number;
    state.sequences.delete(oldest);
    state.evictedThrough = Math.max(state.evictedThrough, oldest);
    result.evictedSequences++;
  }

  /** Latest-wins load per instance; `deploymentOf` maps a pod to its ServingDeployment. Returns reports applied. */
  applyLoad(
    node: string,
    reports: readonly LoadEntry[],
    deploymentOf: (podNamespace: string, podName: string) => ResourceKey | undefined,
    nowMs: number,
  ): number {
    let applied = 0;
    for (const report of reports) {
      const key = `${report.podNamespace}/${report.podName}`;
      const current = this.load.get(key);
      if (current && current.load.unixMs > report.unixMs) {
        this.count.loadReportsStale++;
        continue;
      }
      touch(this.load, key, {
        deployment: deploymentOf(report.podNamespace, report.podName) ?? current?.deployment,
        load: { ...report, node, receivedUnixMs: nowMs },
      });
      applied++;
    }
    this.count.evictedLoadInstances += this.evictBeyond(this.load, this.limits.maxLoadInstances);
    return applied;
  }

  /** Raises the job's checkpoint to `event.step`; false when it already was at or past it. */
  applyCheckpoint(job: ResourceKey, event: CheckpointEvent): boolean {
    const current = this.checkpoints.get(job);
    if (current && current.step >= event.step) return false;
    touch(this.checkpoints, job, {
      step: event.step,
      unixMs: event.unixMs,
      path: event.path,
      podName: event.podName,
      rank: event.rank,
    });
    this.count.evictedJobs += this.evictBeyond(this.checkpoints, this.limits.maxJobs);
    return true;
  }

  applyWorkers(message: WorkersMessage, nowMs: number): void {
    const key = `${message.podNamespace}/${message.podName}`;
    const current = this.workers.get(key);
    if (current && current.sentUnixMs > message.sentUnixMs) return;
    touch(this.workers, key, { ...message, receivedUnixMs: nowMs });
    this.count.evictedWorkers += this.evictBeyond(this.workers, this.limits.maxWorkers);
  }

  applyRdma(message: RdmaMessage, nowMs: number): void {
    for (const port of message.ports)
      touch(this.ports, `${message.node}\u0000${port.device}\u0000${port.port}`, {
        ...port,
        node: message.node,
        receivedUnixMs: nowMs,
      });
    this.count.evictedRdmaPorts += this.evictBeyond(this.ports, this.limits.maxRdmaPorts);
  }

  private evictBeyond<K, V>(map: Map<K, V>, max: number): number {
    let evicted = 0;
    while (map.size > max) {
      map.delete(map.keys().next().value as K);
      evicted++;
    }
    return evicted;
  }

  // Views. Collections are handed out as they are (read-only types); nothing is copied on the hot path.

  communicator(id: string): CommunicatorView | undefined {
    return this.comms.get(id);
  }

  communicatorsOf(job: ResourceKey): readonly CommunicatorView[] {
    return [...this.comms.values()].filter((c) => c.job === job);
  }

  communicators(): readonly CommunicatorView[] {
    return [...this.comms.values()];
  }

  loadOf(deployment: ResourceKey): readonly InstanceLoad[] {
    const out: InstanceLoad[] = [];
    for (const entry of this.load.values()) if (entry.deployment === deployment) out.push(entry.load);
    return out;
  }

  lastCheckpoint(job: ResourceKey): CheckpointView | undefined {
    return this.checkpoints.get(job);
  }

  worker(podKey: ResourceKey): (WorkersMessage & { receivedUnixMs: number }) | undefined {
    return this.workers.get(podKey);
  }

  rdma(node: string): readonly (RdmaMessage["ports"][number] & { receivedUnixMs: number })[] {
    return [...this.ports.values()].filter((p) => p.node === node);
  }

  counters(): Readonly<ReadModelCounters> {
    return { ...this.count };
  }
}
