/**
 * Live KV migration on the local cluster (issue 11 §2), every part real: the operator (in-process, mTLS to the
 * agent), the agent (its own process, simulation mode) running colocated instances on kwok nodes of this test,
 * and the gateway (its own process). A client streams a long completion through the gateway; the test orders a
 * migration of that request with MigrateOut through the operator's agent client (SendWorkerCommand over mTLS,
 * what the serving scheduler does), and checks what the client, the instances and the acknowledgement saw:
 *
 * 1. committed mid-stream: the client's tokens are exactly those of an unmigrated run (no duplicate, no gap), the
 *    destination owns the request afterwards (its load report runs it, the source's no longer does), the gateway
 *    counted one followed migration, and the ack is `applied` with the stages and downtime;
 * 2. the destination's pod is killed mid-migration (stages over a 1 Gbit/s node take seconds): the ack is
 *    `failed` (destination-died), the request stays on the source and the client gets every token;
 * 3. the destination is out of KV memory: refused at the pre-allocation, the ack says so, the request stays;
 * 4. (all of them) the acknowledgement reports what happened, not that the command arrived;
 * 5. a disaggregated request moves between decode instances with the stream as exact (the prefill instance's first
 *    token is index 0 of the completion, so the decode stream resumes at the count the gateway relayed).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection, type Subscription } from "nats";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { placeholderText } from "../../../agent/src/simulation/instances/tokens.js";
import { EnginePath } from "../../../common/src/engine-api.js";
import { decodeLoad, Stream, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { llama3ShapeJson, simulatedNodeBody, TEST_ONLY_TAINT } from "../../support/builders.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { startGatewayProcess, type GatewayProcess } from "../../support/gateway.js";
import {
  metricValue,
  startInProcessOperator,
  startSimulatedAgent,
  type ComponentProcess,
} from "../../support/operator.js";
import { SseParser } from "../../../gateway/src/openai/sse.js";
import { writeOperatorIssuedAgentCerts } from "../../support/agent-certs.js";

const run = `${Date.now().toString(36)}-${process.pid}`;
const MODEL = `migrate-${run}`;
// Llama-3-8B's shape (131,072 KV bytes per token) under a name of this test's own, so no other test's instance
// is in the gateway's route; 8,192 tokens of context so a request can run long.
const shapeOf = (name: string) => llama3ShapeJson(name);
const SHAPE = shapeOf(MODEL);
/** The same shape under another name: a disaggregated route of its own (prefill and decode instances). */
const MODEL_PD = `${MODEL}-pd`;

let cluster: TestCluster;
let namespace: string;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
let gateway: GatewayProcess | undefined;
let nats: NatsConnection;
let loadSub: Subscription | undefined;
const tlsDir = mkdtempSync(join(tmpdir(), "gpufleet-migrate-tls-"));
const nodes: string[] = [];
const loads: (LoadEntry & { node: string; receivedMs: number })[] = [];

interface Instance {
  pod: string;
  node: string;
  workerId: string;
  engineUrl: string;
}

const latest = (pod: string) => loads.filter((l) => l.podName === pod && l.podNamespace === namespace).at(-1);

async function createNode(name: string, annotations: Record<string, string>): Promise<void> {
  await cluster.core.createNode({ body: simulatedNodeBody(name, annotations) });
  nodes.push(name);
}

/** A colocated instance of MODEL bound to `node` (as a scheduler would bind it), once it reports its engineUrl. */
async function startInstance(pod: string, node: string, role = "colocated", shape = SHAPE): Promise<Instance> {
  const env = { GPUFLEET_ROLE: role, GPUFLEET_MODEL_SHAPE: shape, GPUFLEET_TP: "1", GPUFLEET_PP: "1" };
  await cluster.core.createNamespacedPod({
    namespace,
    body: {
      metadata: {
        name: pod,
        labels: {
          "gpufleet.io/serving-deployment": role === "colocated" ? "manual" : "manual-pd",
          "gpufleet.io/role": role,
        },
      },
      spec: {
        nodeName: node,
        tolerations: [{ key: TEST_ONLY_TAINT.key, operator: "Exists" }],
        containers: [
          {
            name: "engine",
            image: "vllm/vllm-openai:v0.11.0",
            env: Object.entries(env).map(([name, value]) => ({ name, value })),
          },
        ],
      },
    },
  });
  const report = await waitFor(() => (latest(pod)?.engineUrl ? latest(pod) : undefined), {
    description: `a load report with an engineUrl from ${pod}`,
    timeoutMs: 60_000,
  });
  return { pod, node, workerId: report.workerId, engineUrl: report.engineUrl! };
}

