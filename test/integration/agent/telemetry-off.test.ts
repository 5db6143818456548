/**
 * The chart's default `natsUrl: ""` means "no NATS": the agent must run without it (serve workers and the
 * operator), count every telemetry item it cannot send as dropped with reason no_transport, and say telemetry is
 * off in its readiness answer and its log, instead of crash-looping on a connect to 127.0.0.1:4222.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Node } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCore } from "../../../agent/src/agent.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../../agent/src/telemetry/publisher.js";
import { NodeDiagnostics } from "../../../agent/src/diagnostics.js";
import { factsToLabels } from "../../../agent/src/discovery/facts.js";
import { WorkerClient } from "../../../agent/src/grpc/client.js";
import type { NodeDirectory } from "../../../agent/src/grpc/node-agent-service.js";
import { AgentMetrics } from "../../../agent/src/metrics.js";
import { simulatedNodeFacts } from "../../../agent/src/simulation/model.js";
import { freePorts } from "../../harness/cluster.js";
import { getTestCluster } from "../../harness/context.js";
import { startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

const NODE = "gpu-node-1";
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

describe("the agent process with an empty NATS URL (the chart's default)", () => {
  let agent: ComponentProcess | undefined;
  let httpPort: number;

  beforeAll(async () => {
    [httpPort] = (await freePorts(1)) as [number];
    ({ agent } = await startSimulatedAgent({
      kubeconfigPath: getTestCluster().kubeconfigPath,
      natsUrl: "",
      name: "agent-no-nats",
      env: { GPUFLEET_AGENT_HTTP_PORT: String(httpPort) },
    }));
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it("serves, is ready, and says telemetry is off", async () => {
    expect(agent!.logs.find((l) => l.msg === "agent serving")).toMatchObject({ telemetry: "off" });
    expect(
      agent!.logs.some(
        (l) =>
          l.msg ===
          "telemetry off: no NATS URL configured (GPUFLEET_NATS_URL); telemetry is counted as dropped (reason no_transport)",
      ),
    ).toBe(true);
    let res: Response | undefined;
    for (let i = 0; i < 100 && res?.status !== 200; i++) {
      res = await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined);
      if (res?.status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(res?.status).toBe(200);
    expect(await res!.text()).toBe("ready (telemetry off: no NATS URL)");
  });
});

describe("AgentCore without a transport", () => {
  let dir: string;
  let core: AgentCore;
  let worker: WorkerClient;
  const registry = new Registry();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gpufleet-agent-off-"));
    const diagnostics = new NodeDiagnostics({
      rediscover: async () => facts,
      publishedLabels: (n) => nodes.labels(n),
      sampleRdma: async () => undefined,
    });
    core = new AgentCore(
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
      undefined,
      nodes,
      diagnostics,
      new AgentMetrics(registry),
      () => {},
    );
    await core.start();
    worker = new WorkerClient(`unix:${join(dir, "agent.sock")}`);
  });
  afterAll(async () => {
    worker?.close();
    await core?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("serves workers, forwards nothing and counts every item as dropped with reason no_transport", async () => {
    expect(
      await worker.register({
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
      }),
    ).toEqual({ heartbeatIntervalMs: 200, missedHeartbeatsLimit: 2 });
    const records = Array.from({ length: 7 }, (_, i) => ({
      communicator: "job-a",
      rank: 0,
      nRanks: 2,
      collective: "AllReduce",
      sequence: i,
      bytes: 1024,
      startUnixUs: 1_700_000_000_000_000 + i,
      endUnixUs: 1_700_000_000_000_500 + i,
      peers: [],
    }));
    expect(await worker.reportCollectives({ workerId: "uid-1/0", records })).toEqual({ accepted: 0 });
    const dropped = (await registry.getSingleMetric("gpufleet_agent_telemetry_dropped_total")!.get()).values;
    expect(
      dropped
        .filter((v) => v.labels.reason === "no_transport")
        .map((v) => [v.labels.stream, v.value])
        .sort(),
    ).toEqual([
      ["collectives", 7],
      ["workers", 1],
    ]);
    expect(
      (await registry.getSingleMetric("gpufleet_agent_telemetry_published_total")!.get()).values.reduce(
        (n, v) => n + v.value,
        0,
      ),
    ).toBe(0);
  });
});
