/**
 * Telemetry benchmark: collective records per second one agent ingests (gRPC ReportCollectives over its Unix
 * socket -> validation -> metrics -> bounded batched publisher -> JetStream, counted when the stream acknowledged),
 * the operator side's ingest rate (NATS subscription -> schema-checked decode), and end to end: from the worker's
 * gRPC call through the agent and JetStream (file store) into the operator's read model (durable pull consumer ->
 * decode -> de-duplicating apply -> ack), counted when the read model accepted the record. The baseline in the same run
 * publishes one JSON object per
 * record (JSON.stringify per record, one NATS message each); results are reported as ratios against it.
 * The load generator (the worker's gRPC client, WorkerClient) runs in a process of its own, as a worker does; its CPU
 * time is
 * reported beside the agent's, the operator's and nats-server's.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
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
import { decodeCollectives, encodeCollectives, subjectFor, subscriptionFor } from "../common/src/telemetry/subjects.js";
import { startNatsServer } from "../test/integration/agent/nats-server.js";
import { KubeConfig } from "@kubernetes/client-node";
import { OperatorMetrics } from "../operator/src/metrics.js";
import { systemClock } from "../operator/src/runtime/clock.js";
import { silentLogger } from "../operator/src/runtime/logger.js";
import { TelemetryService } from "../operator/src/telemetry/service.js";
import type { ReadModelCounters } from "../operator/src/telemetry/read-model.js";
import type { OperatorThreadData } from "./threads/operator-telemetry.js";
import { Worker } from "node:worker_threads";
import { fork } from "node:child_process";
import { record, type GeneratorArgs } from "./threads/collectives-generator.js";

const NODE = "bench-node";
const RECORDS_PER_CALL = 1000;
const DURATION_MS = Number(process.env.BENCH_TELEMETRY_MS ?? 5000);
/** The agent's publisher limits under test (environment overrides are for comparing settings in one sitting). */
const PUBLISHER_LIMITS = {
  ...DEFAULT_PUBLISHER_LIMITS,
  maxBatchItems: Number(process.env.BENCH_TELEMETRY_BATCH_ITEMS ?? 2000),
  maxInFlightBatches: Number(process.env.BENCH_TELEMETRY_IN_FLIGHT ?? 16),
  maxBufferedItems: 100_000,
  flushIntervalMs: 100,
};

/** One agent serving one simulated node, publishing to JetStream, as both agent measurements run it. */
async function startBenchAgent(
  natsUrl: string,
  nodeLabels: Record<string, string>,
): Promise<{ nc: NatsConnection; dir: string; registry: Registry; agent: AgentCore }> {
  const nc = await connect({ servers: natsUrl });
  const dir = mkdtempSync(join(tmpdir(), "gpufleet-bench-"));
  const facts = simulatedNodeFacts({
    metadata: { name: NODE, annotations: { "kwok.x-k8s.io/node": "fake" }, labels: nodeLabels },
  });
  const registry = new Registry();
  const agent = new AgentCore(
    {
      workerSocketPath: join(dir, "agent.sock"),
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: 60_000,
      missedHeartbeatsLimit: 3,
      publisherLimits: PUBLISHER_LIMITS,
    },
    await JetStreamTransport.connect(nc),
    { nodeNames: () => [NODE], facts: (n) => (n === NODE ? facts : undefined), labels: () => factsToLabels(facts) },
    { run: async () => ({ passed: true, summary: "", details: {} }) },
    new AgentMetrics(registry),
    () => {},
  );
  await agent.start();
  return { nc, dir, registry, agent };
}

/** The training rank whose collective records the generator sends, registered over the agent's socket. */
async function registerBenchWorker(dir: string): Promise<WorkerClient> {
  const worker = new WorkerClient(`unix:${join(dir, "agent.sock")}`, 10_000);
  await worker.register({
    workerId: "w0",
    podNamespace: "bench",
    podName: "train-0",
    podUid: "u",
    nodeName: NODE,
    kind: "training",
    rank: 0,
    worldSize: 8,
    simulated: true,
  });
  return worker;
}