async function stopInstance(pod: string): Promise<void> {
  await cluster.core.deleteNamespacedPod({ namespace, name: pod, gracePeriodSeconds: 0 }).catch(() => undefined);
}

/** Waits until the gateway routes exactly these instances of MODEL. */
async function gatewayRoutes(
  count: number,
  timeoutMs = 60_000,
  model = MODEL,
  role: "colocated" | "decode" = "colocated",
): Promise<void> {
  let last: unknown;
  await waitFor(
    async () => {
      const body = (await (await fetch(`${gateway!.url}/v1/models`)).json()) as {
        data: { id: string; gpufleet: { instances: { colocated: number; decode: number } } }[];
      };
      const route = body.data.find((m) => m.id === model);
      last = route;
      return (route?.gpufleet.instances[role] ?? 0) === count;
    },
    { description: `the gateway routing ${count} ${role} instance(s) of ${model}`, timeoutMs },
  ).catch((err: Error) => {
    const now = Date.now();
    const pods = [...new Set(loads.map((l) => l.podName))].map(
      (p) => `${p}: last report ${now - latest(p)!.receivedMs} ms ago`,
    );
    const agentLines = agent!.logs
      .filter((l) => /simulated worker (started|stopped)|pod/.test(String(l.msg)))
      .slice(-8)
      .map((l) => JSON.stringify(l));
    throw new Error(
      `${err.message}; route ${JSON.stringify(last)}; reports ${pods.join(", ")}; agent ${agentLines.join(" | ")}`,
    );
  });
}

interface Streamed {
  /** The instance that answered first (x-gpufleet-instance). */
  instanceId: string;
  tokens: string[];
  /** Resolves with the whole stream: its texts, whether [DONE] came, and any error event. */
  finished: Promise<{ text: string; tokens: number; done: boolean; error?: unknown }>;
}

