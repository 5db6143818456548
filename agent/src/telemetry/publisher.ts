/**
 * Batching, bounded publishing to NATS.
 *
 * Each (stream, node) has a batcher: items queue up to `maxBufferedItems`, go out in messages of at most
 * `maxBatchItems`, on size or on the flush timer. A nats.js publish() only copies into the client's outbound
 * buffer, which grows without bound when the server or network is slow; so after each message we ask the server for
 * a round trip (flush) and keep at most `maxInFlightBatches` messages unacknowledged. When that window is full items
 * stay in our queue; when the queue is full new items are dropped and counted (metric + droppedSincePrevious in the
 * next collectives message). Memory is therefore bounded by maxBufferedItems + maxInFlightBatches x maxBatchItems.
 */
import type { AgentMetrics } from "../metrics.js";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import { encodeCollectives, encodeJson, Schema, Stream, subjectFor, type LoadEntry, type LoadMessage, type RdmaMessage, type WorkersMessage } from "../../../common/src/telemetry/subjects.js";

/** The part of a NATS connection the publisher needs (nats.js NatsConnection satisfies it). */
export interface TelemetryTransport {
  publish(subject: string, data: Uint8Array): void;
  /** Resolves when the server has processed everything published before it. */
  flush(): Promise<void>;
}

export interface PublisherLimits {
  maxBatchItems: number;
  maxBufferedItems: number;
  maxInFlightBatches: number;
  flushIntervalMs: number;
}

export const DEFAULT_PUBLISHER_LIMITS: PublisherLimits = { maxBatchItems: 1000, maxBufferedItems: 50_000, maxInFlightBatches: 8, flushIntervalMs: 250 };

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

  /** Sends at most one batch; false when there was nothing to send. */
  sendOne(fullOnly: boolean): boolean {
    if (this.queue.length === 0 || (fullOnly && this.queue.length < this.maxBatchItems)) return false;
    const batch = this.queue.splice(0, this.maxBatchItems);
    this.owner.adjustBuffered(this.stream, -batch.length);
    const data = this.encode(batch, this.droppedSinceSent);
    this.droppedSinceSent = 0;
    this.owner.send(this, data, batch.length);
    return true;
  }
}

export class TelemetryPublisher {
  private readonly batchers = new Map<string, Batcher<unknown>>();
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly bufferedByStream = new Map<Stream, number>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly transport: TelemetryTransport,
    readonly metrics: AgentMetrics,
    readonly limits: PublisherLimits = DEFAULT_PUBLISHER_LIMITS,
    private readonly nowMs: () => number = Date.now,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.pump(true), this.limits.flushIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.drain();
  }

  /** Sends everything queued (as the window allows) and resolves when all of it is acknowledged. */
  async drain(): Promise<void> {
    for (;;) {
      this.pump(true);
      if (this.inFlight === 0 && this.buffered() === 0) return;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  buffered(): number {
    let n = 0;
    for (const b of this.batchers.values()) n += b.buffered;
    return n;
  }

  collectives(node: string, records: readonly CollectiveRecord[]): number {
    return this.batcher<CollectiveRecord>(Stream.collectives, node, (items, dropped) => encodeCollectives(node, items, this.nowMs(), dropped)).add(records);
  }

  load(node: string, reports: readonly LoadEntry[]): number {
    return this.batcher<LoadEntry>(Stream.load, node, (items) => {
      const message: LoadMessage = { schema: Schema.load, node, sentUnixMs: this.nowMs(), reports: [...items] };
      return encodeJson(message);
    }).add(reports);
  }

  rdma(node: string, ports: RdmaMessage["ports"]): number {
    return this.batcher<RdmaMessage["ports"][number]>(Stream.rdma, node, (items) => {
      const message: RdmaMessage = { schema: Schema.rdma, node, sentUnixMs: this.nowMs(), ports: [...items] };
      return encodeJson(message);
    }).add(ports);
  }

  /** Worker events are rare and matter individually: one message each, still through the bounded window. */
  workerEvent(event: Omit<WorkersMessage, "schema" | "sentUnixMs">): number {
    return this.batcher<WorkersMessage>(Stream.workers, event.node, (items) => encodeJson(items[0]!), 1).add([{ ...event, schema: Schema.workers, sentUnixMs: this.nowMs() }]);
  }

  private batcher<T>(stream: Stream, node: string, encode: Encode<T>, maxBatchItems?: number): Batcher<T> {
    const key = `${stream}\u0000${node}`;
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
    let progressed = true;
    while (progressed && this.inFlight < this.limits.maxInFlightBatches) {
      progressed = false;
      for (const b of this.batchers.values()) {
        if (this.inFlight >= this.limits.maxInFlightBatches) break;
        if (b.sendOne(!all)) progressed = true;
      }
    }
    if (this.inFlight === 0 && this.buffered() === 0) this.wakeIdle();
  }

  /** @internal */
  send(b: { readonly stream: Stream; readonly subject: string }, data: Uint8Array, items: number): void {
    try {
      this.transport.publish(b.subject, data);
    } catch {
      this.metrics.telemetryDropped.inc({ stream: b.stream, reason: "publish_error" }, items);
      return;
    }
    this.metrics.telemetryPublished.inc({ stream: b.stream }, items);
    this.metrics.telemetryPublishedBytes.inc({ stream: b.stream }, data.length);
    this.inFlight++;
    this.transport.flush().then(
      () => this.settle(),
      () => this.settle(),
    );
  }

  private settle(): void {
    this.inFlight--;
    this.pump(this.idleWaiters.length > 0);
    if (this.inFlight === 0) this.wakeIdle();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }
}
