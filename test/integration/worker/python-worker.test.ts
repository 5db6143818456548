/**
 * The Python reference worker (agent/worker/, numpy backend on CPU, tiny shapes) beside the real agent (AgentCore,
 * as the agent tests start it) and a real nats-server: three worker processes (colocated, prefill, decode) register
 * over the node-local socket, serve completions and the P/D hand-off through the instance HTTP API, their load
 * reports reach NATS with the fields the gateway routes by, and operator commands sent through the agent are
 * carried out and acknowledged by the worker itself.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import type { V1Node } from "@kubernetes/client-node";
import { connect, type NatsConnection } from "nats";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCore } from "../../../agent/src/agent.js";
import { factsToLabels } from "../../../agent/src/discovery/facts.js";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import type { NodeDirectory } from "../../../agent/src/grpc/node-agent-service.js";
import { NodeDiagnostics } from "../../../agent/src/diagnostics.js";
import { GpuMeasurer } from "../../../agent/src/gpu-diagnostics.js";
import { AgentMetrics } from "../../../agent/src/metrics.js";
import { simulatedNodeFacts } from "../../../agent/src/simulation/model.js";
import { JetStreamTransport } from "../../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../../agent/src/telemetry/publisher.js";
import { validateInstanceLoadFields } from "../../../common/src/engine-api.js";
import { decodeLoad, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import { readSse, tokensOf } from "../../support/gateway.js";
import { REPO_ROOT } from "../../support/paths.js";
import { startPythonWorker, type PythonWorker } from "../../support/python-worker.js";
import { startNatsServer, type NatsServer } from "../agent/nats-server.js";

const NODE = "cpu-node-1";
const facts = simulatedNodeFacts({
  metadata: { name: NODE, annotations: { "kwok.x-k8s.io/node": "fake" }, labels: {} },
} satisfies V1Node);
const nodes: NodeDirectory = {
  nodeNames: () => [NODE],
  facts: (n) => (n === NODE ? facts : undefined),
  labels: (n) => (n === NODE ? factsToLabels(facts) : undefined),
};
const TINY_SHAPE = {
  name: "tiny-llama",
  layers: 2,
  hiddenSize: 64,
  heads: 4,
  kvHeads: 2,
  intermediateSize: 128,
  vocabSize: 512,
};
const PROMPT = "Explain paged attention to a platform engineer in one sentence.";
const NUM_BLOCKS = 256;
const PYTHON = join(REPO_ROOT, ".gpufleet/pyvenv/bin/python");
const WORKER_DIR = join(REPO_ROOT, "agent/worker");

let nats: NatsServer;
let nc: NatsConnection;
let agent: AgentCore;
let operator: NodeAgentClient;
let dir: string;
const workers: Record<"colocated" | "prefill" | "decode", PythonWorker> = {} as never;

async function startWorker(role: "colocated" | "prefill" | "decode", socket: string): Promise<PythonWorker> {
  return startPythonWorker({
    python: PYTHON,
    workerDir: WORKER_DIR,
    args: [
      "--backend",
      "numpy",
      "--role",
      role,
      "--num-blocks",
      String(NUM_BLOCKS),
      "--block-size",
      "4",
      "--max-num-batched-tokens",
      "16",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--load-interval-ms",
      "200",
    ],
    env: {
      GPUFLEET_AGENT_SOCKET: socket,
      POD_NAMESPACE: "serving",
      POD_NAME: `tiny-${role}-0`,
      POD_UID: `uid-${role}`,
      NODE_NAME: NODE,
      GPUFLEET_MODEL_SHAPE: JSON.stringify(TINY_SHAPE),
      GPUFLEET_SERVING_DEPLOYMENT: "serving/tiny",
      GPUFLEET_GPU_MODEL: "cpu",
    },
  });
}

beforeAll(async () => {
  execFileSync("bash", [join(REPO_ROOT, "scripts/test-python.sh"), "--venv-only"], { stdio: "inherit" });
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  dir = mkdtempSync(join(tmpdir(), "gpufleet-pyworker-"));
  const socket = join(dir, "agent.sock");
  // The real GPU diagnostics path: the worker's CLI in the CI venv, which has no torch (so no GPU to measure).
  const measurer = new GpuMeasurer({ python: PYTHON, workerDir: WORKER_DIR });
  const diagnostics = new NodeDiagnostics({
    rediscover: async () => facts,
    publishedLabels: (n) => nodes.labels(n),
    sampleRdma: async () => undefined,
    measureGpu: (_n, d, budgetMs) => measurer.measure(d, budgetMs),
  });
  agent = new AgentCore(
    {
      workerSocketPath: socket,
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: 500,
      missedHeartbeatsLimit: 4,
      publisherLimits: { ...DEFAULT_PUBLISHER_LIMITS, flushIntervalMs: 50 },
    },
    await JetStreamTransport.connect(nc),
    nodes,
    diagnostics,
    new AgentMetrics(new Registry()),
    () => {},
  );
  await agent.start();
  operator = new NodeAgentClient(`127.0.0.1:${agent.server.operatorPort}`, grpc.credentials.createInsecure(), 10_000);
  // allSettled: a worker that failed to start must not leave the others running (afterAll stops those it knows).
  const roles = ["colocated", "prefill", "decode"] as const;
  const started = await Promise.allSettled(roles.map((r) => startWorker(r, socket)));
  started.forEach((s, i) => {
    if (s.status === "fulfilled") workers[roles[i]!] = s.value;
  });
  const failed = started.find((s) => s.status === "rejected");
  if (failed) throw failed.reason;
});

afterAll(async () => {
  await Promise.all(Object.values(workers).map((w) => w?.stop()));
  operator?.close();
  await agent?.stop();
  await nc?.close();
  await nats?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = (url: string, body: object, headers: Record<string, string> = {}): Promise<Response> =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

/** Waits (bounded) for a load entry of `workerId` that satisfies `pred`. */
async function loadEntry(workerId: string, pred: (e: LoadEntry) => boolean, timeoutMs = 15_000): Promise<LoadEntry> {
  const sub = nc.subscribe(subscriptionFor("load"));
  const timer = setTimeout(() => sub.unsubscribe(), timeoutMs);
  try {
    for await (const m of sub) {
      const hit = decodeLoad(m.subject, m.data).reports.find((r) => r.workerId === workerId && pred(r));
      if (hit) return hit;
    }
  } finally {
    clearTimeout(timer);
    sub.unsubscribe();
  }
  throw new Error(`no load report of ${workerId} matching within ${timeoutMs} ms`);
}

