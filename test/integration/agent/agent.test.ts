/**
 * The agent against a real nats-server and real gRPC over a Unix socket and TCP: a worker registers and reports,
 * a NATS subscriber receives well-formed telemetry; the operator's calls are answered with clear status codes.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { connect, type NatsConnection, type Subscription } from "nats";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCore } from "../../../agent/src/agent.js";
import { NodeDiagnostics } from "../../../agent/src/diagnostics.js";
import { NodeAgentClient, WorkerClient } from "../../../agent/src/grpc/client.js";
import type { WorkerCommand__Output } from "../../../agent/src/grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { AgentMetrics } from "../../../agent/src/metrics.js";
import {
  decodeCollectives,
  decodeLoad,
  decodeWorkers,
  subscriptionFor,
} from "../../../common/src/telemetry/subjects.js";
import { startNatsServer, type NatsServer } from "./nats-server.js";
import { simulatedNodeDirectory } from "../../support/engine-adapter.js";
import { JetStreamTransport } from "../../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../../agent/src/telemetry/publisher.js";

const NODE = "gpu-node-1";
const { facts, nodes } = simulatedNodeDirectory(NODE);

/** Collects messages until `count` arrived or the timeout passed (bounded wait, no fixed sleep). */
async function collect(
  sub: Subscription,
  count: number,
  timeoutMs = 10_000,
): Promise<{ subject: string; data: Uint8Array }[]> {
  const out: { subject: string; data: Uint8Array }[] = [];
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  for await (const m of sub) {
    out.push({ subject: m.subject, data: m.data });
    if (out.length >= count) break;
  }
  clearTimeout(timer);
  return out;
}

let nats: NatsServer;
let nc: NatsConnection;
let agent: AgentCore;
let dir: string;
let operator: NodeAgentClient;
let worker: WorkerClient;
let slowDiagnostic = false;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = mkdtempSync(join(tmpdir(), "gpufleet-agent-"));
  const diagnostics = new NodeDiagnostics({
    rediscover: async (_n, timeoutMs) => {
      if (slowDiagnostic) await new Promise((r) => setTimeout(r, timeoutMs + 500));
      return facts;
    },
    publishedLabels: (n) => nodes.labels(n),
    sampleRdma: async () => undefined,
  });
  agent = new AgentCore(
    {
      workerSocketPath: join(dir, "agent.sock"),
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: 200,
      missedHeartbeatsLimit: 2,
      publisherLimits: {
        ...DEFAULT_PUBLISHER_LIMITS,
        maxBatchItems: 500,
        maxBufferedItems: 10_000,
        maxInFlightBatches: 4,
        flushIntervalMs: 50,
      },
    },
    await JetStreamTransport.connect(nc),
    nodes,
    diagnostics,
    new AgentMetrics(new Registry()),
    () => {},
  );
  await agent.start();
  operator = new NodeAgentClient(`127.0.0.1:${agent.server.operatorPort}`, grpc.credentials.createInsecure(), 2000);
  worker = new WorkerClient(`unix:${join(dir, "agent.sock")}`);
});

