/**
 * The vLLM/SGLang load adapter (agent/src/engines/sidecar.ts) as its container runs it: its own process, the real
 * agent on a Unix socket, a real nats-server. The engine cannot run here, so its /metrics is a static page shaped as
 * vLLM documents it (agent/src/engines/fixtures/). The adapter registers as the instance's worker, its load reports
 * reach NATS with the engine's numbers and the instance's place, Drain is applied and MigrateOut rejected.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import { decodeLoad, decodeWorkers, subscriptionFor } from "../../../common/src/telemetry/subjects.js";
import {
  spawnEngineAdapter,
  startAdapterAgent,
  type AdapterAgent,
  type AdapterProcess,
} from "../../support/engine-adapter.js";
import { REPO_ROOT } from "../../support/paths.js";
import { startNatsServer, type NatsServer } from "./nats-server.js";

let nats: NatsServer;
let nc: NatsConnection;
let node: AdapterAgent;
let engine: Server;
let sidecar: AdapterProcess | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  node = await startAdapterAgent(nc);
  const page = readFileSync(join(REPO_ROOT, "agent/src/engines/fixtures/vllm-metrics-1.txt"), "utf8");
  engine = createServer((req, res) => {
    if (req.url !== "/metrics") return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(page);
  });
  await new Promise<void>((resolve) => engine.listen(0, "127.0.0.1", resolve));
});

afterAll(async () => {
  sidecar?.stop();
  await node?.stop();
  await nc?.close();
  await nats?.close();
  await new Promise((resolve) => engine?.close(resolve));
});

describe("engine adapter sidecar", () => {
  it("registers, reports the engine's load over the worker socket to NATS, applies Drain and rejects MigrateOut", async () => {
    const workers = nc.subscribe(subscriptionFor("workers"));
    const loads = nc.subscribe(subscriptionFor("load"));
    const port = (engine.address() as AddressInfo).port;
    sidecar = spawnEngineAdapter({
      GPUFLEET_ENGINE_KIND: "vllm",
      GPUFLEET_ENGINE_METRICS_URL: `http://127.0.0.1:${port}/metrics`,
      GPUFLEET_AGENT_SOCKET: node.socketPath,
      POD_IP: "10.1.2.3",
      GPUFLEET_PORT: "8000",
      POD_NAMESPACE: "llm",
      POD_NAME: "chat-h-p0",
      POD_UID: "uid-77",
      NODE_NAME: node.node,
      GPUFLEET_SERVING_DEPLOYMENT: "chat",
      GPUFLEET_ROLE: "prefill",
      GPUFLEET_MODEL: "meta-llama/Llama-3.1-8B-Instruct",
      GPUFLEET_TP: "2",
      GPUFLEET_PP: "1",
      GPUFLEET_GPU_MODEL: "H100-80GB",
      GPUFLEET_ENGINE_SCRAPE_INTERVAL_MS: "200",
    });

    for await (const m of workers) {
      const e = decodeWorkers(m.subject, m.data);
      if (e.workerId === "uid-77/engine") {
        expect(e).toMatchObject({ event: "registered", podName: "chat-h-p0", node: node.node });
        expect(node.agent.registry.get("uid-77/engine")).toMatchObject({
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
    expect(report, sidecar.log()).toMatchObject({
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
      engine: "vllm",
    });
    // proto3's 0 for "no bootstrap port" does not reach NATS: only SGLang prefill instances report one.
    expect(report).not.toHaveProperty("disaggregationBootstrapPort");

    loads.unsubscribe();
    const afterDrain = nc.subscribe(subscriptionFor("load"));
    const operator = new NodeAgentClient(
      `127.0.0.1:${node.agent.server.operatorPort}`,
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
