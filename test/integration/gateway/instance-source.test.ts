/**
 * The gateway's instance source on the harness's real nats-server with JetStream: load reports published to the load
 * stream as the agents publish them (JetStream publish, acknowledged). A source started after some reports replays
 * those within its look-back window at once (with their age on the stream, so they go stale on time), skips older
 * ones, and then delivers new reports live.
 */
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStreams, streamDefinition, streamName } from "../../../common/src/telemetry/streams.js";
import { encodeJson, Schema, Stream, subjectFor, type LoadMessage } from "../../../common/src/telemetry/subjects.js";
import { JetStreamLoadInstanceSource } from "../../../gateway/src/instances/nats-source.js";
import { createLogger } from "../../../gateway/src/logger.js";
import { GatewayMetrics } from "../../../gateway/src/metrics.js";
import type { InstanceReport } from "../../../gateway/src/instances/source.js";
import { getTestCluster, waitFor } from "../../harness/context.js";

const run = Date.now().toString(36);
const node = `source-node-${run}`;
let nats: NatsConnection;

beforeAll(async () => {
  nats = await connect({ servers: getTestCluster().natsUrl });
  await ensureStreams(await nats.jetstreamManager(), [streamDefinition(Stream.load)]);
});

afterAll(async () => {
  await nats?.close();
});

/** Publishes one instance's report to the load stream; resolves with the time JetStream stored it. */
async function publish(workerId: string): Promise<number> {
  const now = Date.now();
  const message = {
    schema: Schema.load,
    node,
    sentUnixMs: now,
    reports: [
      {
        workerId,
        podNamespace: "src",
        podName: workerId,
        unixMs: now,
        queueLength: 0,
        runningRequests: 0,
        kvCacheUsedFraction: 0,
        kvCacheUsedBytes: 0,
        ttftMs: 0,
        tpotMs: 0,
        tokensPerSecond: 0,
        engineUrl: `http://127.0.0.1:9/instances/${workerId}`,
        model: `source-model-${run}`,
        role: "colocated",
        servingDeployment: "src/sd",
        kvBlocksTotal: 100,
        kvBlocksUsed: 0,
        blockSizeTokens: 16,
      },
    ],
  } satisfies Omit<LoadMessage, "reports"> & { reports: object[] };
  const ack = await nats.jetstream().publish(subjectFor(Stream.load, node), encodeJson(message));
  const stored = await (await nats.jetstreamManager()).streams.getMessage(streamName(Stream.load), { seq: ack.seq });
  return stored.time.getTime();
}

describe("JetStreamLoadInstanceSource", () => {
  it("replays the reports of the look-back window at once, skips older ones, then delivers new ones live", async () => {
    const oldStoredMs = await publish(`old-${run}`);
    // Wait (bounded polling) until the clock has moved on, so the two reports straddle the start time with ~1 s on
    // either side: the source takes its own "now" when it starts, later than the look-back computed below, and on a
    // loaded machine that can be tens of milliseconds later.
    await waitFor(() => Date.now() > oldStoredMs + 2_000, {
      description: "the clock 2 s past the first report",
      timeoutMs: 5_000,
      intervalMs: 20,
    });
    const recentStoredMs = await publish(`recent-${run}`);
    const startMs = (oldStoredMs + recentStoredMs) / 2;

    // And past the second, so a replayed report's age on the stream is clearly more than zero.
    await waitFor(() => Date.now() > recentStoredMs + 20, {
      description: "the clock past the second report",
      timeoutMs: 5_000,
      intervalMs: 5,
    });
    const received: { report: InstanceReport; ageMs: number; atMs: number }[] = [];
    const metrics = new GatewayMetrics();
    const startedMs = Date.now();
    const source = await JetStreamLoadInstanceSource.start(
      nats,
      { logger: createLogger({ level: "silent", name: "test" }), metrics },
      { lookbackMs: Date.now() - startMs },
    );
    source.subscribe((report, ageMs) => received.push({ report, ageMs, atMs: Date.now() }));
    try {
      const ours = () =>
        received.filter((r) => r.report.podNamespace === "src" && r.report.model === `source-model-${run}`);
      const replayed = await waitFor(() => ours().find((r) => r.report.id === `recent-${run}`), {
        description: "the recent report replayed",
        timeoutMs: 10_000,
      });
      // Its age is its time on the stream, not zero: the view counts it as received when it was stored.
      // (Handled after startedMs; stored within the millisecond recentStoredMs names; delivered by atMs.)
      expect(replayed.ageMs).toBeGreaterThan(startedMs - recentStoredMs - 1);
      expect(replayed.ageMs).toBeLessThanOrEqual(replayed.atMs - recentStoredMs);
      expect(replayed.report).toMatchObject({
        role: "colocated",
        servingDeployment: "src/sd",
        load: { kvBlocksTotal: 100 },
      });

      await publish(`live-${run}`);
      const live = await waitFor(() => ours().find((r) => r.report.id === `live-${run}`), {
        description: "a report published after the start, delivered",
        timeoutMs: 10_000,
      });
      expect(live.ageMs).toBeLessThan(live.atMs - startedMs + 1);
      // Delivery is in stream order, so once the live report is here the replay is complete: the old report never came.
      expect(ours().map((r) => r.report.id)).toEqual([`recent-${run}`, `live-${run}`]);
      const accepted =
        (await metrics.loadReportsTotal.get()).values.find((v) => v.labels.result === "accepted")?.value ?? 0;
      expect(accepted).toBeGreaterThanOrEqual(2);
    } finally {
      await source.close();
    }
  });
});
