/**
 * The agent's core, wired once for main.ts, the integration tests and the benchmark: worker registry and
 * supervisor, telemetry ingest and bounded NATS publisher, the two gRPC servers.
 */
import type { NodeDirectory, Diagnostics, TrafficPlanExecutor } from "./grpc/node-agent-service.js";
import type { ServerTls } from "./grpc/credentials.js";
import { AgentServer } from "./grpc/server.js";
import type { AgentMetrics } from "./metrics.js";
import { TelemetryOffPublisher } from "./telemetry-off.js";
import { TelemetryIngest } from "./telemetry/ingest.js";
import { TelemetryPublisher, type PublisherLimits, type TelemetryTransport } from "./telemetry/publisher.js";
import { WorkerRegistry } from "./workers/registry.js";
import { Supervisor, type EventLog } from "./workers/supervisor.js";

export interface AgentCoreOptions {
  workerSocketPath: string;
  operatorAddress: string;
  /** Operator-facing mTLS; undefined only in development (GPUFLEET_AGENT_INSECURE=true). */
  tls: ServerTls | undefined;
  heartbeatIntervalMs: number;
  missedHeartbeatsLimit: number;
  publisherLimits: PublisherLimits;
  onTlsReload?: (event: { ok: boolean; error?: Error; notAfter?: string }) => void;
  /** Applies C4P traffic plans (simulation: the simulated fabric); absent: ApplyTrafficPlan is UNIMPLEMENTED. */
  traffic?: TrafficPlanExecutor;
}

export class AgentCore {
  readonly registry: WorkerRegistry;
  readonly publisher: TelemetryPublisher;
  readonly ingest: TelemetryIngest;
  readonly supervisor: Supervisor;
  readonly server: AgentServer;

  constructor(
    options: AgentCoreOptions,
    /** Undefined: telemetry off (no NATS configured); every item is counted as dropped, reason no_transport. */
    transport: TelemetryTransport | undefined,
    nodes: NodeDirectory,
    diagnostics: Diagnostics,
    readonly metrics: AgentMetrics,
    log: EventLog,
    nowMs: () => number = Date.now,
  ) {
    this.registry = new WorkerRegistry({
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      missedHeartbeatsLimit: options.missedHeartbeatsLimit,
      servesNode: (n) => nodes.facts(n) !== undefined,
    });
    this.publisher = transport
      ? new TelemetryPublisher(transport, metrics, options.publisherLimits, nowMs)
      : new TelemetryOffPublisher(metrics);
    this.ingest = new TelemetryIngest(metrics, this.publisher);
    this.supervisor = new Supervisor(this.registry, this.publisher, metrics, log, nowMs);
    this.server = new AgentServer(
      {
        workerSocketPath: options.workerSocketPath,
        operatorAddress: options.operatorAddress,
        tls: options.tls,
        onTlsReload: options.onTlsReload,
      },
      { registry: this.registry, ingest: this.ingest, metrics, onEvent: (e) => this.supervisor.report(e), nowMs },
      {
        nodes,
        registry: this.registry,
        diagnostics,
        metrics,
        nowMs,
        ...(options.traffic ? { traffic: options.traffic } : {}),
      },
    );
  }

  async start(): Promise<void> {
    this.publisher.start();
    this.supervisor.start();
    await this.server.start();
  }

  async stop(): Promise<void> {
    this.supervisor.stop();
    await this.server.stop();
    await this.publisher.stop();
  }
}