export async function agentIngest(
  natsUrl: string,
): Promise<{ recordsPerSec: number; published: number; dropped: number }> {
  const { nc, dir, registry, agent } = await startBenchAgent(natsUrl, {
    "gpufleet.io/leaf": "l",
    "gpufleet.io/island": "i",
  });
  const worker = await registerBenchWorker(dir);
  // Four calls in flight, as a worker with a few NCCL communicators would have; the worker is another process.
  const generator = await startGenerator({
    socketPath: join(dir, "agent.sock"),
    workerId: "w0",
    durationMs: DURATION_MS,
    loops: 4,
    recordsPerCall: RECORDS_PER_CALL,
    distinct: false,
  });
  const started = performance.now();
  const sent = await generator.run();
  await agent.publisher.drain();
  const elapsedS = (performance.now() - started) / 1000;
  const sum = async (name: string): Promise<number> =>
    (await registry.getSingleMetric(name)!.get()).values
      .filter((v) => v.labels.stream === "collectives")
      .reduce((s, v) => s + v.value, 0);
  const published = await sum("gpufleet_agent_telemetry_published_total");
  const dropped = await sum("gpufleet_agent_telemetry_dropped_total");
  worker.close();
  await agent.stop();
  await nc.close();
  rmSync(dir, { recursive: true, force: true });
  return { recordsPerSec: published / elapsedS, published, dropped: dropped + (sent - published) };
}

/** The load generator in its own process (bench/threads/collectives-generator.ts), connected and waiting. */
async function startGenerator(args: GeneratorArgs): Promise<{ pid: number; run: () => Promise<number> }> {
  const child = fork(
    fileURLToPath(new URL("./threads/collectives-generator.ts", import.meta.url)),
    [JSON.stringify(args)],
    { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] },
  );
  const exited = new Promise<never>((_, reject) =>
    child.once("exit", (code) => reject(new Error(`the load generator exited with ${code}`))),
  );
  const next = <T>(key: string): Promise<T> =>
    Promise.race([
      exited,
      new Promise<T>((resolve) => {
        const listener = (m: Record<string, unknown>): void => {
          if (key in m) {
            child.off("message", listener);
            resolve(m[key] as T);
          }
        };
        child.on("message", listener);
      }),
    ]);
  await next<boolean>("ready");
  return {
    pid: child.pid!,
    run: async () => {
      const sent = next<number>("sent");
      child.send("start");
      return sent;
    },
  };
}

