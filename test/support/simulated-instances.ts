/**
 * Simulated serving instances in this process, without a Kubernetes cluster: the agent's own parts as its
 * simulation mode wires them (agent/src/main.ts) — AgentCore with its worker socket and telemetry publisher,
 * SimulationRuntime running the simulated workers over that socket, and the EngineServer that serves their engine
 * API — fed pod objects bound to one simulated node instead of pods from an API server watch. With a NATS URL the
 * agent publishes the workers' load reports to JetStream, where a gateway's NatsLoadInstanceSource reads them: the
 * production path from worker to gateway. Used by the gateway benchmark and the chart's dashboard test.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "nats";
import { Registry } from "prom-client";
import { AgentCore } from "../../agent/src/agent.js";
import { NodeDiagnostics } from "../../agent/src/diagnostics.js";
import { factsToLabels } from "../../agent/src/discovery/facts.js";
import { WorkerClient } from "../../agent/src/grpc/client.js";
import { AgentMetrics } from "../../agent/src/metrics.js";
import { EngineServer } from "../../agent/src/simulation/instances/server.js";
import { KWOK_NODE, SERVING_LABEL, SimEnv, simulatedNodeFacts } from "../../agent/src/simulation/model.js";
import { SimulationRuntime } from "../../agent/src/simulation/runtime.js";
import { JetStreamTransport } from "../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../agent/src/telemetry/publisher.js";

export interface SimulatedPod {
  name: string;
  /** colocated (default), prefill or decode. */
  role?: string;
}

export interface SimulatedInstances {
  /** Served model name (the pods run the agent's default simulated model, Llama-3-8B at TP=1). */
  readonly model: string;
  readonly instances: { podName: string; podUid: string; engineUrl: string }[];
  stop(): Promise<void>;
}

const NODE = "sim-node-0";
const silent = { info: () => {}, warn: () => {} };

export async function startSimulatedInstances(opts: {
  pods: SimulatedPod[];
  natsUrl?: string;
  namespace?: string;
  deployment?: string;
  reportIntervalMs?: number;
}): Promise<SimulatedInstances> {
  const namespace = opts.namespace ?? "bench";
  const deployment = opts.deployment ?? "chat";
  const reportIntervalMs = opts.reportIntervalMs ?? 1000;
  const dir = mkdtempSync(join(tmpdir(), "gpufleet-sim-instances-"));
  const socket = join(dir, "agent.sock");
  const facts = simulatedNodeFacts({ metadata: { name: NODE, annotations: { [KWOK_NODE.key]: KWOK_NODE.value } } });
  const nc: NatsConnection | undefined = opts.natsUrl
    ? await connect({ servers: opts.natsUrl, name: "gpufleet-agent-sim-instances" })
    : undefined;
  const agent = new AgentCore(
    {
      workerSocketPath: socket,
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: reportIntervalMs,
      missedHeartbeatsLimit: 5,
      publisherLimits: DEFAULT_PUBLISHER_LIMITS,
    },
    nc ? await JetStreamTransport.connect(nc) : undefined,
    {
      nodeNames: () => [NODE],
      facts: (n) => (n === NODE ? facts : undefined),
      labels: (n) => (n === NODE ? factsToLabels(facts) : undefined),
    },
    new NodeDiagnostics({
      rediscover: async () => facts,
      publishedLabels: () => factsToLabels(facts),
      sampleRdma: async () => undefined,
    }),
    new AgentMetrics(new Registry()),
    () => {},
  );
  await agent.start();
  const client = new WorkerClient(`unix:${socket}`);
  // Each refers to the other only in callbacks made after both exist.
  const engines: EngineServer = new EngineServer(
    { port: 0, bindHost: "127.0.0.1", advertisedHost: "127.0.0.1" },
    (uid) => sim.instance(uid),
    silent,
  );
  await engines.start();
  const sim: SimulationRuntime = new SimulationRuntime(
    client,
    (n) => (n === NODE ? facts : undefined),
    reportIntervalMs,
    silent,
    Date.now,
    { engineUrlOf: (uid) => engines.engineUrl(uid) },
  );
  const instances: SimulatedInstances["instances"] = [];
  for (const p of opts.pods) {
    const podUid = `sim-${namespace}-${p.name}`;
    const pod: V1Pod = {
      metadata: { name: p.name, namespace, uid: podUid, labels: { [SERVING_LABEL]: deployment } },
      spec: {
        nodeName: NODE,
        containers: [{ name: "engine", env: [{ name: SimEnv.role, value: p.role ?? "colocated" }] }],
      },
      status: { phase: "Running" },
    };
    await sim.syncPod(pod);
    if (!sim.instance(podUid)) throw new Error(`simulated pod ${p.name} runs no serving instance`);
    instances.push({ podName: p.name, podUid, engineUrl: engines.engineUrl(podUid) });
  }
  return {
    model: sim.instance(instances[0]?.podUid ?? "")?.modelName ?? "",
    instances,
    async stop() {
      sim.stopAll();
      await engines.stop();
      client.close();
      await agent.stop();
      await nc?.drain();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
