/**
 * Batching, bounded, acknowledged publishing to the JetStream streams of common/src/telemetry/streams.ts.
 *
 * Each (stream, node, pod) has a batcher: items queue up to `maxBufferedItems`, go out in messages of at most
 * `maxBatchItems`, on size or on the flush timer. Every message is a JetStream publish with a message id and waits
 * for the stream's acknowledgement; at most `maxInFlightBatches` messages are unacknowledged at once. A publish that
 * fails or times out (NATS down, stream full, no responders) keeps its window slot and is retried with exponential
 * backoff under the same message id, so the stream's duplicate window drops a retry of a message it had in fact
 * stored. Nothing is lost while NATS is away: items wait in the window and then in the queue; only when the queue is
 * full are new items dropped and counted (metric + droppedSincePrevious in the next collectives message).
 * When the transport says the connection is back, every batch waiting out its backoff is sent at once (and one whose
 * attempt was in flight across the reconnect is retried at once when that attempt fails): after an
 * outage the evidence held meanwhile reaches the operator without waiting up to maxRetryBackoffMs more.
 * A message is also bounded in bytes (the server refuses a publish above its max_payload, 1 MiB by default, and a
 * retry would fail forever): a batch that encodes larger than `maxMessageBytes` (or the server's max_payload less
 * room for headers) is split in halves until it fits; a single item that alone is too large is dropped, counted
 * (reason "too_large").
 * Memory is therefore bounded by maxBufferedItems per batcher + maxInFlightBatches x maxMessageBytes.
 */
import { randomUUID } from "node:crypto";
import type { AgentMetrics } from "../metrics.js";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import {
  encodeCollectives,
  encodeJson,
  Schema,
  Stream,
  subjectFor,
  type CheckpointEvent,
  type LoadEntry,
  type LoadMessage,
  type PodRef,
  type RdmaMessage,
  type WorkerEventsMessage,
  type WorkersMessage,
} from "../../../common/src/telemetry/subjects.js";

/** Where batches go (JetStreamTransport in production). */
export interface TelemetryTransport {
  /** Resolves once the stream stored the message (or recognised `msgId` as a duplicate); rejects otherwise. */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<void>;
  /** The largest message the server takes (NATS max_payload), when known. */
  readonly maxPayloadBytes?: number;
  /** Calls `listener` each time the connection is back after a disconnect, where the transport can tell. */
  onReconnect?(listener: () => void): void;
}

/** Room left in a message for the headers (Nats-Msg-Id) within the server's max_payload. */
export const HEADER_ROOM_BYTES = 1024;

export interface PublisherLimits {
  maxBatchItems: number;
  /** Encoded bytes per message, at most (lowered to the server's max_payload less HEADER_ROOM_BYTES). */
  maxMessageBytes: number;
  maxBufferedItems: number;
  maxInFlightBatches: number;
  flushIntervalMs: number;
  /** First retry delay of a failed publish; doubles per attempt up to maxRetryBackoffMs. */
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
}

export const DEFAULT_PUBLISHER_LIMITS: PublisherLimits = {
  maxBatchItems: 1000,
  maxMessageBytes: 1024 * 1024 - HEADER_ROOM_BYTES,
  maxBufferedItems: 50_000,
  maxInFlightBatches: 8,
  flushIntervalMs: 250,
  retryBackoffMs: 100,
  maxRetryBackoffMs: 5000,
};

/** Retry delay for the n-th failed attempt (1-based): exponential, capped. */
export function retryDelayMs(
  limits: Pick<PublisherLimits, "retryBackoffMs" | "maxRetryBackoffMs">,
  attempt: number,
): number {
  return Math.min(limits.maxRetryBackoffMs, limits.retryBackoffMs * 2 ** Math.min(attempt - 1, 30));
}

interface Outgoing {
  stream: Stream;
  subject: string;
  data: Uint8Array;
  items: number;
  msgId: string;
  attempts: number;
  /** The publisher's reconnect count when this attempt was sent. */
  sentInConnection: number;
}

