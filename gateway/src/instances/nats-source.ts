/**
 * InstanceSource over the agents' load messages on JetStream: an ordered, ephemeral consumer of the load stream
 * (common/src/telemetry/streams.ts) that starts `lookbackMs` back in time, so a (re)started gateway learns every
 * instance that reported within that window at once, from the stream, instead of waiting for the next report; after
 * the replay it sees new reports as they are stored. Nothing is acknowledged and every replica has its own consumer
 * (each sees every report). Why a start time and not "last per subject": load subjects are per node and one message
 * carries one pod's batch, so the last message of a subject describes only one of the node's instances.
 *
 * Membership comes from the reports themselves: each carries the pod's namespace/name and its ServingDeployment
 * (InstanceLoadFields), so the gateway needs no Kubernetes API access. Reports without the serving fields (training
 * workers, or agents from before the field was added) are counted and skipped; malformed ones too, logged once per
 * subject per minute at most.
 *
 * The connection's disconnects are passed on (onDisconnect): while NATS is away no report can arrive, and the view
 * holds its last state for a bounded time instead of letting every instance go stale (view.ts).
 */
import { DeliverPolicy, Events, type ConsumerMessages, type JsMsg, type NatsConnection } from "nats";
import { validateInstanceLoadFields } from "../../../common/src/engine-api.js";
import { EngineKind } from "../../../crds/src/serving-deployment.js";
import { ensureStreams, streamDefinition, streamName } from "../../../common/src/telemetry/streams.js";
import { decodeLoad, Stream, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import type { Logger } from "../logger.js";
import type { GatewayMetrics } from "../metrics.js";
import type { InstanceListener, InstanceReport, InstanceSource } from "./source.js";

export function reportFromLoadEntry(entry: LoadEntry): InstanceReport | { invalid: string } | undefined {
  const extra = entry as LoadEntry & Record<string, unknown>;
  if (extra.engineUrl === undefined && extra.role === undefined) return undefined; // not a serving instance
  const fields = validateInstanceLoadFields(extra);
  if (!fields.ok) return { invalid: fields.message };
  const f = fields.value;
  return {
    id: entry.workerId,
    model: f.model,
    role: f.role,
    engine: f.engine ?? EngineKind.reference,
    engineUrl: f.engineUrl,
    ...(f.disaggregationBootstrapPort === undefined
      ? {}
      : { disaggregationBootstrapPort: f.disaggregationBootstrapPort }),
    servingDeployment: f.servingDeployment,
    podNamespace: entry.podNamespace,
    podName: entry.podName,
    reportedUnixMs: entry.unixMs,
    load: {
      kvBlocksTotal: f.kvBlocksTotal,
      kvBlocksUsed: f.kvBlocksUsed,
      blockSizeTokens: f.blockSizeTokens,
      runningRequests: entry.runningRequests,
      queuedRequests: entry.queueLength,
      headOfLineDemandBlocks: f.headOfLineDemandBlocks ?? 0,
      highPriorityRunning: f.highPriorityRunning ?? 0,
      draining: f.draining ?? false,
      outstandingPromptTokens: f.outstandingPromptTokens ?? 0,
    },
  };
}

export interface LoadSourceOptions {
  /** How far back the consumer starts: reports older than this would be stale anyway (instanceStaleMs). */
  lookbackMs: number;
  now?: () => number;
}

export class JetStreamLoadInstanceSource implements InstanceSource {
  private readonly listeners = new Set<InstanceListener>();
  private readonly disconnectListeners = new Set<() => void>();
  private readonly lastWarnMs = new Map<string, number>();
  private readonly loop: Promise<void>;

  private constructor(
    private readonly messages: ConsumerMessages,
    private readonly deps: { logger: Logger; metrics: GatewayMetrics; now: () => number },
    connection: NatsConnection,
  ) {
    this.loop = this.consume();
    void this.watch(connection);
  }

  /** Ends when the connection closes. */
  private async watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === Events.Disconnect) {
        this.deps.logger.warn({ server: status.data }, "NATS disconnected; holding the last view of the instances");
        for (const listener of this.disconnectListeners) listener();
      } else if (status.type === Events.Reconnect) {
        this.deps.logger.info({ server: status.data }, "NATS reconnected");
      }
    }
  }

  /**
   * Ensures the load stream (the agents and the operator do too; whichever starts first creates it) and starts the
   * consumer. Listeners added right after this resolves get the replayed reports: messages come from the network,
   * so none is handled before the caller's next await.
   */
  static async start(
    connection: NatsConnection,
    deps: { logger: Logger; metrics: GatewayMetrics },
    options: LoadSourceOptions,
  ): Promise<JetStreamLoadInstanceSource> {
    const now = options.now ?? Date.now;
    const definition = streamDefinition(Stream.load);
    try {
      await ensureStreams(await connection.jetstreamManager(), [definition]);
      const consumer = await connection.jetstream().consumers.get(streamName(Stream.load), {
        filterSubjects: subscriptionFor(Stream.load),
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: new Date(now() - options.lookbackMs).toISOString(),
      });
      return new JetStreamLoadInstanceSource(await consumer.consume(), { ...deps, now }, connection);
    } catch (error) {
      throw new Error(
        `cannot consume the load stream ${streamName(Stream.load)} on JetStream (does the NATS server run with JetStream?)`,
        { cause: error },
      );
    }
  }

  private async consume(): Promise<void> {
    for await (const message of this.messages) this.handle(message);
  }

  private handle(message: JsMsg): void {
    let entries: LoadEntry[];
    try {
      entries = decodeLoad(message.subject, message.data).reports;
    } catch (error) {
      this.deps.metrics.loadReportsTotal.inc({ result: "invalid" });
      this.warn(message.subject, { err: error }, "load message ignored");
      return;
    }
    // Age on the stream: a replayed report counts as received when JetStream stored it, so it goes stale on time.
    const ageMs = Math.max(0, this.deps.now() - message.info.timestampNanos / 1e6);
    for (const entry of entries) {
      const report = reportFromLoadEntry(entry);
      if (report === undefined) {
        this.deps.metrics.loadReportsTotal.inc({ result: "not_serving" });
      } else if ("invalid" in report) {
        this.deps.metrics.loadReportsTotal.inc({ result: "invalid" });
        this.warn(message.subject, { workerId: entry.workerId, reason: report.invalid }, "load report ignored");
      } else {
        this.deps.metrics.loadReportsTotal.inc({ result: "accepted" });
        for (const listener of this.listeners) listener(report, ageMs);
      }
    }
  }

  private warn(subject: string, fields: object, message: string): void {
    const now = this.deps.now();
    if (now - (this.lastWarnMs.get(subject) ?? 0) < 60_000) return;
    this.lastWarnMs.set(subject, now);
    this.deps.logger.warn({ subject, ...fields }, message);
  }

  subscribe(listener: InstanceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onDisconnect(listener: () => void): void {
    this.disconnectListeners.add(listener);
  }

  async close(): Promise<void> {
    await this.messages.close();
    await this.loop;
    this.listeners.clear();
    this.disconnectListeners.clear();
  }
}
