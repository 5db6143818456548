/**
 * Telemetry benchmark: collective records per second one agent ingests (gRPC ReportCollectives over its Unix
 * socket -> validation -> metrics -> bounded batched publisher -> real nats-server), and the operator side's ingest
 * rate (NATS subscription -> schema-checked decode). The baseline in the same run publishes one JSON object per
 * record (JSON.stringify per record, one NATS message each); results are reported as ratios against it.
 * The load generator (the worker's gRPC client) runs in the same process, so agent numbers include its cost.
 */
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect, type NatsConnection } from "nats";
import { Registry } from "prom-client";
import { AgentCore } from "../agent/src/agent.js";
import { WorkerClient } from "../agent/src/grpc/client.js";
import { factsToLabels } from "../agent/src/discovery/facts.js";
import { AgentMetrics } from "../agent/src/metrics.js";
import { JetStreamTransport } from "../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../agent/src/telemetry/publisher.js";
import { simulatedNodeFacts } from "../agent/src/simulation/model.js";
import type { CollectiveRecord } from "../common/src/telemetry/records.js";
import { decodeCollectives, encodeCollectives, subjectFor, subscriptionFor } from "../common/src/telemetry/subjects.js";
import { startNatsServer } from "../test/integration/agent/nats-server.js";

const NODE = "bench-node";
const RECORDS_PER_CALL = 1000;
const DURATION_MS = Number(process.env.BENCH_TELEMETRY_MS ?? 5000);

function record(i: number): CollectiveRecord {
  const t = 1_700_000_000_000_000 + i * 1000;
  return { communicator: "9f1c2a7d", rank: i % 8, nRanks: 8, collective: "AllReduce", sequence: i, bytes: 268_435_456, startUnixUs: t, endUnixUs: t + 900, peers: [{ peerRank: (i + 1) % 8, bytes: 469_762_048, startUnixUs: t + 10, endUnixUs: t + 880 }] };
}

async function agentIngest(natsUrl: string): Promise<{ recordsPerSec: number; published: number; dropped: number }> {
  const nc = await connect({ servers: natsUrl });
  const dir = mkdtempSync(join(tmpdir(), "gpufleet-bench-"));
  const facts = simulatedNodeFacts({ metadata: { name: NODE, annotations: { "kwok.x-k8s.io/node": "fake" }, labels: { "gpufleet.io/leaf": "l", "gpufleet.io/island": "i" } } });
  const registry = new Registry();
  const agent = new AgentCore(
    { workerSocketPath: join(dir, "agent.sock"), operatorAddress: "127.0.0.1:0", tls: undefined, heartbeatIntervalMs: 60_000, missedHeartbeatsLimit: 3, publisherLimits: { ...DEFAULT_PUBLISHER_LIMITS, maxBatchItems: 2000, maxBufferedItems: 100_000, maxInFlightBatches: 16, flushIntervalMs: 100 } },
    await JetStreamTransport.connect(nc),
    { nodeNames: () => [NODE], facts: (n) => (n === NODE ? facts : undefined), labels: () => factsToLabels(facts) },
    { run: async () => ({ passed: true, summary: "", details: {} }) },
    new AgentMetrics(registry),
    () => {},
  );
  await agent.start();
  const worker = new WorkerClient(`unix:${join(dir, "agent.sock")}`, 10_000);
  await worker.register({ workerId: "w0", podNamespace: "bench", podName: "train-0", podUid: "u", nodeName: NODE, kind: "training", rank: 0, worldSize: 8, simulated: true });
  const batch = Array.from({ length: RECORDS_PER_CALL }, (_, i) => record(i));
  let sent = 0;
  const started = performance.now();
  // Four calls in flight, as a worker with a few NCCL communicators would have.
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (performance.now() - started < DURATION_MS) {
      const { accepted } = await worker.reportCollectives({ workerId: "w0", records: batch });
      sent += accepted;
    }
  }));
  await agent.publisher.drain();
  const elapsedS = (performance.now() - started) / 1000;
  const sum = async (name: string): Promise<number> => (await registry.getSingleMetric(name)!.get()).values.filter((v) => v.labels.stream === "collectives").reduce((s, v) => s + v.value, 0);
  const published = await sum("gpufleet_agent_telemetry_published_total");
  const dropped = await sum("gpufleet_agent_telemetry_dropped_total");
  worker.close();
  await agent.stop();
  await nc.close();
  rmSync(dir, { recursive: true, force: true });
  return { recordsPerSec: published / elapsedS, published, dropped: dropped + (sent - published) };
}

/** Baseline of the agent's publish step: one JSON message per record, same NATS flush window. */
async function publishRate(nc: NatsConnection, batched: boolean, total: number): Promise<number> {
  const records = Array.from({ length: 2000 }, (_, i) => record(i));
  const subject = subjectFor("collectives", NODE);
  const enc = new TextEncoder();
  const started = performance.now();
  for (let done = 0; done < total; done += records.length) {
    if (batched) nc.publish(subject, encodeCollectives(NODE, records, Date.now(), 0));
    else for (const r of records) nc.publish(subject, enc.encode(JSON.stringify({ schema: "gpufleet.collective/v0", node: NODE, ...r })));
    await nc.flush();
  }
  return total / ((performance.now() - started) / 1000);
}