/** A streamed completion through the gateway; resolves once `afterTokens` tokens arrived (the stream goes on). */
async function streamThroughGateway(
  requestId: string,
  promptTokens: number,
  maxTokens: number,
  afterTokens: number,
  model = MODEL,
): Promise<Streamed> {
  const response = await fetch(`${gateway!.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-request-id": requestId },
    body: JSON.stringify({ model, prompt: "x".repeat(4 * promptTokens), max_tokens: maxTokens, stream: true }),
  });
  if (response.status !== 200) throw new Error(`the gateway answered ${response.status}: ${await response.text()}`);
  const instanceId = (response.headers.get("x-gpufleet-instance") ?? "").replace(/^colocated:/, "");
  const tokens: string[] = [];
  let reached: () => void = () => {};
  const enough = new Promise<void>((resolve) => (reached = resolve));
  const finished = (async () => {
    const parser = new SseParser();
    const reader = response.body!.getReader();
    let done = false;
    let error: unknown;
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      for (const data of parser.push(chunk.value)) {
        if (data === "[DONE]") {
          done = true;
          continue;
        }
        const event = JSON.parse(data) as { error?: unknown; choices?: { text?: string }[] };
        if (event.error) error = event.error;
        const text = event.choices?.[0]?.text;
        if (text) tokens.push(text);
        if (tokens.length >= afterTokens) reached();
      }
    }
    reached();
    return { text: tokens.join(""), tokens: tokens.length, done, error };
  })();
  await enough;
  return { instanceId, tokens, finished };
}

function migrateOut(source: Instance, requestId: string, destination: Instance) {
  return operator!.agents.sendWorkerCommand(
    source.node,
    source.workerId,
    {
      commandId: `migrate-${requestId}`,
      migrateOut: {
        requestId,
        targetWorkerId: destination.workerId,
        targetPod: `${namespace}/${destination.pod}`,
        targetUrl: destination.engineUrl,
      },
    },
    60_000,
  );
}

async function gatewayMetric(name: string, labels: Record<string, string>): Promise<number | undefined> {
  return metricValue(await (await fetch(`${gateway!.url}/metrics`)).text(), name, labels);
}

beforeAll(async () => {
  cluster = testCluster();
  if (!cluster.natsUrl) throw new Error("this test needs the harness's nats-server");
  nats = await connect({ servers: cluster.natsUrl });
  loadSub = nats.subscribe(subscriptionFor(Stream.load), {
    callback: (_err, m) => {
      const message = decodeLoad(m.subject, m.data);
      for (const r of message.reports)
        if (r.model === MODEL || r.model === MODEL_PD) loads.push({ ...r, node: message.node, receivedMs: Date.now() });
    },
  });
  namespace = await cluster.freshNamespace("migrate");
  operator = await startInProcessOperator(cluster, "migrate-it", {
    natsUrl: cluster.natsUrl,
    durablePrefix: `migrate-${process.pid}`,
  });
  await writeOperatorIssuedAgentCerts(cluster, tlsDir);
  agent = (
    await startSimulatedAgent({
      kubeconfigPath: cluster.kubeconfigPath,
      natsUrl: cluster.natsUrl,
      name: "agent-migrate",
      env: {
        GPUFLEET_AGENT_TLS_DIR: tlsDir,
        GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200",
        GPUFLEET_AGENT_ENGINE_PORT: "0",
      },
    })
  ).agent;
  gateway = await startGatewayProcess({ GPUFLEET_GATEWAY_NATS_URL: cluster.natsUrl });
  await createNode(`mig-a-${run}`, { "gpufleet.io/sim-gpu-model": "H100-80GB" });
  await createNode(`mig-b-${run}`, { "gpufleet.io/sim-gpu-model": "H100-80GB" });
  // 8 × 1 Gbit/s NICs for 8 GPUs: 0.1 GB/s per GPU, so a stage of 4,000 tokens of KV (524 MB) takes ~5 s.
  await createNode(`mig-slow-${run}`, {
    "gpufleet.io/sim-gpu-model": "H100-80GB",
    "gpufleet.io/sim-nic-bandwidth-gbps": "1",
  });
  // A10 24 GB: 2,878 blocks of KV for this model, which a few long requests fill.
  await createNode(`mig-small-${run}`, { "gpufleet.io/sim-gpu-model": "A10-24GB" });
  // The operator reaches the agent of a node through the endpoint the agent advertises on it.
  await waitFor(
    async () => {
      for (const name of nodes)
        if (!(await cluster.core.readNode({ name })).metadata?.annotations?.["gpufleet.io/agent-endpoint"])
          return false;
      return true;
    },
    { description: "the agent advertising its endpoint on the test's nodes", timeoutMs: 60_000 },
  );
}, 300_000);

afterAll(async () => {
  loadSub?.unsubscribe();
  await gateway?.stop();
  await agent?.stop();
  await operator?.stop();
  await nats?.close();
  for (const name of nodes) await cluster?.core.deleteNode({ name }).catch(() => undefined);
  rmSync(tlsDir, { recursive: true, force: true });
});

// Each test starts its own instances; whatever it left (a failed test included) goes before the next one.
afterEach(async () => {
  const pods = (await cluster.core.listNamespacedPod({ namespace })).items;
  for (const p of pods) await stopInstance(p.metadata!.name!);
  await gatewayRoutes(0, 20_000).catch(() => undefined);
}, 120_000);

describe("live migration through the gateway", () => {
  it("moves a streaming request mid-stream: the client's tokens are exactly an unmigrated run's, and the destination owns the request after", async () => {
    const a = await startInstance("inst-a", `mig-a-${run}`);
    const b = await startInstance("inst-b", `mig-b-${run}`);
    await gatewayRoutes(2);
    const requestId = `mig-commit-${run}`;
    const maxTokens = 3_000;
    const streamed = await streamThroughGateway(requestId, 2_000, maxTokens, 100);
    const [source, destination] = streamed.instanceId === a.workerId ? [a, b] : [b, a];
    expect([a.workerId, b.workerId]).toContain(streamed.instanceId);

    const ack = await migrateOut(source, requestId, destination);
    expect(ack, JSON.stringify(ack)).toMatchObject({ outcome: "applied" });
    expect(ack.reason).toMatch(
      new RegExp(
        `migrated request ${requestId} to ${destination.workerId}: \\d+ stage\\(s\\), \\d+ blocks, \\d+ bytes, downtime [0-9.]+ ms, next token \\d+`,
      ),
    );
    const nextToken = Number(/next token (\d+)/.exec(ack.reason)![1]);
    expect(nextToken).toBeGreaterThanOrEqual(100);
    expect(nextToken).toBeLessThan(maxTokens);

    // Owned by the destination now: its reports run the request, the source's run nothing (while it streams on).
    const ackedMs = Date.now();
    await waitFor(
      () => {
        const src = loads.filter((l) => l.podName === source.pod && l.receivedMs > ackedMs).at(-1);
        const dst = loads.filter((l) => l.podName === destination.pod && l.receivedMs > ackedMs).at(-1);
        return src && dst && src.runningRequests === 0 && dst.runningRequests === 1 ? true : undefined;
      },
      { description: "the destination running the request and the source nothing", timeoutMs: 20_000 },
    );
    expect(streamed.tokens.length).toBeLessThan(maxTokens);

    const result = await streamed.finished;
    expect(result.error).toBeUndefined();
    expect(result.done).toBe(true);
    expect(result.tokens).toBe(maxTokens);
    expect(result.text).toBe(placeholderText(0, maxTokens));
    expect(
      await gatewayMetric("gpufleet_gateway_migrations_followed_total", {
        model: MODEL,
        role: "colocated",
        outcome: "followed",
      }),
    ).toBe(1);

    // The resume stream is gone once it ended: a second client cannot take the request over.
    const again = await fetch(`${destination.engineUrl}${EnginePath.migrations}/${requestId}/stream?from=${nextToken}`);
    expect(again.status).toBe(404);
  }, 300_000);

  it("keeps the request on the source when the destination's pod is killed mid-migration; the client completes", async () => {
    const fast = await startInstance("inst-fast", `mig-a-${run}`);
    const slow = await startInstance("inst-slow", `mig-slow-${run}`);
    await gatewayRoutes(2);
    const requestId = `mig-kill-${run}`;
    const maxTokens = 3_000;
    // 4,000 prompt tokens: 524 MB of KV, ~5 s over the slow node's link (either direction: its side is the slower).
    const followedBefore =
      (await gatewayMetric("gpufleet_gateway_migrations_followed_total", {
        model: MODEL,
        role: "colocated",
        outcome: "followed",
      })) ?? 0;
    const streamed = await streamThroughGateway(requestId, 4_000, maxTokens, 50);
    const [source, destination] = streamed.instanceId === fast.workerId ? [fast, slow] : [slow, fast];
    const acking = migrateOut(source, requestId, destination);
    // The destination holds the pre-allocation (it reports migrating in): kill its pod now.
    const askedMs = Date.now();
    await waitFor(
      () =>
        loads.some((l) => l.podName === destination.pod && l.receivedMs > askedMs && l.migrating === "in") || undefined,
      {
        description: "the destination reporting a migration in",
        timeoutMs: 20_000,
      },
    );
    await stopInstance(destination.pod);
    const ack = await acking;
    expect(ack, JSON.stringify(ack)).toMatchObject({ outcome: "failed" });
    expect(ack.reason).toMatch(new RegExp(`request ${requestId} stays on ${source.workerId}: destination-died`));

    const result = await streamed.finished;
    expect(result.error).toBeUndefined();
    expect(result.done).toBe(true);
    expect(result.text).toBe(placeholderText(0, maxTokens));
    // The source kept it to the end: no migration was followed.
    expect(
      (await gatewayMetric("gpufleet_gateway_migrations_followed_total", {
        model: MODEL,
        role: "colocated",
        outcome: "followed",
      })) ?? 0,
    ).toBe(followedBefore);
  }, 300_000);

  it("refuses at the pre-allocation when the destination is out of KV memory; the request stays on the source", async () => {
    const small = await startInstance("inst-small", `mig-small-${run}`);
    // Fill the small instance with long requests sent to it directly (6 × 7,500 tokens of its 46,048).
    const fillers = Array.from({ length: 6 }, (_, i) =>
      fetch(`${small.engineUrl}${EnginePath.completions}`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": `filler-${i}-${run}` },
        body: JSON.stringify({ model: MODEL, prompt: "y".repeat(4 * 7_000), max_tokens: 500, stream: true }),
      }).then(async (r) => r.text()),
    );
    await waitFor(() => ((latest("inst-small")?.runningRequests ?? 0) === 6 ? true : undefined), {
      description: "six fillers running on the small instance",
      timeoutMs: 60_000,
    });
    const big = await startInstance("inst-big", `mig-b-${run}`);
    await gatewayRoutes(2);
    const requestId = `mig-oom-${run}`;
    const maxTokens = 2_000;
    // 6,000 prompt tokens: 375 blocks to pre-allocate, more than the ~250 the fillers leave free (2,878 − 6 × 438).
    const streamed = await streamThroughGateway(requestId, 6_000, maxTokens, 20);
    // Freeness dispatch sends it to the idle instance, not the full one.
    expect(streamed.instanceId).toBe(big.workerId);
    const ack = await migrateOut(big, requestId, small);
    expect(ack, JSON.stringify(ack)).toMatchObject({ outcome: "failed" });
    expect(ack.reason).toMatch(
      new RegExp(
        `request ${requestId} stays on ${big.workerId}: destination-out-of-memory: the destination refused the pre-allocation: .*507.*out of KV memory`,
      ),
    );
    const result = await streamed.finished;
    expect(result.error).toBeUndefined();
    expect(result.done).toBe(true);
    expect(result.text).toBe(placeholderText(0, maxTokens));
    await Promise.all(fillers);
  }, 300_000);

  it("moves a disaggregated request between decode instances: the prefill's first token is index 0, and the stream stays exact", async () => {
    const shape = shapeOf(MODEL_PD);
    await startInstance("pd-prefill", `mig-a-${run}`, "prefill", shape);
    const d1 = await startInstance("pd-decode-1", `mig-a-${run}`, "decode", shape);
    const d2 = await startInstance("pd-decode-2", `mig-b-${run}`, "decode", shape);
    await gatewayRoutes(2, 60_000, MODEL_PD, "decode");
    const requestId = `mig-pd-${run}`;
    const maxTokens = 3_000;
    const streamed = await streamThroughGateway(requestId, 2_000, maxTokens, 100, MODEL_PD);
    // The response's headers name the prefill instance only: the decode instance running it says so in its reports.
    const startedMs = Date.now();
    const source = await waitFor(
      () =>
        [d1, d2].find((d) =>
          loads.some((l) => l.podName === d.pod && l.receivedMs > startedMs && l.runningRequests === 1),
        ),
      {
        description: "the decode instance running the request",
        timeoutMs: 20_000,
      },
    );
    const destination = source === d1 ? d2 : d1;
    const ack = await migrateOut(source, requestId, destination);
    expect(ack, JSON.stringify(ack)).toMatchObject({ outcome: "applied" });
    const result = await streamed.finished;
    expect(result.error).toBeUndefined();
    expect(result.done).toBe(true);
    expect(result.text).toBe(placeholderText(0, maxTokens));
    expect(
      await gatewayMetric("gpufleet_gateway_migrations_followed_total", {
        model: MODEL_PD,
        role: "decode",
        outcome: "followed",
      }),
    ).toBe(1);
  }, 300_000);
});