type Encode<T> = (items: readonly T[], dropped: number) => Uint8Array;

class Batcher<T> {
  private queue: T[] = [];
  private droppedSinceSent = 0;

  constructor(
    readonly stream: Stream,
    readonly subject: string,
    private readonly encode: Encode<T>,
    private readonly owner: TelemetryPublisher,
    private readonly maxBatchItems: number,
  ) {}

  get buffered(): number {
    return this.queue.length;
  }

  /** Returns how many of the items were accepted. */
  add(items: readonly T[]): number {
    const room = this.owner.limits.maxBufferedItems - this.queue.length;
    const accepted = Math.max(0, Math.min(room, items.length));
    for (let i = 0; i < accepted; i++) this.queue.push(items[i]!);
    const dropped = items.length - accepted;
    if (dropped > 0) {
      this.droppedSinceSent += dropped;
      this.owner.metrics.telemetryDropped.inc({ stream: this.stream, reason: "buffer_full" }, dropped);
    }
    this.owner.adjustBuffered(this.stream, accepted);
    if (this.queue.length >= this.maxBatchItems) this.owner.pump();
    return accepted;
  }

  /**
   * Takes at most one batch off the queue, encoded within maxBytes; undefined when there is nothing (or, fullOnly,
   * no full batch). A batch too large in bytes is halved until it fits; an item too large alone is dropped, counted.
   */
  take(fullOnly: boolean, maxBytes: number): { data: Uint8Array; items: number } | undefined {
    if (this.queue.length === 0 || (fullOnly && this.queue.length < this.maxBatchItems)) return undefined;
    let n = Math.min(this.queue.length, this.maxBatchItems);
    for (;;) {
      const batch = n === this.queue.length ? this.queue : this.queue.slice(0, n);
      const data = this.encode(batch, this.droppedSinceSent);
      if (data.length <= maxBytes) {
        if (n === this.queue.length) this.queue = [];
        else this.queue.splice(0, n);
        this.owner.adjustBuffered(this.stream, -n);
        this.droppedSinceSent = 0;
        return { data, items: n };
      }
      if (n > 1) {
        n = Math.ceil(n / 2);
        continue;
      }
      this.queue.shift();
      this.owner.adjustBuffered(this.stream, -1);
      this.droppedSinceSent++;
      this.owner.metrics.telemetryDropped.inc({ stream: this.stream, reason: "too_large" });
      if (this.queue.length === 0) return undefined;
      n = Math.min(this.queue.length, this.maxBatchItems);
    }
  }

  /** Drops everything queued (shutdown without NATS); returns how many. */
  discard(): number {
    const n = this.queue.length;
    this.queue = [];
    this.owner.adjustBuffered(this.stream, -n);
    return n;
  }
}

export class TelemetryPublisher {
  private readonly batchers = new Map<string, Batcher<unknown>>();
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Batches waiting out their retry backoff, by their timer. */
  private readonly retryTimers = new Map<NodeJS.Timeout, Outgoing>();
  private readonly bufferedByStream = new Map<Stream, number>();
  private idleWaiters: (() => void)[] = [];
  /** Message ids are unique per publisher instance, so a restarted agent never collides with its predecessor. */
  private readonly instanceId = randomUUID().slice(0, 8);
  private nextMessage = 0;
  /** Reconnects seen: a publish sent before the latest one failed on the old connection. */
  private reconnects = 0;
  private stopped = false;

  constructor(
    private readonly transport: TelemetryTransport,
    readonly metrics: AgentMetrics,
    readonly limits: PublisherLimits = DEFAULT_PUBLISHER_LIMITS,
    private readonly nowMs: () => number = Date.now,
  ) {
    transport.onReconnect?.(() => this.retryNow());
  }

