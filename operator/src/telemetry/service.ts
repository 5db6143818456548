/**
 * The operator's telemetry: a NATS connection, the streams (ensureStreams), one durable consumer per stream
 * (consumer.ts) feeding the read model (read-model.ts), and checkpoint reports written to TrainingJob status
 * (checkpoints.ts). Consumers run only while this replica leads; the connection and the read model live as long
 * as the process. Without a natsUrl telemetry is off: `enabled` is false, the views stay empty, and the
 * gpufleet_operator_telemetry_enabled gauge says 0.
 */
import { existsSync } from "node:fs";
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { connect, type NatsConnection } from "nats";
import { OwnedLabel } from "../../../crds/src/reasons.js";
import { natsIdentity, NatsRole } from "../../../common/src/nats/authorization.js";
import { natsCredentialOptions } from "../../../common/src/nats/connect.js";
import { ensureStreams, STREAMS, type StreamDefinition } from "../../../common/src/telemetry/streams.js";
import {
  decodeCollectives,
  decodeLoad,
  decodeRdma,
  decodeWorkerEvents,
  decodeWorkers,
  Stream,
} from "../../../common/src/telemetry/subjects.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Clock } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";
import { CheckpointWrite, CheckpointWriter } from "./checkpoints.js";
import {
  DEFAULT_CONSUMER_LIMITS,
  DEFAULT_DURABLE_PREFIX,
  durableName,
  ensureConsumer,
  StreamConsumer,
  type ConsumerLimits,
  type MessageHandler,
} from "./consumer.js";
import {
  DEFAULT_READ_MODEL_LIMITS,
  TelemetryReadModel,
  type ReadModelLimits,
  type TelemetryViews,
} from "./read-model.js";

export interface TelemetryOptions {
  natsUrl: string | undefined;
  /** The operator's NATS client certificate folder (connect.ts); "" or absent: connect without one. */
  natsTlsDir?: string;
  /** Durable consumer names are `<prefix>-<stream>`; every replica of one operator uses the same prefix. */
  durablePrefix?: string;
  kubeConfig: KubeConfig;
  cachedPod: (namespace: string, name: string) => V1Pod | undefined;
  metrics: OperatorMetrics;
  clock: Clock;
  logger: Logger;
  readModelLimits?: ReadModelLimits;
  consumerLimits?: ConsumerLimits;
}

export class TelemetryService {
  readonly model: TelemetryReadModel;
  private nc: NatsConnection | undefined;
  private consumers: StreamConsumer[] = [];
  private leading = false;
  private closed = false;
  private ready: Promise<void> | undefined;
  private readonly checkpoints: CheckpointWriter;

  constructor(private readonly options: TelemetryOptions) {
    this.model = new TelemetryReadModel(options.readModelLimits ?? DEFAULT_READ_MODEL_LIMITS);
    this.checkpoints = new CheckpointWriter({
      kubeConfig: options.kubeConfig,
      cachedPod: options.cachedPod,
      onConflict: () => options.metrics.telemetryCheckpointWritesTotal.inc({ result: "conflict" }),
    });
    options.metrics.telemetryEnabled.set(this.enabled ? 1 : 0);
  }

  get enabled(): boolean {
    return Boolean(this.options.natsUrl);
  }

  /** Read-only views for controllers. */
  get views(): TelemetryViews {
    return this.model;
  }

  /** Why telemetry is not flowing, for health details; undefined when it is. */
  status(): string | undefined {
    if (!this.enabled) return "telemetry off: no natsUrl configured";
    if (!this.nc || this.nc.isClosed()) return "telemetry: not connected to NATS";
    return undefined;
  }

  /** Connects (retrying until NATS answers) in the background; consumers start once this replica leads. */
  connect(): void {
    if (!this.enabled || this.ready) return;
    const { logger } = this.options;
    this.ready = (async () => {
      // The chart mounts the certificate Secret as optional (this operator issues it): wait for its files.
      if (this.options.natsTlsDir && !(await this.certificateFiles(this.options.natsTlsDir))) return;
      this.nc = await connect({
        servers: this.options.natsUrl,
        ...natsCredentialOptions(this.options.natsTlsDir ?? "", natsIdentity(NatsRole.operator)),
        name: "gpufleet-operator",
        maxReconnectAttempts: -1,
        waitOnFirstConnect: true,
        reconnectTimeWait: 500,
      });
      logger.info({ natsUrl: this.options.natsUrl }, "connected to NATS");
      for (let attempt = 1; ; attempt++) {
        try {
          await ensureStreams(await this.nc.jetstreamManager());
          break;
        } catch (err) {
          if (this.nc.isClosed()) throw err;
          if (attempt === 1 || attempt % 30 === 0)
            logger.warn({ err, attempt }, "JetStream streams not ready; retrying");
          await new Promise<void>((r) => this.options.clock.setTimeout(() => r(), Math.min(5000, 200 * attempt)));
        }
      }
      if (this.leading) await this.startConsumers();
    })().catch((err: unknown) => logger.error({ err }, "telemetry failed to start"));
  }

  /** True once the files exist; false if closed while waiting. */
  private async certificateFiles(dir: string): Promise<boolean> {
    const files = Object.values(natsCredentialOptions(dir, natsIdentity(NatsRole.operator)).tls ?? {}) as string[];
    for (let attempt = 1; !this.closed; attempt++) {
      const missing = files.filter((f) => !existsSync(f));
      if (missing.length === 0) return true;
      if (attempt === 1 || attempt % 30 === 0)
        this.options.logger.warn({ missing }, "NATS client certificate not there yet; waiting (the leader issues it)");
      await new Promise<void>((r) => this.options.clock.setTimeout(() => r(), 2000));
    }
    return false;
  }

