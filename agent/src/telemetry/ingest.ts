/**
 * Ingest of worker telemetry: validated collective records and load reports go to Prometheus and to the bounded
 * NATS publisher. Labeled metric children are cached: at 100k records/s the label lookup is the hot path.
 */
import type { Counter, Histogram } from "prom-client";
import type { AgentMetrics } from "../metrics.js";
import type { WorkerEntry } from "../workers/registry.js";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import type { CheckpointEvent, LoadEntry, PodRef } from "../../../common/src/telemetry/subjects.js";

/** Where ingested telemetry goes (TelemetryPublisher implements it). */
export interface TelemetrySink {
  collectives(node: string, records: readonly CollectiveRecord[], source?: PodRef): number;
  load(node: string, reports: readonly LoadEntry[]): number;
  checkpoint(node: string, event: CheckpointEvent): number;
  /** False when nothing accepted here can ever leave the agent (telemetry off). */
  readonly enabled: boolean;
}

interface CollectiveChildren {
  records: Counter.Internal;
  bytes: Counter.Internal;
  duration: Histogram.Internal<"collective">;
}

export class TelemetryIngest {
  private readonly children = new Map<string, CollectiveChildren>();

  constructor(
    private readonly metrics: AgentMetrics,
    private readonly sink: TelemetrySink,
  ) {}

  get telemetryEnabled(): boolean {
    return this.sink.enabled;
  }

  /**
   * Counters are added once per run of records of one collective (a batch is mostly one collective), not per
   * record; the duration histogram takes each completed record.
   */
  collectives(node: string, records: readonly CollectiveRecord[], source?: PodRef): number {
    let incomplete = 0;
    let run: CollectiveChildren | undefined;
    let runCollective = "";
    let runRecords = 0;
    let runBytes = 0;
    for (const r of records) {
      if (run === undefined || r.collective !== runCollective) {
        if (run) this.addRun(run, runRecords, runBytes);
        run = this.childrenFor(node, r.collective);
        runCollective = r.collective;
        runRecords = 0;
        runBytes = 0;
      }
      runRecords++;
      if (r.endUnixUs === 0) {
        incomplete++;
        continue;
      }
      runBytes += r.bytes;
      run.duration.observe((r.endUnixUs - r.startUnixUs) / 1e6);
    }
    if (run) this.addRun(run, runRecords, runBytes);
    this.metrics.collectivesInFlight.set({ node }, incomplete);
    return this.sink.collectives(node, records, source);
  }

  private addRun(c: CollectiveChildren, records: number, bytes: number): void {
    c.records.inc(records);
    if (bytes > 0) c.bytes.inc(bytes);
  }

  load(worker: WorkerEntry, report: Omit<LoadEntry, "workerId" | "podNamespace" | "podName">): number {
    const labels = { node: worker.nodeName, pod: `${worker.podNamespace}/${worker.podName}` };
    this.metrics.workerQueueLength.set(labels, report.queueLength);
    this.metrics.workerRunningRequests.set(labels, report.runningRequests);
    this.metrics.workerKvCacheUsedRatio.set(labels, report.kvCacheUsedFraction);
    this.metrics.workerTimePerOutputToken.set(labels, report.tpotMs / 1000);
    this.metrics.workerTimeToFirstToken.set(labels, report.ttftMs / 1000);
    return this.sink.load(worker.nodeName, [
      { workerId: worker.workerId, podNamespace: worker.podNamespace, podName: worker.podName, ...report },
    ]);
  }

  /**
   * One worker-events message per checkpoint; returns 1 when it was queued for the stream, 0 when the buffer was full.
   */
  checkpoint(worker: WorkerEntry, report: { step: number; unixMs: number; path: string }): number {
    return this.sink.checkpoint(worker.nodeName, {
      kind: "checkpoint",
      workerId: worker.workerId,
      podNamespace: worker.podNamespace,
      podName: worker.podName,
      rank: worker.rank,
      ...report,
    });
  }

  private childrenFor(node: string, collective: string): CollectiveChildren {
    const key = `${node}\u0000${collective}`;
    let c = this.children.get(key);
    if (!c) {
      c = {
        records: this.metrics.collectiveRecords.labels(node, collective),
        bytes: this.metrics.collectiveBytes.labels(node, collective),
        duration: this.metrics.collectiveDuration.labels(collective),
      };
      this.children.set(key, c);
    }
    return c;
  }
}