/** CPU seconds (user + system) of a /proc stat file: a process or one thread of it. */
function cpuSeconds(statPath: string): number {
  try {
    const stat = readFileSync(statPath, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100 on Linux)
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time split: the generator's process, this process's main thread (the agent), the rest of this process, nats-
 * server.
 */
function cpuSample(
  natsPid: number | undefined,
  generatorPid: number,
): { main: number; process: number; nats: number; generator: number } {
  return {
    generator: cpuSeconds(`/proc/${generatorPid}/stat`),
    main: cpuSeconds(`/proc/self/task/${process.pid}/stat`),
    process: cpuSeconds("/proc/self/stat"),
    nats: natsPid === undefined ? Number.NaN : cpuSeconds(`/proc/${natsPid}/stat`),
  };
}

interface EndToEnd {
  /**
   * CPU microseconds per record: generator process (the worker), agent (main thread), operator thread + V8/libuv
   * helpers, nats-server.
   */
  cpuUsPerRecord: {
    generatorProcess: number;
    agentThread: number;
    operatorThreadAndHelpers: number;
    natsServer: number;
  };
  recordsPerSec: number;
  records: number;
  seconds: number;
  /** Records the agent had acknowledged by JetStream when the generator stopped, per second of generating. */
  agentAckedRecordsPerSec: number;
  /** How far the operator trailed when the generator stopped (records published, not yet in the read model). */
  backlogAtGeneratorEnd: number;
  duplicates: number;
  stale: number;
  droppedAtAgent: number;
}

/** The operator's TelemetryService on its own thread (bench/threads/operator-telemetry.ts), with the tsx loader. */
function startOperatorThread(data: OperatorThreadData): Worker {
  const entry = new URL("./threads/operator-telemetry.ts", import.meta.url);
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

/**
 * Agent (AgentCore, worker gRPC over its socket) -> JetStream -> the operator's TelemetryService (the same
 * consumers and read model the operator runs) on a thread of its own (the operator is another process in a
 * deployment), on a nats-server of its own. Each of the four
 * generator loops reports its own communicator, 8 ranks per sequence, so every record is distinct and the read
 * model's de-duplication and window work as in production. The rate is records accepted by the read model divided
 * by the time from the first report to the last record accepted.
 */
export async function endToEnd(natsUrl: string, natsPid?: number): Promise<EndToEnd> {
  const operator = startOperatorThread({ natsUrl, durablePrefix: "bench" });
  let counters: ReadModelCounters = {
    recordsAccepted: 0,
    recordsDuplicate: 0,
    recordsStale: 0,
    recordsDroppedAtAgents: 0,
    evictedSequences: 0,
    evictedCommunicators: 0,
    evictedLoadInstances: 0,
    evictedJobs: 0,
    evictedWorkers: 0,
    evictedRdmaPorts: 0,
    loadReportsStale: 0,
  };
  let consuming = false;
  operator.on("message", (m: { counters?: ReadModelCounters; consuming?: boolean }) => {
    if (m.counters) counters = m.counters;
    if (m.consuming) consuming = true;
  });
  const { nc, dir, registry, agent } = await startBenchAgent(natsUrl, {});
  for (let i = 0; i < 400 && !consuming; i++) await new Promise((r) => setTimeout(r, 25));
  if (!consuming) throw new Error("the operator thread did not start consuming within 10 s");
  const worker = await registerBenchWorker(dir);
  const generator = await startGenerator({
    socketPath: join(dir, "agent.sock"),
    workerId: "w0",
    durationMs: DURATION_MS,
    loops: 4,
    recordsPerCall: RECORDS_PER_CALL,
    distinct: true,
  });
  const cpuBefore = cpuSample(natsPid, generator.pid);
  const started = performance.now();
  const sent = await generator.run();
  const generatorCpu = cpuSeconds(`/proc/${generator.pid}/stat`) - cpuBefore.generator;
  const generatedS = (performance.now() - started) / 1000;
  const sum = async (name: string): Promise<number> =>
    (await registry.getSingleMetric(name)!.get()).values
      .filter((v) => v.labels.stream === "collectives")
      .reduce((s, v) => s + v.value, 0);
  const ackedAtEnd = await sum("gpufleet_agent_telemetry_published_total");
  const backlogAtGeneratorEnd = sent - counters.recordsAccepted;
  await agent.publisher.drain();
  const published = await sum("gpufleet_agent_telemetry_published_total");
  let lastChange = performance.now();
  let last = -1;
  // Until every acknowledged record is in the read model (or nothing moved for 10 s).
  while (counters.recordsAccepted < published && performance.now() - lastChange < 10_000) {
    const now = counters.recordsAccepted;
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // Counters arrive every 20 ms: the last batch may have landed up to one interval before we saw it.
  const seconds = (performance.now() - started) / 1000;
  const cpuAfter = cpuSample(natsPid, generator.pid);
  const perRecordUs = (s: number): number => +((s * 1e6) / Math.max(1, counters.recordsAccepted)).toFixed(2);
  worker.close();
  await agent.stop();
  await nc.close();
  await new Promise<void>((resolve) => {
    operator.on("message", (m: { closed?: boolean }) => m.closed && resolve());
    operator.postMessage("stop");
  });
  await operator.terminate();
  rmSync(dir, { recursive: true, force: true });
  return {
    recordsPerSec: counters.recordsAccepted / seconds,
    records: counters.recordsAccepted,
    cpuUsPerRecord: {
      generatorProcess: perRecordUs(generatorCpu),
      agentThread: perRecordUs(cpuAfter.main - cpuBefore.main),
      operatorThreadAndHelpers: perRecordUs(cpuAfter.process - cpuBefore.process - (cpuAfter.main - cpuBefore.main)),
      natsServer: perRecordUs(cpuAfter.nats - cpuBefore.nats),
    },
    seconds,
    agentAckedRecordsPerSec: ackedAtEnd / generatedS,
    backlogAtGeneratorEnd,
    duplicates: counters.recordsDuplicate,
    stale: counters.recordsStale,
    droppedAtAgent: (await sum("gpufleet_agent_telemetry_dropped_total")) + (sent - published),
  };
}

/**
 * The operator's half alone: `total` records stored in the stream first (JetStream publishes of 2000-record
 * messages), then the operator's TelemetryService started and timed until its read model accepted all of them.
 */
async function operatorConsumerOnly(natsUrl: string, total: number): Promise<number> {
  const nc = await connect({ servers: natsUrl });
  const transport = await JetStreamTransport.connect(nc);
  const subject = subjectFor("collectives", NODE);
  const records = Array.from({ length: 2000 }, (_, i) => record(i));
  for (let done = 0, message = 0; done < total; message++) {
    const acks: Promise<void>[] = [];
    for (let w = 0; w < 16 && done < total; w++, done += records.length) {
      for (let i = 0; i < records.length; i++) records[i]!.sequence = Math.floor((done + i) / 8);
      acks.push(transport.publish(subject, encodeCollectives(NODE, records, Date.now(), 0), `pre-${message}-${w}`));
    }
    await Promise.all(acks);
  }
  await nc.close();
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "none", server: "https://127.0.0.1:1" }],
    users: [{ name: "none" }],
    contexts: [{ name: "none", cluster: "none", user: "none" }],
    currentContext: "none",
  });
  const telemetry = new TelemetryService({
    natsUrl,
    durablePrefix: "bench-consumer",
    kubeConfig,
    cachedPod: () => undefined,
    metrics: new OperatorMetrics({ defaultMetrics: false }),
    clock: systemClock,
    logger: silentLogger,
  });
  const started = performance.now();
  await telemetry.startLeading();
  telemetry.connect();
  while (telemetry.views.counters().recordsAccepted < total && performance.now() - started < 60_000)
    await new Promise((r) => setTimeout(r, 5));
  const rate = telemetry.views.counters().recordsAccepted / ((performance.now() - started) / 1000);
  await telemetry.close();
  return rate;
}