  /** Sends every batch waiting out its backoff now (the connection is back). */
  retryNow(): void {
    if (this.stopped) return;
    this.reconnects++;
    const waiting = [...this.retryTimers];
    this.retryTimers.clear();
    for (const [timer, out] of waiting) {
      clearTimeout(timer);
      // The backoff measured the outage that just ended: a server restarting its JetStream may refuse the first
      // publishes after the reconnect, and those retries should come in ~retryBackoffMs, not maxRetryBackoffMs.
      out.attempts = 0;
      this.send(out);
    }
  }

  /** Read per pump: the server's max_payload may change with a reconnect to another server. */
  private maxMessageBytes(): number {
    const serverMax = this.transport.maxPayloadBytes;
    return serverMax === undefined
      ? this.limits.maxMessageBytes
      : Math.min(this.limits.maxMessageBytes, serverMax - HEADER_ROOM_BYTES);
  }

  start(): void {
    this.stopped = false;
    this.timer ??= setInterval(() => this.pump(true), this.limits.flushIntervalMs);
    this.timer.unref();
  }

  /**
   * Stops the flush timer and drains for at most `drainTimeoutMs`; what is still unacknowledged then (NATS away)
   * is dropped and counted (reason "shutdown"). Returns how many items that was.
   */
  async stop(drainTimeoutMs = 5000): Promise<number> {
    clearInterval(this.timer);
    this.timer = undefined;
    let timeout: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.drain().then(() => true),
      new Promise<boolean>((resolve) => (timeout = setTimeout(() => resolve(false), drainTimeoutMs))),
    ]);
    clearTimeout(timeout);
    this.stopped = true;
    if (drained) return 0;
    for (const t of this.retryTimers.keys()) clearTimeout(t);
    this.retryTimers.clear();
    let lost = 0;
    for (const out of this.unacked) {
      this.metrics.telemetryDropped.inc({ stream: out.stream, reason: "shutdown" }, out.items);
      lost += out.items;
    }
    this.unacked.clear();
    this.inFlight = 0;
    for (const b of this.batchers.values()) {
      const n = b.discard();
      if (n > 0) this.metrics.telemetryDropped.inc({ stream: b.stream, reason: "shutdown" }, n);
      lost += n;
    }
    this.wakeIdle();
    return lost;
  }

  /** Sends everything queued (as the window allows) and resolves when all of it is acknowledged. */
  async drain(): Promise<void> {
    for (;;) {
      this.pump(true);
      if (this.inFlight === 0 && this.buffered() === 0) return;
      if (this.stopped) return;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  buffered(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.buffered;
    return n;
  }

  /** Messages sent and not yet acknowledged (the in-flight window, including those waiting to be retried). */
  private readonly unacked = new Set<Outgoing>();

  /** Items sent and not yet acknowledged. */
  unacknowledged(): number {
    let n = 0;
    for (const out of this.unacked) n += out.items;
    return n;
  }

  collectives(node: string, records: readonly CollectiveRecord[], source?: PodRef): number {
    const key = source ? `${source.podNamespace}/${source.podName}` : "";
    return this.batcher<CollectiveRecord>(Stream.collectives, node, key, (items, dropped) =>
      encodeCollectives(node, items, this.nowMs(), dropped, source),
    ).add(records);
  }

  load(node: string, reports: readonly LoadEntry[]): number {
    return this.batcher<LoadEntry>(Stream.load, node, "", (items) => {
      const message: LoadMessage = { schema: Schema.load, node, sentUnixMs: this.nowMs(), reports: [...items] };
      return encodeJson(message);
    }).add(reports);
  }

  rdma(node: string, ports: RdmaMessage["ports"]): number {
    return this.batcher<RdmaMessage["ports"][number]>(Stream.rdma, node, "", (items) => {
      const message: RdmaMessage = { schema: Schema.rdma, node, sentUnixMs: this.nowMs(), ports: [...items] };
      return encodeJson(message);
    }).add(ports);
  }

  /** Worker events are rare and matter individually: one message each, still through the bounded window. */
  workerEvent(event: Omit<WorkersMessage, "schema" | "sentUnixMs">): number {
    return this.batcher<WorkersMessage>(Stream.workers, event.node, "", (items) => encodeJson(items[0]!), 1).add([
      { ...event, schema: Schema.workers, sentUnixMs: this.nowMs() },
    ]);
  }

  /** False only for the telemetry-off publisher (no NATS configured): nothing queued here ever leaves the agent. */
  get enabled(): boolean {
    return true;
  }

  /** One worker-events message per checkpoint report. */
  checkpoint(node: string, event: CheckpointEvent): number {
    return this.batcher<WorkerEventsMessage>(Stream.workerEvents, node, "", (items) => encodeJson(items[0]!), 1).add([
      { schema: Schema.workerEvents, node, sentUnixMs: this.nowMs(), event },
    ]);
  }

  private batcher<T>(
    stream: Stream,
    node: string,
    source: string,
    encode: Encode<T>,
    maxBatchItems?: number,
  ): Batcher<T> {
    const key = `${stream}\u0000${node}\u0000${source}`;
    let b = this.batchers.get(key) as Batcher<T> | undefined;
    if (!b) {
      b = new Batcher<T>(stream, subjectFor(stream, node), encode, this, maxBatchItems ?? this.limits.maxBatchItems);
      this.batchers.set(key, b as Batcher<unknown>);
    }
    return b;
  }

  /** @internal */
  adjustBuffered(stream: Stream, delta: number): void {
    const n = (this.bufferedByStream.get(stream) ?? 0) + delta;
    this.bufferedByStream.set(stream, n);
    this.metrics.telemetryBuffered.set({ stream }, n);
  }

  /** @internal Sends batches while the in-flight window has room; with `all`, partial batches too. */
  pump(all = false): void {
    if (this.stopped) return;
    const maxBytes = this.maxMessageBytes();
    let progressed = true;
    while (progressed && this.inFlight < this.limits.maxInFlightBatches) {
      progressed = false;
      for (const b of this.batchers.values()) {
        if (this.inFlight >= this.limits.maxInFlightBatches) break;
        const batch = b.take(!all, maxBytes);
        if (!batch) continue;
        progressed = true;
        this.inFlight++;
        const out: Outgoing = {
          stream: b.stream,
          subject: b.subject,
          ...batch,
          msgId: `${this.instanceId}-${this.nextMessage++}`,
          attempts: 0,
          sentInConnection: this.reconnects,
        };
        this.unacked.add(out);
        this.send(out);
      }
    }
    if (this.inFlight === 0 && this.buffered() === 0) this.wakeIdle();
  }

  private send(out: Outgoing): void {
    out.attempts++;
    out.sentInConnection = this.reconnects;
    let published: Promise<void>;
    try {
      published = this.transport.publish(out.subject, out.data, out.msgId);
    } catch (err) {
      published = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    published.then(
      () => this.acknowledged(out),
      () => this.retryLater(out),
    );
  }

  private acknowledged(out: Outgoing): void {
    if (this.stopped) return;
    this.metrics.telemetryPublished.inc({ stream: out.stream }, out.items);
    this.metrics.telemetryPublishedBytes.inc({ stream: out.stream }, out.data.length);
    this.inFlight--;
    this.unacked.delete(out);
    this.pump(this.idleWaiters.length > 0);
    if (this.inFlight === 0) this.wakeIdle();
  }

  /** The batch keeps its window slot and its message id: the stream de-duplicates a retry of a stored message. */
  private retryLater(out: Outgoing): void {
    if (this.stopped) return;
    this.metrics.telemetryPublishRetries.inc({ stream: out.stream });
    if (out.sentInConnection !== this.reconnects) {
      // Sent on the connection before the latest reconnect (its acknowledgement timed out after NATS was back):
      // retry at once on the new one, with the backoff started afresh.
      out.attempts = 0;
      this.send(out);
      return;
    }
    const timer = setTimeout(
      () => {
        this.retryTimers.delete(timer);
        if (!this.stopped) this.send(out);
      },
      retryDelayMs(this.limits, out.attempts),
    );
    timer.unref();
    this.retryTimers.set(timer, out);
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }
}
