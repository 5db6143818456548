/** Turns registry supervision events into NATS worker events, metrics and logs; checks heartbeats on a timer. */
import type { AgentMetrics } from "../metrics.js";
import type { TelemetryPublisher } from "../telemetry/publisher.js";
import { WorkerState, type SupervisionEvent, type WorkerRegistry } from "./registry.js";

export type EventLog = (event: SupervisionEvent) => void;

export class Supervisor {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly registry: WorkerRegistry,
    private readonly publisher: TelemetryPublisher,
    private readonly metrics: AgentMetrics,
    private readonly log: EventLog,
    private readonly nowMs: () => number = Date.now,
  ) {}

  report(event: SupervisionEvent): void {
    const w = event.worker;
    if (event.event === "missing") this.metrics.workerMissedHeartbeats.inc({ node: w.nodeName });
    this.publisher.workerEvent({
      node: w.nodeName,
      event: event.event,
      workerId: w.workerId,
      podNamespace: w.podNamespace,
      podName: w.podName,
      lastHeartbeatUnixMs: w.lastHeartbeatUnixMs,
    });
    this.log(event);
    this.refreshGauge();
  }

  tick(): void {
    for (const event of this.registry.checkHeartbeats(this.nowMs())) this.report(event);
  }

  start(): void {
    this.timer ??= setInterval(() => this.tick(), this.registry.options.heartbeatIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private refreshGauge(): void {
    this.metrics.workers.reset();
    for (const w of this.registry.list()) {
      this.metrics.workers.inc({
        node: w.nodeName,
        kind: w.kind,
        state: w.state === WorkerState.healthy ? "healthy" : "missing",
      });
    }
  }
}
