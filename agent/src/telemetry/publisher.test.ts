import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { AgentMetrics } from "../metrics.js";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import { TelemetryPublisher, type TelemetryTransport } from "./publisher.js";
import { decodeCollectives, decodeWorkers, subjectFor } from "../../../common/src/telemetry/subjects.js";

/** A transport whose flushes complete only when the test says so: a NATS server that stopped answering. */
class StalledTransport implements TelemetryTransport {
  readonly published: { subject: string; data: Uint8Array }[] = [];
  private pending: (() => void)[] = [];
  publish(subject: string, data: Uint8Array): void {
    this.published.push({ subject, data });
  }
  flush(): Promise<void> {
    return new Promise((resolve) => this.pending.push(resolve));
  }
  get unacknowledged(): number {
    return this.pending.length;
  }
  acknowledgeAll(): void {
    const p = this.pending;
    this.pending = [];
    p.forEach((r) => r());
  }
}

const record = (sequence: number): CollectiveRecord => ({
  communicator: "c0ffee", rank: 1, nRanks: 4, collective: "AllReduce", sequence, bytes: 1 << 20,
  startUnixUs: 1_700_000_000_000_000 + sequence, endUnixUs: 1_700_000_000_000_100 + sequence,
  peers: [{ peerRank: 2, bytes: 1 << 19, startUnixUs: 1_700_000_000_000_000 + sequence, endUnixUs: 1_700_000_000_000_050 + sequence }],
});
const records = (from: number, n: number): CollectiveRecord[] => Array.from({ length: n }, (_, i) => record(from + i));

async function dropped(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric("gpufleet_agent_telemetry_dropped_total")!.get();
  return metric.values.reduce((s, v) => s + v.value, 0);
}

describe("TelemetryPublisher", () => {
  it("batches records into messages of at most maxBatchItems, in order, and round-trips them", async () => {
    const transport = new StalledTransport();
    const publisher = new TelemetryPublisher(transport, new AgentMetrics(new Registry()), { maxBatchItems: 100, maxBufferedItems: 1000, maxInFlightBatches: 4, flushIntervalMs: 1000 }, () => 42);
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
    const limits = { maxBatchItems: 10, maxBufferedItems: 50, maxInFlightBatches: 2, flushIntervalMs: 1000 };
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
    const publisher = new TelemetryPublisher(transport, new AgentMetrics(new Registry()), { maxBatchItems: 100, maxBufferedItems: 100, maxInFlightBatches: 8, flushIntervalMs: 1000 }, () => 7);
    for (const event of ["registered", "missing"] as const) {
      publisher.workerEvent({ node: "n", event, workerId: "w", podNamespace: "ns", podName: "p", lastHeartbeatUnixMs: 1 });
    }
    const draining = publisher.drain();
    transport.acknowledgeAll();
    await draining;
    expect(transport.published.map((p) => decodeWorkers(p.subject, p.data).event)).toEqual(["registered", "missing"]);
  });
});