  /** Called when this replica starts leading. */
  async startLeading(): Promise<void> {
    this.leading = true;
    if (this.nc && !this.nc.isClosed() && this.consumers.length === 0) await this.startConsumers();
  }

  /** Called when leadership is lost, and on shutdown: consumers stop after flushing their acks. */
  async stopLeading(): Promise<void> {
    this.leading = false;
    const consumers = this.consumers;
    this.consumers = [];
    await Promise.all(consumers.map((c) => c.stop()));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.stopLeading();
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) await nc.close();
  }

  /** Current lag of every consumer (also refreshed periodically into the metrics). */
  async lag(): Promise<Record<string, { pending: number; ackPending: number } | undefined>> {
    const entries = await Promise.all(
      this.consumers.map(async (c, i) => [STREAMS[i]!.stream, await c.readLag()] as const),
    );
    return Object.fromEntries(entries);
  }

  private async startConsumers(): Promise<void> {
    const nc = this.nc!;
    const jsm = await nc.jetstreamManager();
    const limits = this.options.consumerLimits ?? DEFAULT_CONSUMER_LIMITS;
    const prefix = this.options.durablePrefix ?? DEFAULT_DURABLE_PREFIX;
    const consumers: StreamConsumer[] = [];
    for (const stream of STREAMS) {
      const durable = durableName(prefix, stream);
      await ensureConsumer(jsm, stream, durable, limits);
      consumers.push(
        new StreamConsumer({
          nc,
          stream,
          durable,
          handler: this.handlerFor(stream),
          metrics: this.options.metrics,
          clock: this.options.clock,
          logger: this.options.logger,
          limits,
        }),
      );
    }
    if (!this.leading) return; // leadership was lost while we set up
    this.consumers = consumers;
    for (const c of consumers) c.start();
    this.options.logger.info({ streams: STREAMS.map((s) => s.name), prefix }, "consuming telemetry");
  }

  private ownerOf(label: string, namespace: string, name: string): string | undefined {
    const owner = this.options.cachedPod(namespace, name)?.metadata?.labels?.[label];
    return owner ? `${namespace}/${owner}` : undefined;
  }

  private handlerFor(stream: StreamDefinition): MessageHandler {
    const { metrics, clock } = this.options;
    const model = this.model;
    const evictionsBefore = () => model.counters();
    const countEvictions = (before: ReturnType<typeof evictionsBefore>) => {
      const after = model.counters();
      const deltas = {
        agent: after.recordsDroppedAtAgents - before.recordsDroppedAtAgents,
        sequence: after.evictedSequences - before.evictedSequences,
        communicator: after.evictedCommunicators - before.evictedCommunicators,
        load_instance: after.evictedLoadInstances - before.evictedLoadInstances,
        job: after.evictedJobs - before.evictedJobs,
        worker: after.evictedWorkers - before.evictedWorkers,
        rdma_port: after.evictedRdmaPorts - before.evictedRdmaPorts,
      };
      for (const [where, n] of Object.entries(deltas)) if (n > 0) metrics.telemetryDroppedTotal.inc({ where }, n);
    };
    switch (stream.stream) {
      case Stream.collectives:
        return (subject, data) => {
          const message = decodeCollectives(subject, data);
          const job = message.source
            ? this.ownerOf(OwnedLabel.trainingJob, message.source.podNamespace, message.source.podName)
            : undefined;
          const before = evictionsBefore();
          const result = model.applyCollectives(message, job, clock.now());
          if (result.accepted) metrics.telemetryRecordsTotal.inc({ result: "accepted" }, result.accepted);
          if (result.duplicates) metrics.telemetryRecordsTotal.inc({ result: "duplicate" }, result.duplicates);
          if (result.stale) metrics.telemetryRecordsTotal.inc({ result: "stale" }, result.stale);
          countEvictions(before);
        };
      case Stream.load:
        return (subject, data) => {
          const message = decodeLoad(subject, data);
          const before = evictionsBefore();
          model.applyLoad(
            message.node,
            message.reports,
            (ns, pod) => this.ownerOf(OwnedLabel.servingDeployment, ns, pod),
            clock.now(),
          );
          countEvictions(before);
        };
      case Stream.rdma:
        return (subject, data) => {
          const before = evictionsBefore();
          model.applyRdma(decodeRdma(subject, data), clock.now());
          countEvictions(before);
        };
      case Stream.workers:
        return (subject, data) => {
          const before = evictionsBefore();
          model.applyWorkers(decodeWorkers(subject, data), clock.now());
          countEvictions(before);
        };
      case Stream.workerEvents:
        return async (subject, data) => {
          const { event } = decodeWorkerEvents(subject, data);
          let outcome;
          try {
            outcome = await this.checkpoints.write(event);
          } catch (err) {
            metrics.telemetryCheckpointWritesTotal.inc({ result: "error" });
            throw err;
          }
          metrics.telemetryCheckpointWritesTotal.inc({ result: outcome.result });
          if (outcome.job && outcome.result !== CheckpointWrite.moot) {
            const before = evictionsBefore();
            model.applyCheckpoint(outcome.job, event);
            countEvictions(before);
          }
        };
    }
  }
}
