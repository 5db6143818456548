/**
 * One durable pull consumer on one telemetry stream, with explicit acknowledgements. Every operator replica uses
 * the same durable name per stream, so the consumer's ack floor lives in JetStream, not in a process: a restarted
 * operator or a new leader resumes from where the last one acknowledged. Only the leader runs consumers (start on
 * leadership, stop on its loss).
 *
 * A message is acknowledged after its handler returned (the read model updated, a checkpoint written), nak'ed with
 * a delay when the handler threw (redelivered later), and terminated when it cannot be decoded (a poison message
 * would otherwise come back forever). On stop, messages already buffered but not handled are nak'ed, so the next
 * consumer gets them at once (any still on the wire come back after the ack wait), and stop() resolves once the
 * acks were flushed to the server: what the read model holds is exactly what was acknowledged.
 */
import {
  AckPolicy,
  DeliverPolicy,
  nanos,
  type JetStreamManager,
  type JsMsg,
  type JetStreamClient,
  type Consumer,
  type ConsumerMessages,
  type NatsConnection,
} from "nats";
import { TelemetryDecodeError } from "../../../common/src/telemetry/subjects.js";
import type { StreamDefinition } from "../../../common/src/telemetry/streams.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Clock } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";

export interface ConsumerLimits {
  /** Messages delivered and not yet acknowledged, at most (JetStream max_ack_pending). */
  maxAckPending: number;
  /** Messages the client buffers ahead of the handler (consume's max_messages). */
  batchMessages: number;
  /** A delivered message unacknowledged this long is redelivered. */
  ackWaitMs: number;
  /** Delay before a message whose handler failed is redelivered. */
  nakDelayMs: number;
  /** How often consumer lag is read into the metrics. */
  lagIntervalMs: number;
}

export const DEFAULT_CONSUMER_LIMITS: ConsumerLimits = {
  maxAckPending: 1000,
  batchMessages: 64,
  ackWaitMs: 30_000,
  nakDelayMs: 1000,
  lagIntervalMs: 5000,
};

/** Handles one message; throws TelemetryDecodeError for an undecodable one, anything else to have it redelivered. */
export type MessageHandler = (subject: string, data: Uint8Array) => void | Promise<void>;

export const DEFAULT_DURABLE_PREFIX = "gpufleet-operator";

export function durableName(prefix: string, stream: StreamDefinition): string {
  return `${prefix}-${stream.stream}`;
}

/** Adds the durable consumer, or updates the limits of the existing one. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: StreamDefinition,
  durable: string,
  limits: ConsumerLimits,
): Promise<void> {
  const mutable = { ack_wait: nanos(limits.ackWaitMs), max_ack_pending: limits.maxAckPending, max_deliver: -1 };
  try {
    await jsm.consumers.info(stream.name, durable);
  } catch {
    try {
      await jsm.consumers.add(stream.name, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ...mutable,
      });
      return;
    } catch (err) {
      if (!/already (exists|in use)/i.test(String(err))) throw err;
    }
  }
  await jsm.consumers.update(stream.name, durable, mutable);
}

export interface StreamConsumerDeps {
  nc: NatsConnection;
  stream: StreamDefinition;
  durable: string;
  handler: MessageHandler;
  metrics: OperatorMetrics;
  clock: Clock;
  logger: Logger;
  limits: ConsumerLimits;
}

export class StreamConsumer {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private lagTimer: unknown;
  private consumer: Consumer | undefined;
  private messages: ConsumerMessages | undefined;
  private readonly js: JetStreamClient;

  constructor(private readonly deps: StreamConsumerDeps) {
    this.js = deps.nc.jetstream();
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run();
    this.scheduleLag();
  }

  /** Stops pulling, finishes (or naks) what was pulled, and flushes the acknowledgements. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.deps.clock.clearTimeout(this.lagTimer);
    this.messages?.stop();
    await this.loop;
    this.loop = undefined;
    if (!this.deps.nc.isClosed()) await this.deps.nc.flush().catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { stream, logger } = this.deps;
    let failures = 0;
    while (!this.stopping) {
      try {
        this.consumer ??= await this.js.consumers.get(stream.name, this.deps.durable);
        // consume(), not fetch(): fetch() stops listening when its expiry passes, and messages still on the wire
        // then (a large batch on a busy machine) sit unacknowledged until the ack wait redelivers them.
        const messages = await this.consumer.consume({ max_messages: this.deps.limits.batchMessages });
        this.messages = messages;
        if (this.stopping) messages.stop();
        for await (const msg of messages) {
          failures = 0;
          if (this.stopping) msg.nak();
          else await this.handle(msg);
        }
        if (!this.stopping) throw new Error(`consumer ${this.deps.durable} on ${stream.name} stopped delivering`);
      } catch (err) {
        failures++;
        if (failures === 1 || failures % 30 === 0)
          logger.warn({ err, stream: stream.stream, failures }, "consuming telemetry failed; retrying");
        await this.sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
      } finally {
        this.messages = undefined;
      }
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    const { metrics, stream } = this.deps;
    if (msg.info.redeliveryCount > 1) metrics.telemetryRedeliveriesTotal.inc({ stream: stream.stream });
    try {
      await this.deps.handler(msg.subject, msg.data);
    } catch (err) {
      if (err instanceof TelemetryDecodeError) {
        metrics.telemetryDecodeErrorsTotal.inc({ stream: stream.stream });
        metrics.telemetryMessagesTotal.inc({ stream: stream.stream, result: "term" });
        this.deps.logger.warn({ err, stream: stream.stream }, "undecodable telemetry message terminated");
        msg.term(err.message);
        return;
      }
      metrics.telemetryMessagesTotal.inc({ stream: stream.stream, result: "nak" });
      this.deps.logger.warn(
        { err, stream: stream.stream, subject: msg.subject },
        "telemetry message not handled; it will be redelivered",
      );
      msg.nak(this.deps.limits.nakDelayMs);
      return;
    }
    msg.ack();
    metrics.telemetryMessagesTotal.inc({ stream: stream.stream, result: "ack" });
  }

  private scheduleLag(): void {
    this.lagTimer = this.deps.clock.setTimeout(() => {
      if (this.stopping) return;
      void this.readLag().finally(() => {
        if (!this.stopping) this.scheduleLag();
      });
    }, this.deps.limits.lagIntervalMs);
  }

  /** Reads the consumer's lag into the metrics now. */
  async readLag(): Promise<{ pending: number; ackPending: number } | undefined> {
    try {
      const info = await (
        this.consumer ?? (await this.js.consumers.get(this.deps.stream.name, this.deps.durable))
      ).info();
      this.deps.metrics.telemetryConsumerPending.set(
        { stream: this.deps.stream.stream, state: "pending" },
        info.num_pending,
      );
      this.deps.metrics.telemetryConsumerPending.set(
        { stream: this.deps.stream.stream, state: "ack_pending" },
        info.num_ack_pending,
      );
      return { pending: info.num_pending, ackPending: info.num_ack_pending };
    } catch {
      return undefined;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.deps.clock.setTimeout(() => resolve(), ms));
  }
}
