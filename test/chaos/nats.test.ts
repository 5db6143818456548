/**
 * NATS chaos (bench/reliability/nats.ts) on a cluster of this file's own: nats-server is stopped for 30 s (the
 * issue's outage, as in the bench) and started again on the same port and JetStream store, under a TrainingJob whose
 * slow-rank fault is injected the moment before, and a serving load through the gateway. Its own cluster, since the
 * run's shared NATS must not go away under other files.
 */
import { describe, expect, it } from "vitest";
import { natsOutage } from "../../bench/reliability/nats.js";
import { ownChaosCluster } from "./context.js";

const chaos = ownChaosCluster({ withNats: true, fabrics: true });

describe("NATS stopped under a training fault and a serving load", () => {
  it("detects and isolates after recovery, loses and duplicates no record, and keeps serving from the last view", async () => {
    const row = await natsOutage(chaos.ctx(), { downMs: 30_000, timeoutMs: 120_000 });
    console.log(JSON.stringify(row));
    // The evidence waited in the agent while NATS was down, and all of it arrived once.
    expect(row.counts?.recordsHeldAtRestart).toBeGreaterThan(0);
    expect(row.counts).toMatchObject({ recordsDroppedAtAgent: 0, recordsDuplicate: 0 });
    expect(row.counts?.recordsReceived).toBe(row.counts?.recordsPublished);
    // Requests were sent during the outage, and none failed.
    expect(row.counts?.requestsDuringOutage).toBeGreaterThan(0);
    expect(row.counts).toMatchObject({ requestsFailed: 0 });
    expect(row).toMatchObject({ lost: 0, duplicated: 0, passed: true });
    expect(row.timingsMs.natsBackToIsolatedMs).toBeGreaterThanOrEqual(0);
  }, 600_000);
});