describe("Python reference worker driven by the agent (CPU, numpy)", () => {
  it("each worker process registered over the node-local socket with its pod identity and kind", async () => {
    const listed = await operator.listWorkers(NODE);
    const byId = new Map(listed.workers.map((w) => [w.workerId, w]));
    expect(byId.get(workers.colocated.workerId)).toMatchObject({
      podName: "tiny-colocated-0",
      kind: "serving",
      rank: -1,
      simulated: false,
      state: "healthy",
    });
    expect(byId.get(workers.prefill.workerId)).toMatchObject({ kind: "serving-prefill" });
    expect(byId.get(workers.decode.workerId)).toMatchObject({ kind: "serving-decode" });
  });

  it("streams a completion through the instance API: one event per token, usage, [DONE]", async () => {
    const res = await post(
      `${workers.colocated.engineUrl}/v1/completions`,
      { model: "tiny-llama", prompt: PROMPT, max_tokens: 12, stream: true },
      { "x-request-id": "it-1" },
    );
    expect(res.status).toBe(200);
    const { events, done } = await readSse(res);
    expect(done).toBe(true);
    expect(tokensOf(events)).toHaveLength(12);
    expect(events.at(-1)).toMatchObject({
      choices: [{ finish_reason: "length" }],
      usage: { prompt_tokens: Math.ceil(Buffer.byteLength(PROMPT) / 4), completion_tokens: 12 },
    });
  });

  it("hands a prefilled request's KV to the decode worker, which continues with the colocated worker's tokens", async () => {
    const whole = (await (
      await post(`${workers.colocated.engineUrl}/v1/completions`, {
        model: "tiny-llama",
        prompt: PROMPT,
        max_tokens: 8,
      })
    ).json()) as { choices: { text: string }[] };
    const pre = await post(`${workers.prefill.engineUrl}/gpufleet/v1/prefill`, {
      request_id: "pd-1",
      model: "tiny-llama",
      prompt: PROMPT,
      max_tokens: 8,
    });
    expect(pre.status).toBe(200);
    const handoff = (await pre.json()) as {
      prompt_tokens: number;
      first_token: { text: string };
      kv: { source_url: string; bytes: number; blocks: number };
    };
    expect(handoff.kv).toMatchObject({
      source_url: workers.prefill.engineUrl,
      blocks: Math.ceil(handoff.prompt_tokens / 4),
    });
    const dec = await post(`${workers.decode.engineUrl}/gpufleet/v1/decode`, {
      request_id: "pd-1",
      model: "tiny-llama",
      prompt_tokens: handoff.prompt_tokens,
      max_tokens: 8,
      first_token: handoff.first_token,
      kv: handoff.kv,
      stream: true,
    });
    const { events, done } = await readSse(dec);
    expect(done).toBe(true);
    expect(handoff.first_token.text + tokensOf(events).join("")).toBe(whole.choices[0]!.text);
    expect(events.at(-1)).toMatchObject({ usage: { completion_tokens: 8 } });
  });

  it("reports load that reaches NATS with the fields the gateway routes by", async () => {
    const entry = await loadEntry(workers.decode.workerId, () => true);
    expect(validateInstanceLoadFields(entry)).toMatchObject({ ok: true });
    expect(entry).toMatchObject({
      podNamespace: "serving",
      podName: "tiny-decode-0",
      engineUrl: workers.decode.engineUrl,
      role: "decode",
      model: "tiny-llama",
      servingDeployment: "serving/tiny",
      kvBlocksTotal: NUM_BLOCKS,
      blockSizeTokens: 4,
      gpuModel: "cpu",
      draining: false,
    });
  });

  it("acknowledges a drain as applied and then refuses new work; live migration is rejected with its reason", async () => {
    const w = workers.colocated;
    const migrate = await operator.sendWorkerCommand(w.workerId, {
      commandId: "mig-1",
      migrateOut: { requestId: "it-1", targetWorkerId: workers.decode.workerId },
    });
    expect(migrate).toMatchObject({ commandId: "mig-1", outcome: "rejected" });
    expect(migrate.reason).toMatch(/live migration is not implemented/);
    const drain = await operator.sendWorkerCommand(w.workerId, { commandId: "drain-1", drain: { deadlineMs: 0 } });
    expect(drain).toMatchObject({ commandId: "drain-1", outcome: "applied" });
    expect((await fetch(`${w.engineUrl}/health`)).status).toBe(503);
    const refused = await post(`${w.engineUrl}/v1/completions`, { model: "tiny-llama", prompt: PROMPT, max_tokens: 2 });
    expect(refused.status).toBe(503);
    expect(await loadEntry(w.workerId, (e) => e.draining === true)).toMatchObject({ draining: true });
    expect(w.logs).toContainEqual(
      expect.objectContaining({ event: "command", command_id: "drain-1", kind: "drain", outcome: "applied" }),
    );
  });

  it.each(["gpu-gemm", "hbm-copy", "all-reduce"])(
    "answers RunDiagnostic %s with FAILED_PRECONDITION and the CLI's reason on a node without a GPU",
    async (name) => {
      const err = await operator.runDiagnostic(NODE, name, 30_000).then(
        () => undefined,
        (e: unknown) => e as grpc.ServiceError,
      );
      expect(err?.code).toBe(grpc.status.FAILED_PRECONDITION);
      expect(err?.details).toMatch(/torch is not installed/);
    },
  );
});
