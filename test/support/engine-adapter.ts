/**
 * Test support for the vLLM/SGLang load adapter (agent/src/engines/sidecar.ts): the real node agent on a Unix socket
 * of a temporary folder, publishing to a given NATS server's JetStream, and the adapter as its own process, as its
 * container runs it beside an engine.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Node } from "@kubernetes/client-node";
import type { NatsConnection } from "nats";
import { Registry } from "prom-client";
import { AgentCore } from "../../agent/src/agent.js";
import { NodeDiagnostics } from "../../agent/src/diagnostics.js";
import { factsToLabels, type NodeFacts } from "../../agent/src/discovery/facts.js";
import type { NodeDirectory } from "../../agent/src/grpc/node-agent-service.js";
import { AgentMetrics } from "../../agent/src/metrics.js";
import { simulatedNodeFacts } from "../../agent/src/simulation/model.js";
import { JetStreamTransport } from "../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../agent/src/telemetry/publisher.js";
import { REPO_ROOT } from "./paths.js";

export interface AdapterAgent {
  readonly agent: AgentCore;
  readonly node: string;
  readonly socketPath: string;
  stop(): Promise<void>;
}

/** One simulated (kwok-annotated) node on leaf-0 / island ib-0: its facts and the agent's directory of it alone. */
export function simulatedNodeDirectory(node: string): { facts: NodeFacts; nodes: NodeDirectory } {
  const facts = simulatedNodeFacts({
    metadata: {
      name: node,
      annotations: { "kwok.x-k8s.io/node": "fake" },
      labels: { "gpufleet.io/leaf": "leaf-0", "gpufleet.io/island": "ib-0" },
    },
  } satisfies V1Node);
  const nodes: NodeDirectory = {
    nodeNames: () => [node],
    facts: (n) => (n === node ? facts : undefined),
    labels: (n) => (n === node ? factsToLabels(facts) : undefined),
  };
  return { facts, nodes };
}

/** The node agent of one simulated (kwok-annotated) node, its worker socket in a fresh temporary folder. */
export async function startAdapterAgent(nc: NatsConnection, node = "gpu-node-7"): Promise<AdapterAgent> {
  const { facts, nodes } = simulatedNodeDirectory(node);
  const dir = mkdtempSync(join(tmpdir(), "gpufleet-adapter-"));
  const socketPath = join(dir, "agent.sock");
  const diagnostics = new NodeDiagnostics({
    rediscover: async () => facts,
    publishedLabels: (n) => nodes.labels(n),
    sampleRdma: async () => undefined,
  });
  const agent = new AgentCore(
    {
      workerSocketPath: socketPath,
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
  return {
    agent,
    node,
    socketPath,
    stop: async () => {
      await agent.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface AdapterProcess {
  readonly process: ChildProcess;
  /** What the adapter logged on stderr so far (its JSON lines). */
  log(): string;
  stop(): void;
}

/** The adapter as its container runs it, with the env the operator gives it (operator/src/serving/engines/pod.ts). */
export function spawnEngineAdapter(env: Record<string, string>): AdapterProcess {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "agent/src/engines/sidecar.ts")], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  child.stdout!.resume();
  return { process: child, log: () => log, stop: () => void child.kill("SIGTERM") };
}
