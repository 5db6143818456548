/**
 * Telemetry off: the agent runs without NATS (the chart's default `natsUrl: ""`), still serving workers and the
 * operator. Nothing is queued (there is nowhere to send it); every item is counted as dropped with reason
 * `no_transport`, and callers are told that none was accepted.
 */
import type { CollectiveRecord } from "../../common/src/telemetry/records.js";
import {
  Stream,
  type CheckpointEvent,
  type LoadEntry,
  type RdmaMessage,
  type WorkersMessage,
} from "../../common/src/telemetry/subjects.js";
import type { AgentMetrics } from "./metrics.js";
import { TelemetryPublisher, type TelemetryTransport } from "./telemetry/publisher.js";

export const NO_TRANSPORT = "no_transport";

/** Never used: every method that would queue is overridden below. Throws so a missed one is counted, not sent. */
const nowhere: TelemetryTransport = {
  publish: () => Promise.reject(new Error("telemetry is off: no NATS URL configured")),
};

export class TelemetryOffPublisher extends TelemetryPublisher {
  constructor(metrics: AgentMetrics) {
    super(nowhere, metrics);
  }

  override collectives(_node: string, records: readonly CollectiveRecord[]): number {
    return this.drop(Stream.collectives, records.length);
  }

  override load(_node: string, reports: readonly LoadEntry[]): number {
    return this.drop(Stream.load, reports.length);
  }

  override rdma(_node: string, ports: RdmaMessage["ports"]): number {
    return this.drop(Stream.rdma, ports.length);
  }

  override workerEvent(_event: Omit<WorkersMessage, "schema" | "sentUnixMs">): number {
    return this.drop(Stream.workers, 1);
  }

  override checkpoint(_node: string, _event: CheckpointEvent): number {
    return this.drop(Stream.workerEvents, 1);
  }

  override get enabled(): boolean {
    return false;
  }

  private drop(stream: Stream, items: number): 0 {
    if (items > 0) this.metrics.telemetryDropped.inc({ stream, reason: NO_TRANSPORT }, items);
    return 0;
  }
}
