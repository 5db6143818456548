import { Registry } from "prom-client";
import { describe, expect, it, vi } from "vitest";
import { AgentMetrics } from "../metrics.js";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import {
  DEFAULT_PUBLISHER_LIMITS,
  retryDelayMs,
  TelemetryPublisher,
  type PublisherLimits,
  type TelemetryTransport,
} from "./publisher.js";
import {
  decodeCollectives,
  decodeWorkerEvents,
  decodeWorkers,
  subjectFor,
} from "../../../common/src/telemetry/subjects.js";

/** A stream whose acknowledgements come only when the test says so: a NATS server that stopped answering. */
class StalledTransport implements TelemetryTransport {
  readonly published: { subject: string; data: Uint8Array; msgId: string }[] = [];
  private pending: { resolve: () => void; reject: (err: Error) => void }[] = [];
  publish(subject: string, data: Uint8Array, msgId: string): Promise<void> {
    this.published.push({ subject, data, msgId });
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  get unacknowledged(): number {
    return this.pending.length;
  }
  acknowledgeAll(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach((r) => r.resolve());
  }
  failAll(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach((r) => r.reject(new Error("TIMEOUT")));
  }
}

const tick = () => new Promise((r) => setImmediate(r));
const limitsOf = (l: Partial<PublisherLimits>): PublisherLimits => ({
  ...DEFAULT_PUBLISHER_LIMITS,
  flushIntervalMs: 1000,
  retryBackoffMs: 1,
  maxRetryBackoffMs: 4,
  ...l,
});

const record = (sequence: number): CollectiveRecord => ({
  communicator: "c0ffee",
  rank: 1,
  nRanks: 4,
  collective: "AllReduce",
  sequence,
  bytes: 1 << 20,
  startUnixUs: 1_700_000_000_000_000 + sequence,
  endUnixUs: 1_700_000_000_000_100 + sequence,
  peers: [
    {
      peerRank: 2,
      bytes: 1 << 19,
      startUnixUs: 1_700_000_000_000_000 + sequence,
      endUnixUs: 1_700_000_000_000_050 + sequence,
    },
  ],
});
const records = (from: number, n: number): CollectiveRecord[] => Array.from({ length: n }, (_, i) => record(from + i));

async function dropped(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric("gpufleet_agent_telemetry_dropped_total")!.get();
  return metric.values.reduce((s, v) => s + v.value, 0);
}

describe("TelemetryPublisher", () => {
  it("splits a batch larger than a message may be in bytes, and drops (counted) an item too large alone", async () => {
    const transport = Object.assign(new StalledTransport(), { maxPayloadBytes: 1024 + 2000 });
    const registry = new Registry();
    const publisher = new TelemetryPublisher(
      transport,
      new AgentMetrics(registry),
      limitsOf({ maxBatchItems: 100, maxBufferedItems: 1000, maxInFlightBatches: 64 }),
      () => 42,
    );
    const huge = {
      ...record(1000),
      peers: Array.from({ length: 400 }, () => ({ peerRank: 2, bytes: 1, startUnixUs: 1, endUnixUs: 2 })),
    };
    expect(publisher.collectives("n", [...records(0, 50), huge, ...records(50, 50)])).toBe(101);
    const draining = publisher.drain();
    for (let i = 0; i < 20 && transport.unacknowledged + publisher.buffered() > 0; i++) {
      transport.acknowledgeAll();
      await tick();
    }
    await draining;
    expect(transport.published.every((p) => p.data.length <= 2000)).toBe(true);
    const decoded = transport.published.map((p) => decodeCollectives(p.subject, p.data));
    expect(decoded.length).toBeGreaterThan(1);
    expect(decoded.flatMap((d) => d.records.map((r) => r.sequence))).toEqual([...Array(100).keys()]);
    expect(decoded.reduce((s, d) => s + d.droppedSincePrevious, 0)).toBe(1);
    const metric = await registry.getSingleMetric("gpufleet_agent_telemetry_dropped_total")!.get();
    expect(metric.values.find((v) => v.labels.reason === "too_large")?.value).toBe(1);
  });

  it("batches records into messages of at most maxBatchItems, in order, and round-trips them", async () => {
    const transport = new StalledTransport();
    const publisher = new TelemetryPublisher(
      transport,
      new AgentMetrics(new Registry()),
      limitsOf({ maxBatchItems: 100, maxBufferedItems: 1000, maxInFlightBatches: 4 }),
      () => 42,
    );
    expect(publisher.collectives("node-a", records(0, 250))).toBe(250);
    expect(transport.published).toHaveLength(2); // two full batches go at once, the partial one waits
    const draining = publisher.drain();
    transport.acknowledgeAll();
    await new Promise((r) => setImmediate(r));
    transport.acknowledgeAll();
    await draining;
    expect(transport.published.map((p) => p.subject)).toEqual(Array(3).fill(subjectFor("collectives", "node-a")));
    const decoded = transport.published.map((p) => decodeCollectives(p.subject, p.data));
    expect(decoded.map((d) => d.records.length)).toEqual([100, 100, 50]);
    expect(decoded.flatMap((d) => d.records.map((r) => r.sequence))).toEqual([...Array(250).keys()]);
    expect(decoded[0]!.records[7]).toEqual(record(7));
    expect(decoded[0]).toMatchObject({ node: "node-a", sentUnixMs: 42, droppedSincePrevious: 0 });
  });

  it("keeps memory bounded while NATS does not acknowledge, and counts what it drops", async () => {
    const transport = new StalledTransport();
    const registry = new Registry();
    const limits = limitsOf({ maxBatchItems: 10, maxBufferedItems: 50, maxInFlightBatches: 2 });
    const publisher = new TelemetryPublisher(transport, new AgentMetrics(registry), limits);
    let accepted = 0;
    for (let i = 0; i < 100; i++) accepted += publisher.collectives("n", records(i * 10, 10));
    expect(transport.unacknowledged).toBe(2); // the window
    expect(transport.published).toHaveLength(2);
    expect(publisher.buffered()).toBe(50); // the bound
    expect(accepted).toBe(20 + 50);
    expect(await dropped(registry)).toBe(1000 - 70);
    // NATS catches up: the queue drains and the next message says how many were lost before it.
    const draining = publisher.drain();
    for (let i = 0; i < 10 && transport.unacknowledged > 0; i++) {
      transport.acknowledgeAll();
      await new Promise((r) => setImmediate(r));
    }
    await draining;
    const messages = transport.published.map((p) => decodeCollectives(p.subject, p.data));
    expect(messages.reduce((s, m) => s + m.records.length, 0)).toBe(70);
    expect(messages.reduce((s, m) => s + m.droppedSincePrevious, 0)).toBe(930);
  });

  it("sends worker events one per message", async () => {
    const transport = new StalledTransport();
    const publisher = new TelemetryPublisher(
      transport,
      new AgentMetrics(new Registry()),
      limitsOf({ maxBatchItems: 100, maxBufferedItems: 100, maxInFlightBatches: 8 }),
      () => 7,
    );
    for (const event of ["registered", "missing"] as const) {
      publisher.workerEvent({
        node: "n",
        event,
        workerId: "w",
        podNamespace: "ns",
        podName: "p",
        lastHeartbeatUnixMs: 1,
      });
    }
    const draining = publisher.drain();
    transport.acknowledgeAll();
    await draining;
    expect(transport.published.map((p) => decodeWorkers(p.subject, p.data).event)).toEqual(["registered", "missing"]);
  });

  it("retries a failed publish with the same message id and loses none of its items", async () => {
    const transport = new StalledTransport();
    const registry = new Registry();
    const publisher = new TelemetryPublisher(
      transport,
      new AgentMetrics(registry),
      limitsOf({ maxBatchItems: 10, maxBufferedItems: 100, maxInFlightBatches: 2 }),
    );
    publisher.collectives("n", records(0, 40));
    expect(transport.published.map((p) => p.msgId)).toHaveLength(2);
    const firstIds = transport.published.map((p) => p.msgId);
    // Three outages in a row: each time the same two messages come back, under the same ids.
    for (let attempt = 0; attempt < 3; attempt++) {
      transport.failAll();
      await vi.waitFor(() => expect(transport.unacknowledged).toBe(2));
    }
    expect(transport.published.slice(-2).map((p) => p.msgId)).toEqual(firstIds);
    expect(publisher.buffered()).toBe(20); // the rest waits for the window
    const draining = publisher.drain();
    for (let i = 0; i < 10 && transport.unacknowledged > 0; i++) {
      transport.acknowledgeAll();
      await tick();
    }
    await draining;
    const acknowledged = new Map(transport.published.map((p) => [p.msgId, decodeCollectives(p.subject, p.data)]));
    expect([...acknowledged.values()].flatMap((d) => d.records.map((r) => r.sequence)).sort((a, b) => a - b)).toEqual([
      ...Array(40).keys(),
    ]);
    expect(await dropped(registry)).toBe(0);
    const retries = await registry.getSingleMetric("gpufleet_agent_telemetry_publish_retries_total")!.get();
    expect(retries.values.reduce((s, v) => s + v.value, 0)).toBe(6);
  });

  it("sends what waits out its backoff at once when the transport says the connection is back", async () => {
    let reconnected: () => void = () => {};
    const transport = Object.assign(new StalledTransport(), {
      onReconnect: (listener: () => void) => (reconnected = listener),
    });
    const publisher = new TelemetryPublisher(
      transport,
      new AgentMetrics(new Registry()),
      // A backoff far longer than the test: only the reconnect can send the batch again.
      limitsOf({ maxBatchItems: 10, maxInFlightBatches: 1, retryBackoffMs: 600_000, maxRetryBackoffMs: 600_000 }),
    );
    publisher.collectives("n", records(0, 10));
    const [first] = transport.published;
    transport.failAll();
    await tick();
    expect(transport.unacknowledged).toBe(0); // waiting out the backoff
    reconnected();
    expect(transport.published.map((p) => p.msgId)).toEqual([first!.msgId, first!.msgId]);
    // An attempt in flight across the next reconnect that then fails is retried at once, not after its backoff.
    reconnected();
    transport.failAll();
    await tick();
    expect(transport.published).toHaveLength(3);
    transport.acknowledgeAll();
    await publisher.drain();
    expect(publisher.unacknowledged()).toBe(0);
    await publisher.stop(10);
  });

  it("drops at shutdown, counted, only what NATS never acknowledged", async () => {
    const transport = new StalledTransport();
    const registry = new Registry();
    const publisher = new TelemetryPublisher(
      transport,
      new AgentMetrics(registry),
      limitsOf({ maxBatchItems: 10, maxBufferedItems: 100, maxInFlightBatches: 1 }),
    );
    publisher.collectives("n", records(0, 25));
    expect(await publisher.stop(20)).toBe(25);
    expect(await dropped(registry)).toBe(25);
  });

  it("publishes a checkpoint report as one worker-events message", async () => {
    const transport = new StalledTransport();
    const publisher = new TelemetryPublisher(transport, new AgentMetrics(new Registry()), limitsOf({}), () => 9);
    const event = {
      kind: "checkpoint" as const,
      workerId: "w",
      podNamespace: "ns",
      podName: "job-0",
      rank: 0,
      step: 1200,
      unixMs: 5,
      path: "/ckpt/1200",
    };
    expect(publisher.checkpoint("node.a", event)).toBe(1);
    const draining = publisher.drain();
    await tick();
    transport.acknowledgeAll();
    await draining;
    expect(transport.published.map((p) => [p.subject, decodeWorkerEvents(p.subject, p.data)])).toEqual([
      [
        subjectFor("worker-events", "node.a"),
        { schema: "gpufleet.worker-events/v1", node: "node.a", sentUnixMs: 9, event },
      ],
    ]);
  });

  it.each([
    [1, 1],
    [2, 2],
    [3, 4],
    [10, 4],
  ])("retry %i waits %i ms (exponential, capped)", (attempt, ms) => {
    expect(retryDelayMs({ retryBackoffMs: 1, maxRetryBackoffMs: 4 }, attempt)).toBe(ms);
  });
});