async function operatorIngest(natsUrl: string, batched: boolean, total: number): Promise<number> {
  const pub = await connect({ servers: natsUrl });
  const sub = await connect({ servers: natsUrl });
  const dec = new TextDecoder();
  let received = 0;
  let first = 0;
  const subscription = sub.subscribe(subscriptionFor("collectives"));
  const done = (async () => {
    for await (const m of subscription) {
      if (first === 0) first = performance.now();
      if (batched) received += decodeCollectives(m.subject, m.data).records.length;
      else {
        const r = JSON.parse(dec.decode(m.data)) as { sequence?: unknown };
        if (typeof r.sequence === "number") received++;
      }
      if (received >= total) break;
    }
  })();
  await sub.flush();
  const records = Array.from({ length: 2000 }, (_, i) => record(i));
  const subject = subjectFor("collectives", NODE);
  const enc = new TextEncoder();
  // Pre-encode so the measurement is the subscriber's work, not the publisher's.
  const messages = batched ? [encodeCollectives(NODE, records, Date.now(), 0)] : records.map((r) => enc.encode(JSON.stringify({ schema: "gpufleet.collective/v0", node: NODE, ...r })));
  const perRound = batched ? records.length : 1;
  for (let sent = 0; sent < total; ) {
    for (const m of messages) {
      pub.publish(subject, m);
      sent += perRound;
      if (sent >= total) break;
    }
    await pub.flush();
  }
  await done;
  const rate = received / ((performance.now() - first) / 1000);
  await pub.close();
  await sub.close();
  return rate;
}

export async function run(): Promise<void> {
  const nats = await startNatsServer();
  try {
    const agent = await agentIngest(nats.url);
    const nc = await connect({ servers: nats.url });
    const publishBatched = await publishRate(nc, true, 400_000);
    const publishBaseline = await publishRate(nc, false, 100_000);
    await nc.close();
    const operatorBatched = await operatorIngest(nats.url, true, 400_000);
    const operatorBaseline = await operatorIngest(nats.url, false, 100_000);
    const result = {
      benchmark: "telemetry",
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "", node: process.version },
      durationMs: DURATION_MS,
      recordsPerCall: RECORDS_PER_CALL,
      agentRecordsPerSec: Math.round(agent.recordsPerSec),
      agentRecordsPublished: agent.published,
      agentRecordsDropped: agent.dropped,
      operatorRecordsPerSec: Math.round(operatorBatched),
      targetAgentRecordsPerSec: 100_000,
      meetsTarget: agent.recordsPerSec >= 100_000,
      publishOnly: { batchedRecordsPerSec: Math.round(publishBatched), baselineJsonPerRecordPerSec: Math.round(publishBaseline), ratio: +(publishBatched / publishBaseline).toFixed(2) },
      operatorIngest: { batchedRecordsPerSec: Math.round(operatorBatched), baselineJsonPerRecordPerSec: Math.round(operatorBaseline), ratio: +(operatorBatched / operatorBaseline).toFixed(2) },
      baseline: "JSON.stringify of each record, one NATS message per record (same flush window, same server)",
    };
    const out = join(dirname(fileURLToPath(import.meta.url)), "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "telemetry.json"), JSON.stringify(result, null, 2) + "\n");
    writeFileSync(join(out, "telemetry.md"), [
      "# Telemetry benchmark",
      "",
      `${result.date}, ${result.machine.cpus} CPUs (${result.machine.cpuModel}), Node ${result.machine.node}, real nats-server on loopback.`,
      "",
      "| Measure | Records/s | Baseline (JSON per record) | Ratio |",
      "| --- | ---: | ---: | ---: |",
      `| Agent: gRPC ingest -> validate -> metrics -> batched NATS publish (client in same process) | ${result.agentRecordsPerSec.toLocaleString("en")} | | |`,
      `| Agent publish step only | ${result.publishOnly.batchedRecordsPerSec.toLocaleString("en")} | ${result.publishOnly.baselineJsonPerRecordPerSec.toLocaleString("en")} | ${result.publishOnly.ratio}x |`,
      `| Operator: NATS -> schema-checked decode | ${result.operatorRecordsPerSec.toLocaleString("en")} | ${result.operatorIngest.baselineJsonPerRecordPerSec.toLocaleString("en")} | ${result.operatorIngest.ratio}x |`,
      "",
      `Target >= 100,000 records/s per agent: ${result.meetsTarget ? "met" : "NOT met"}. Records dropped by the bounded buffers: ${result.agentRecordsDropped}.`,
      "",
    ].join("\n"));
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await nats.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  run().catch((err: unknown) => { console.error(err); process.exitCode = 1; });
}