afterAll(async () => {
  operator?.close();
  worker?.close();
  await agent?.stop();
  await nc?.close();
  await nats?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const registration = {
  workerId: "uid-1/0",
  podNamespace: "ns",
  podName: "train-0",
  podUid: "uid-1",
  nodeName: NODE,
  kind: "training",
  gpuUuids: [],
  rank: 0,
  worldSize: 2,
  simulated: true,
};

describe("telemetry to NATS", () => {
  it("a subscriber receives the worker's registration, collective records and load, well-formed", async () => {
    const workerEvents = nc.subscribe(subscriptionFor("workers"));
    const collectives = nc.subscribe(subscriptionFor("collectives"));
    const load = nc.subscribe(subscriptionFor("load"));
    expect(await worker.register(registration)).toEqual({ heartbeatIntervalMs: 200, missedHeartbeatsLimit: 2 });
    await worker.register({
      ...registration,
      workerId: "uid-2/0",
      podName: "serve-0",
      podUid: "uid-2",
      kind: "serving-decode",
      rank: -1,
      worldSize: 0,
    });
    const records = Array.from({ length: 1200 }, (_, i) => ({
      communicator: "job-a",
      rank: 0,
      nRanks: 2,
      collective: "AllReduce",
      sequence: i,
      bytes: 1 << 24,
      startUnixUs: 1_700_000_000_000_000 + i * 1000,
      endUnixUs: 1_700_000_000_000_500 + i * 1000,
      peers: [
        {
          peerRank: 1,
          bytes: 1 << 24,
          startUnixUs: 1_700_000_000_000_000 + i * 1000,
          endUnixUs: 1_700_000_000_000_400 + i * 1000,
        },
      ],
    }));
    expect(await worker.reportCollectives({ workerId: "uid-1/0", records })).toEqual({ accepted: 1200 });
    await worker.reportLoad({
      workerId: "uid-2/0",
      unixMs: Date.now(),
      queueLength: 3,
      runningRequests: 12,
      kvCacheUsedFraction: 0.4,
      kvCacheUsedBytes: 1e9,
      ttftMs: 120,
      tpotMs: 9.5,
      tokensPerSecond: 1300,
    });

    const events = (await collect(workerEvents, 2)).map((m) => decodeWorkers(m.subject, m.data));
    expect(events.map((e) => [e.event, e.workerId, e.node])).toEqual([
      ["registered", "uid-1/0", NODE],
      ["registered", "uid-2/0", NODE],
    ]);
    const batches = (await collect(collectives, 3)).map((m) => decodeCollectives(m.subject, m.data));
    expect(batches.map((b) => b.records.length)).toEqual([500, 500, 200]);
    const received = batches.flatMap((b) => b.records);
    expect(received.map((r) => r.sequence)).toEqual(records.map((r) => r.sequence));
    expect(received[1199]).toEqual(records[1199]);
    const loads = (await collect(load, 1)).map((m) => decodeLoad(m.subject, m.data));
    expect(loads[0]!.reports[0]).toMatchObject({
      workerId: "uid-2/0",
      podName: "serve-0",
      queueLength: 3,
      tpotMs: 9.5,
    });
  });

  it("a worker that stops heartbeating is reported missing on NATS", async () => {
    const sub = nc.subscribe(subscriptionFor("workers"));
    await worker.register({ ...registration, workerId: "uid-3/1", podName: "train-1", podUid: "uid-3", rank: 1 });
    // registered, then missing for every silent worker (heartbeat limit 2 x 200 ms); read until ours shows up.
    const events = [];
    for await (const m of sub) {
      const e = decodeWorkers(m.subject, m.data);
      events.push(e);
      if ((e.event === "missing" && e.workerId === "uid-3/1") || events.length > 20) break;
    }
    expect(events[0]).toMatchObject({ event: "registered", workerId: "uid-3/1" });
    expect(events.at(-1)).toMatchObject({ event: "missing", workerId: "uid-3/1", podName: "train-1" });
    await worker.heartbeat("uid-3/1");
    expect(agent.registry.get("uid-3/1").state).toBe("healthy");
  });
});

const codeOf = async (p: Promise<unknown>): Promise<[grpc.status, string]> => {
  try {
    await p;
    return [grpc.status.OK, ""];
  } catch (err) {
    const e = err as grpc.ServiceError;
    return [e.code, e.details];
  }
};

describe("gRPC round trips", () => {
  it("answers GetNodeInfo with the node's GPUs, NICs and labels", async () => {
    const info = await operator.getNodeInfo(NODE);
    expect(info.gpus).toHaveLength(8);
    expect(info.nics[0]).toMatchObject({ device: "mlx5_0", type: "infiniband", bandwidthGbps: 400 });
    expect(info.labels["gpufleet.io/gpu-model"]).toBe("H100-80GB");
  });

  it.each([
    {
      name: "unknown node",
      call: () => operator.getNodeInfo("nope"),
      code: grpc.status.NOT_FOUND,
      details: /not served/,
    },
    {
      name: "missing node name",
      call: () => operator.getNodeInfo(""),
      code: grpc.status.INVALID_ARGUMENT,
      details: /node_name/,
    },
    {
      name: "unknown diagnostic",
      call: () => operator.runDiagnostic(NODE, "smoke-test"),
      code: grpc.status.INVALID_ARGUMENT,
      details: /smoke-test/,
    },
    {
      name: "command to an unknown worker",
      call: () => operator.sendWorkerCommand("ghost", { commandId: "c", drain: { deadlineMs: 1 } }),
      code: grpc.status.NOT_FOUND,
      details: /ghost/,
    },
    {
      name: "command without a command",
      call: () => operator.sendWorkerCommand("uid-1/0", { commandId: "c" }),
      code: grpc.status.INVALID_ARGUMENT,
      details: /one of/,
    },
    {
      name: "fault with a bad factor",
      call: () =>
        operator.sendWorkerCommand("uid-1/0", {
          commandId: "c",
          injectFault: { kind: "slow-link", rank: 0, peerRank: 1, factor: 4 },
        }),
      code: grpc.status.INVALID_ARGUMENT,
      details: /factor/,
    },
    {
      name: "traffic plan naming a NIC the node lacks",
      call: () =>
        operator.applyTrafficPlan({
          nodeName: NODE,
          planId: "p",
          routes: [{ communicator: "c", rank: 0, peerRank: 1, nic: "mlx5_99", weight: 1 }],
        }),
      code: grpc.status.INVALID_ARGUMENT,
      details: /mlx5_99/,
    },
    {
      name: "report from an unknown worker",
      call: () => worker.reportCollectives({ workerId: "ghost", records: [] }),
      code: grpc.status.NOT_FOUND,
      details: /ghost/,
    },
    {
      name: "malformed collective record",
      call: () =>
        worker.reportCollectives({
          workerId: "uid-1/0",
          records: [{ communicator: "c", rank: 5, nRanks: 2, collective: "AllReduce", startUnixUs: 1 }],
        }),
      code: grpc.status.INVALID_ARGUMENT,
      details: /rank 5/,
    },
    {
      name: "registration for another node",
      call: () => worker.register({ ...registration, nodeName: "elsewhere" }),
      code: grpc.status.INVALID_ARGUMENT,
      details: /elsewhere/,
    },
  ])("$name -> $code", async ({ call, code, details }) => {
    const [got, message] = await codeOf(call());
    expect(got).toBe(code);
    expect(message).toMatch(details);
  });

  it("refuses a call without a deadline", async () => {
    const [code, details] = await codeOf(
      new Promise((resolve, reject) =>
        operator.raw.GetNodeInfo({ nodeName: NODE }, (err, v) => (err ? reject(err) : resolve(v))),
      ),
    );
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(details).toMatch(/deadline/);
  });

  it("a diagnostic slower than the caller's deadline ends with DEADLINE_EXCEEDED", async () => {
    slowDiagnostic = true;
    try {
      const started = Date.now();
      const [code] = await codeOf(operator.runDiagnostic(NODE, "gpu-inventory", 300));
      expect(code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      slowDiagnostic = false;
    }
    const ok = await operator.runDiagnostic(NODE, "nic-links");
    expect(ok).toMatchObject({ passed: true, summary: "8 links up" });
  });

  it("delivers an operator command to the worker's stream and answers with the worker's acknowledgement", async () => {
    await worker.register(registration);
    const got: WorkerCommand__Output[] = [];
    const stream = worker.commands(
      "uid-1/0",
      (c) => {
        got.push(c);
        void worker.ackCommand({
          workerId: "uid-1/0",
          commandId: c.commandId,
          outcome: "rejected",
          reason: `request ${c.migrateOut?.requestId} is not here`,
        });
      },
      () => {},
    );
    // The stream is attached once the agent has it: until then the agent answers UNAVAILABLE (bounded poll).
    const until = Date.now() + 5000;
    let answer;
    for (;;) {
      try {
        answer = await operator.sendWorkerCommand("uid-1/0", {
          commandId: "m1",
          migrateOut: { requestId: "req-9", targetWorkerId: "uid-2/0", targetPod: "ns/serve-1" },
        });
        break;
      } catch (err) {
        if ((err as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || Date.now() > until) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(answer).toMatchObject({ commandId: "m1", outcome: "rejected", reason: "request req-9 is not here" });
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({
      commandId: "m1",
      command: "migrateOut",
      migrateOut: { requestId: "req-9", targetPod: "ns/serve-1" },
    });
    stream.cancel();
  });

  it("answers a command to a worker without a command stream with UNAVAILABLE", async () => {
    await worker.register({ ...registration, workerId: "uid-4/0", podName: "train-4", podUid: "uid-4" });
    const [code, details] = await codeOf(
      operator.sendWorkerCommand("uid-4/0", { commandId: "n1", drain: { deadlineMs: 1 } }),
    );
    expect(code).toBe(grpc.status.UNAVAILABLE);
    expect(details).toMatch(/no open command stream/);
  });

  it("answers a valid traffic plan with UNIMPLEMENTED: no executor applies it on the node yet", async () => {
    const [code, details] = await codeOf(
      operator.applyTrafficPlan({
        nodeName: NODE,
        planId: "plan-1",
        routes: [{ communicator: "job-a", rank: 0, peerRank: 1, nic: "mlx5_3", weight: 1 }],
      }),
    );
    expect(code).toBe(grpc.status.UNIMPLEMENTED);
    expect(details).toMatch(/executor/);
  });
});
