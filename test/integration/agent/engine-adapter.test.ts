/**
 * The vLLM/SGLang load adapter (agent/src/engines/sidecar.ts) as its container runs it: its own process, the real
 * agent on a Unix socket, a real nats-server. The engine cannot run here, so its /metrics is a static page shaped as
 * vLLM documents it (agent/src/engines/fixtures/). The adapter registers as the instance's worker, its load reports
 * reach NATS with the engine's numbers and the instance's place, Drain is applied and MigrateOut rejected.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { V1Node } from "@kubernetes/client-node";
import { connect, type NatsConnection } from "nats";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCore } from "../../../agent/src/agent.js";
import { NodeDiagnostics } from "../../../agent/src/diagnostics.js";
import { factsToLabels } from "../../../agent/src/discovery/facts.js";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import type { NodeDirectory } from "../../../agent/src/grpc/node-agent-service.js";
import { AgentMetrics } from "../../../agent/src/metrics.js";
import { simulatedNodeFacts } from "../../../agent/src/simulation/model.js";
import { JetStreamTransport } from "../../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../../agent/src/telemetry/publisher.js";
import { decodeLoad, decodeWorkers, subscriptionFor } from "../../../common/src/telemetry/subjects.js";
import { REPO_ROOT } from "../../support/paths.js";
import { startNatsServer, type NatsServer } from "./nats-server.js";

const NODE = "gpu-node-7";
const facts = simulatedNodeFacts({
  metadata: {
    name: NODE,
    annotations: { "kwok.x-k8s.io/node": "fake" },
    labels: { "gpufleet.io/leaf": "leaf-0", "gpufleet.io/island": "ib-0" },
  },
} satisfies V1Node);
const nodes: NodeDirectory = {
  nodeNames: () => [NODE],
  facts: (n) => (n === NODE ? facts : undefined),
  labels: (n) => (n === NODE ? factsToLabels(facts) : undefined),
};

let nats: NatsServer;
let nc: NatsConnection;
let agent: AgentCore;
let dir: string;
let engine: Server;
let sidecar: ChildProcess | undefined;
let sidecarLog = "";

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = mkdtempSync(join(tmpdir(), "gpufleet-adapter-"));
  const diagnostics = new NodeDiagnostics({
    rediscover: async () => facts,
    publishedLabels: (n) => nodes.labels(n),
    sampleRdma: async () => undefined,
  });
  agent = new AgentCore(
    {
      workerSocketPath: join(dir, "agent.sock"),
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: 200,
      missedHeartbeatsLimit: 5,
      publisherLimits: { ...DEFAULT_PUBLISHER_LIMITS, flushIntervalMs: 50 },
    },
    await JetStreamTransport.connect(nc),
    nodes,
    diagnostics,
    new AgentMetrics(new Registry()),
    () => {},
  );
  await agent.start();
  const page = readFileSync(join(REPO_ROOT, "agent/src/engines/fixtures/vllm-metrics-1.txt"), "utf8");
  engine = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(page);
  });
  await new Promise<void>((resolve) => engine.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  sidecar?.kill("SIGTERM");
  await agent?.stop();
  await nc?.close();
  await nats?.close();
  await new Promise((resolve) => engine?.close(resolve));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("engine adapter sidecar", () => {
  it("registers, reports the engine's load over the worker socket to NATS, applies Drain and rejects MigrateOut", async () => {
    const workers = nc.subscribe(subscriptionFor("workers"));
    const loads = nc.subscribe(subscriptionFor("load"));
    const port = (engine.address() as AddressInfo).port;
    sidecar = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "agent/src/engines/sidecar.ts")], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        GPUFLEET_ENGINE_KIND: "vllm",
        GPUFLEET_ENGINE_METRICS_URL: `http://127.0.0.1:${port}/metrics`,
        GPUFLEET_AGENT_SOCKET: join(dir, "agent.sock"),
        POD_IP: "10.1.2.3",
        GPUFLEET_PORT: "8000",
        POD_NAMESPACE: "llm",
        POD_NAME: "chat-h-p0",
        POD_UID: "uid-77",
        NODE_NAME: NODE,
        GPUFLEET_SERVING_DEPLOYMENT: "chat",
        GPUFLEET_ROLE: "prefill",
        GPUFLEET_MODEL: "meta-llama/Llama-3.1-8B-Instruct",
        GPUFLEET_TP: "2",
        GPUFLEET_PP: "1",
        GPUFLEET_GPU_MODEL: "H100-80GB",
        GPUFLEET_ENGINE_SCRAPE_INTERVAL_MS: "200",
      },
    });
    sidecar.stderr!.on("data", (d: Buffer) => (sidecarLog += d.toString()));

    for await (const m of workers) {
      const e = decodeWorkers(m.subject, m.data);
      if (e.workerId === "uid-77/engine") {
        expect(e).toMatchObject({ event: "registered", podName: "chat-h-p0", node: NODE });
        expect(agent.registry.get("uid-77/engine")).toMatchObject({
          kind: "serving-prefill",
          simulated: false,
          podUid: "uid-77",
        });
        break;
      }
    }
    let report;
    for await (const m of loads) {
      report = decodeLoad(m.subject, m.data).reports.find((r) => r.workerId === "uid-77/engine");
      if (report) break;
    }
    expect(report, sidecarLog).toMatchObject({
      podNamespace: "llm",
      podName: "chat-h-p0",
      runningRequests: 12,
      queueLength: 3,
      kvCacheUsedFraction: 0.25,
      kvBlocksTotal: 20000,
      kvBlocksUsed: 5000,
      blockSizeTokens: 16,
      role: "prefill",
      model: "meta-llama/Llama-3.1-8B-Instruct",
      tp: 2,
      pp: 1,
      gpuModel: "H100-80GB",
      engineUrl: "http://10.1.2.3:8000",
      servingDeployment: "llm/chat",
      draining: false,
    });

    loads.unsubscribe();
    const afterDrain = nc.subscribe(subscriptionFor("load"));
    const operator = new NodeAgentClient(
      `127.0.0.1:${agent.server.operatorPort}`,
      grpc.credentials.createInsecure(),
      5000,
    );
    try {
      // The command stream attaches a moment after registration: until then the agent answers UNAVAILABLE.
      const send = async (command: Parameters<NodeAgentClient["sendWorkerCommand"]>[1]) => {
        const until = Date.now() + 20_000;
        for (;;) {
          try {
            return await operator.sendWorkerCommand("uid-77/engine", command);
          } catch (error) {
            if ((error as grpc.ServiceError).code !== grpc.status.UNAVAILABLE || Date.now() > until) throw error;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      };
      expect(
        await send({ commandId: "m1", migrateOut: { requestId: "r1", targetWorkerId: "x/0", targetPod: "llm/other" } }),
      ).toMatchObject({
        outcome: "rejected",
        reason: expect.stringMatching(/vllm instances do not support migrateOut/),
      });
      expect(await send({ commandId: "d1", drain: { deadlineMs: 1000 } })).toMatchObject({ outcome: "applied" });
    } finally {
      operator.close();
    }
    // Reports after the Drain say so (the gateway dispatches no new request there).
    for await (const m of afterDrain) {
      if (decodeLoad(m.subject, m.data).reports.some((r) => r.workerId === "uid-77/engine" && r.draining)) break;
    }
    afterDrain.unsubscribe();
    workers.unsubscribe();
  }, 120_000);
});
