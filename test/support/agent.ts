/**
 * A node agent in the test process (AgentCore: worker socket, registry, telemetry ingest, JetStream publisher) and
 * a worker speaking the real worker protocol to it over its Unix socket: what a training rank does to report a
 * checkpoint or collective records. Nothing here is mocked; only the process boundary is saved.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { connect, type NatsConnection } from "nats";
import { Registry } from "prom-client";
import { AgentCore } from "../../agent/src/agent.js";
import { factsToLabels, type NodeFacts } from "../../agent/src/discovery/facts.js";
import { WorkerClient } from "../../agent/src/grpc/client.js";
import { AgentMetrics } from "../../agent/src/metrics.js";
import { simulatedNodeFacts } from "../../agent/src/simulation/model.js";
import { JetStreamTransport } from "../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS, type PublisherLimits } from "../../agent/src/telemetry/publisher.js";

export interface TestAgent {
  agent: AgentCore;
  registry: Registry;
  nc: NatsConnection;
  /** A worker client on the agent's socket. */
  worker: WorkerClient;
  /** Registers a training worker of `rank` (of `worldSize`) for `pod` on its node and returns its id. */
  registerPod(pod: V1Pod, rank?: number, worldSize?: number): Promise<string>;
  /** Sum of an agent counter over its label sets, for one stream. */
  counter(name: string, stream: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startTestAgent(opts: {
  natsUrl: string;
  nodeNames: string[];
  publisherLimits?: Partial<PublisherLimits>;
}): Promise<TestAgent> {
  const nc = await connect({
    servers: opts.natsUrl,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    name: "gpufleet-test-agent",
  });
  const dir = mkdtempSync(join(tmpdir(), "gpufleet-agent-"));
  const facts = new Map<string, NodeFacts>(
    opts.nodeNames.map((name) => [
      name,
      simulatedNodeFacts({ metadata: { name, annotations: { "kwok.x-k8s.io/node": "fake" }, labels: {} } }),
    ]),
  );
  const registry = new Registry();
  const socket = join(dir, "agent.sock");
  const agent = new AgentCore(
    {
      workerSocketPath: socket,
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: 60_000,
      missedHeartbeatsLimit: 3,
      publisherLimits: { ...DEFAULT_PUBLISHER_LIMITS, flushIntervalMs: 50, ...opts.publisherLimits },
    },
    await JetStreamTransport.connect(nc, { ackTimeoutMs: 2000 }),
    {
      nodeNames: () => [...facts.keys()],
      facts: (n) => facts.get(n),
      labels: (n) => (facts.get(n) ? factsToLabels(facts.get(n)!) : undefined),
    },
    { run: async () => ({ passed: true, summary: "", details: {} }) },
    new AgentMetrics(registry),
    () => {},
  );
  await agent.start();
  const worker = new WorkerClient(`unix:${socket}`, 10_000);
  return {
    agent,
    registry,
    nc,
    worker,
    async registerPod(pod, rank = 0, worldSize = rank + 1) {
      const workerId = `${pod.metadata?.uid ?? pod.metadata?.name}/${rank}`;
      await worker.register({
        workerId,
        podNamespace: pod.metadata!.namespace!,
        podName: pod.metadata!.name!,
        podUid: pod.metadata?.uid ?? "",
        nodeName: pod.spec!.nodeName!,
        kind: "training",
        rank,
        worldSize,
        simulated: false,
      });
      return workerId;
    },
    async counter(name, stream) {
      const metric = await registry.getSingleMetric(name)!.get();
      return metric.values.filter((v) => v.labels.stream === stream).reduce((s, v) => s + v.value, 0);
    },
    async stop() {
      worker.close();
      await agent.stop();
      await nc.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