/** Baseline of the agent's publish step: one JSON message per record, same NATS flush window. */
async function publishRate(nc: NatsConnection, batched: boolean, total: number): Promise<number> {
  const records = Array.from({ length: 2000 }, (_, i) => record(i));
  const subject = subjectFor("collectives", NODE);
  const enc = new TextEncoder();
  const started = performance.now();
  for (let done = 0; done < total; done += records.length) {
    if (batched) nc.publish(subject, encodeCollectives(NODE, records, Date.now(), 0));
    else
      for (const r of records)
        nc.publish(subject, enc.encode(JSON.stringify({ schema: "gpufleet.collective/v0", node: NODE, ...r })));
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
  const messages = batched
    ? [encodeCollectives(NODE, records, Date.now(), 0)]
    : records.map((r) => enc.encode(JSON.stringify({ schema: "gpufleet.collective/v0", node: NODE, ...r })));
  const perRound = batched ? records.length : 1;
  for (let sent = 0; sent < total;) {
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
  const loadAtStart = loadavg()[0]!;
  // A server of its own: the later phases publish into the same subjects, which the streams would capture.
  const e2eNats = await startNatsServer();
  let e2e: EndToEnd;
  try {
    e2e = await endToEnd(e2eNats.url, e2eNats.pid);
  } finally {
    await e2eNats.close();
  }
  const consumerNats = await startNatsServer();
  let consumerOnly: number;
  try {
    consumerOnly = await operatorConsumerOnly(consumerNats.url, 400_000);
  } finally {
    await consumerNats.close();
  }
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
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model ?? "",
        node: process.version,
        loadAverage1m: +loadavg()[0]!.toFixed(2),
        loadAverage1mAtStart: +loadAtStart.toFixed(2),
      },
      durationMs: DURATION_MS,
      recordsPerCall: RECORDS_PER_CALL,
      agentRecordsPerSec: Math.round(agent.recordsPerSec),
      agentRecordsPublished: agent.published,
      agentRecordsDropped: agent.dropped,
      operatorRecordsPerSec: Math.round(operatorBatched),
      targetAgentRecordsPerSec: 100_000,
      meetsTarget: agent.recordsPerSec >= 100_000,
      endToEndRecordsPerSec: Math.round(e2e.recordsPerSec),
      targetEndToEndRecordsPerSec: 100_000,
      meetsEndToEndTarget: e2e.recordsPerSec >= 100_000,
      endToEnd: {
        records: e2e.records,
        seconds: +e2e.seconds.toFixed(2),
        agentAckedRecordsPerSec: Math.round(e2e.agentAckedRecordsPerSec),
        backlogAtGeneratorEnd: e2e.backlogAtGeneratorEnd,
        duplicates: e2e.duplicates,
        stale: e2e.stale,
        droppedAtAgent: e2e.droppedAtAgent,
        cpuUsPerRecord: e2e.cpuUsPerRecord,
        publisherLimits: {
          maxBatchItems: PUBLISHER_LIMITS.maxBatchItems,
          maxInFlightBatches: PUBLISHER_LIMITS.maxInFlightBatches,
          maxMessageBytes: PUBLISHER_LIMITS.maxMessageBytes,
        },
        /** JetStream -> durable consumer -> read model alone, from a pre-filled stream (no agent, no generator). */
        operatorConsumerRecordsPerSec: Math.round(consumerOnly),
        ratioToBaselineJsonPerRecord: +(e2e.recordsPerSec / publishBaseline).toFixed(2),
      },
      publishOnly: {
        batchedRecordsPerSec: Math.round(publishBatched),
        baselineJsonPerRecordPerSec: Math.round(publishBaseline),
        ratio: +(publishBatched / publishBaseline).toFixed(2),
      },
      operatorIngest: {
        batchedRecordsPerSec: Math.round(operatorBatched),
        baselineJsonPerRecordPerSec: Math.round(operatorBaseline),
        ratio: +(operatorBatched / operatorBaseline).toFixed(2),
      },
      baseline: "JSON.stringify of each record, one NATS message per record (same flush window, same server)",
    };
    const out = join(dirname(fileURLToPath(import.meta.url)), "results");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "telemetry.json"), JSON.stringify(result, null, 2) + "\n");
    writeFileSync(
      join(out, "telemetry.md"),
      [
        "# Telemetry benchmark",
        "",
        `${result.date}, ${result.machine.cpus} CPUs (${result.machine.cpuModel}), Node ${result.machine.node}, load average ${result.machine.loadAverage1mAtStart} at the start and ${result.machine.loadAverage1m} at the end (shared machine), real nats-server on loopback.`,
        "",
        "| Measure | Records/s | Baseline (JSON per record) | Ratio |",
        "| --- | ---: | ---: | ---: |",
        `| End to end: worker gRPC -> agent -> JetStream (file store, acked) -> operator durable consumer -> read model (operator on its own thread) | ${result.endToEndRecordsPerSec.toLocaleString("en")} | ${result.publishOnly.baselineJsonPerRecordPerSec.toLocaleString("en")} | ${result.endToEnd.ratioToBaselineJsonPerRecord}x |`,
        `| Operator alone: JetStream (pre-filled stream) -> durable consumer -> decode -> read model | ${result.endToEnd.operatorConsumerRecordsPerSec.toLocaleString("en")} | | |`,
        `| Agent: gRPC ingest -> validate -> metrics -> batched JetStream publish, acked (generator in its own process) | ${result.agentRecordsPerSec.toLocaleString("en")} | | |`,
        `| Agent publish step only (core NATS publish + flush) | ${result.publishOnly.batchedRecordsPerSec.toLocaleString("en")} | ${result.publishOnly.baselineJsonPerRecordPerSec.toLocaleString("en")} | ${result.publishOnly.ratio}x |`,
        `| Operator: core NATS subscription -> schema-checked decode | ${result.operatorRecordsPerSec.toLocaleString("en")} | ${result.operatorIngest.baselineJsonPerRecordPerSec.toLocaleString("en")} | ${result.operatorIngest.ratio}x |`,
        "",
        `Target >= 100,000 records/s per agent: ${result.meetsTarget ? "met" : "NOT met"}. Records dropped by the bounded buffers: ${result.agentRecordsDropped}.`,
        `Target >= 100,000 records/s end to end: ${result.meetsEndToEndTarget ? "met" : "NOT met"} (${result.endToEnd.records.toLocaleString("en")} records in ${result.endToEnd.seconds} s; the agent had ${result.endToEnd.agentAckedRecordsPerSec.toLocaleString("en")} records/s acknowledged by JetStream while the generator ran, the read model trailed by ${result.endToEnd.backlogAtGeneratorEnd.toLocaleString("en")} records when it stopped; duplicates ${result.endToEnd.duplicates}, stale ${result.endToEnd.stale}, dropped ${result.endToEnd.droppedAtAgent}).`,
        `CPU per record end to end: ${result.endToEnd.cpuUsPerRecord.agentThread} µs on the agent's thread, ${result.endToEnd.cpuUsPerRecord.generatorProcess} µs in the load generator (the worker's gRPC client, a process of its own as a worker is), ${result.endToEnd.cpuUsPerRecord.operatorThreadAndHelpers} µs in the rest of the process (operator thread, V8/libuv helper threads), ${result.endToEnd.cpuUsPerRecord.natsServer} µs in nats-server; publisher: ${PUBLISHER_LIMITS.maxBatchItems} records per message at most, ${PUBLISHER_LIMITS.maxInFlightBatches} messages in flight.`,
        "On a shared machine the rates follow its load; the CPU per record is the figure to compare changes by (bench/results/telemetry-notes.md).",
        "The end-to-end baseline column is the publish-only rate of one JSON message per record (core NATS, no acknowledgement, no consumer): what one message per record would cost before JetStream and the operator are even involved.",
        "",
      ].join("\n"),
    );
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await nats.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  run().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
