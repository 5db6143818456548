/**
 * gpufleet serving end to end on the local cluster: ServingDeployments applied with kubectl, the operator
 * (in-process) planning them and creating their pods on kwok GPU nodes, the agent (its own process, simulation mode)
 * running the pods' simulated engines behind its engine API and publishing their load to JetStream, and the gateway
 * (its own process) learning the instances from those reports and serving OpenAI requests through them.
 * - colocated and disaggregated (prefill → KV pulled by decode → stream) completions, streamed and whole, chat too,
 *   with the placeholder text and usage the instances produce;
 * - bad requests: 400/404 in OpenAI's error shape, including a refusal the instance itself sends (context length);
 * - a client disconnect cancels the request on the instance; a burst spreads over equal instances;
 * - a decode pod deleted, the agent stopped, the agent killed, each under a running stream: the client gets an
 *   error event and the stream ends, never a hang (the first two carry the instance's own error event's reason);
 * - a dead instance (a report pointing at a closed port) is retried on a live one, or answered 503;
 * - SIGTERM lets an in-flight stream finish.
 *
 * The STAND-IN test instance (test/support/test-instance/) remains for one behaviour only: an instance answering 429.
 * A simulated instance never refuses for load: like vLLM it queues a request its KV cache cannot hold yet (and
 * reports the queue), so the "every instance tried answered 429" path cannot be produced with it.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { connect, type NatsConnection, type Subscription } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { placeholderText } from "../../../agent/src/simulation/instances/tokens.js";
import { estimateTokens } from "../../../common/src/engine-api.js";
import {
  decodeLoad,
  encodeJson,
  Schema,
  Stream,
  subjectFor,
  subscriptionFor,
  type LoadEntry,
  type LoadMessage,
} from "../../../common/src/telemetry/subjects.js";
import type { OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { SseParser } from "../../../gateway/src/openai/sse.js";
import {
  startGatewayProcess,
  startTestInstanceProcess,
  tokensOf,
  type GatewayProcess,
  type InstanceProcess,
} from "../../support/gateway.js";
import { kubectl } from "../../support/kubectl.js";
import { startInProcessOperator, startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

const run = Date.now().toString(36);
/** Model names of this run: the gateway routes by model name, so other files' instances never mix in. */
const COLO = `gw-colo-${run}`;
const DISAGG = `gw-disagg-${run}`;
const OVERLOADED = `gw-overloaded-${run}`;
const DEAD = `gw-dead-${run}`;

let cluster: TestCluster;
let namespace: string;
let operator: OperatorHandle | undefined;
let agent: ComponentProcess | undefined;
let gateway: GatewayProcess;
let standIn: InstanceProcess | undefined;
let nats: NatsConnection;
let loadSub: Subscription | undefined;
const loads: (LoadEntry & { receivedMs: number })[] = [];
let deadReports: NodeJS.Timeout | undefined;

interface ModelEntry {
  id: string;
  object: string;
  gpufleet: { mode: string; servingDeployments: string[]; instances: Record<string, number> };
}

/** A ServingDeployment of a Llama-3-8B-shaped model under its own name, applied with kubectl as a user would. */
function servingDeployment(
  name: string,
  model: string,
  mode: "colocated" | "disaggregated",
  arrivalRatePerSec: number,
): object {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name, namespace },
    spec: {
      model: {
        name: model,
        layers: 32,
        hiddenSize: 4096,
        heads: 32,
        kvHeads: 8,
        vocabSize: 128256,
        intermediateSize: 14336,
        paramsBillions: 8.03,
      },
      gpu: { model: "H100-80GB" },
      mode,
      engine: { image: "vllm/vllm-openai:v0.11.0", args: [] },
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
      workload: { arrivalRatePerSec, preset: "chatbot" },
    },
  };
}

async function models(): Promise<ModelEntry[]> {
  return ((await (await fetch(`${gateway.url}/v1/models`)).json()) as { data: ModelEntry[] }).data;
}

const instancesOf = (list: ModelEntry[], model: string, role: string) =>
  list.find((m) => m.id === model)?.gpufleet.instances[role] ?? 0;
/** Worker ids of the simulated instances of `model` and `role` that reported in the last 2 s (what the agent runs). */
const reportedInstances = (model: string, role: string) => [
  ...new Set(
    loads
      .filter(
        (l) =>
          l.model === model && l.role === role && l.receivedMs > Date.now() - 2_000 && !l.workerId.startsWith("dead-"),
      )
      .map((l) => l.workerId),
  ),
];

/** A report for an instance nobody serves (its port is closed), very free so dispatch tries it first. */
function publishDeadInstance(model: string, id: string): void {
  const now = Date.now();
  const message = {
    schema: Schema.load,
    node: "node-dead",
    sentUnixMs: now,
    reports: [
      {
        workerId: id,
        podNamespace: namespace,
        podName: id,
        unixMs: now,
        queueLength: 0,
        runningRequests: 0,
        kvCacheUsedFraction: 0,
        kvCacheUsedBytes: 0,
        ttftMs: 0,
        tpotMs: 0,
        tokensPerSecond: 0,
        engineUrl: "http://127.0.0.1:9",
        model,
        role: "colocated",
        servingDeployment: `${namespace}/${id}`,
        kvBlocksTotal: 100_000_000,
        kvBlocksUsed: 0,
        blockSizeTokens: 16,
      },
    ],
  } satisfies Omit<LoadMessage, "reports"> & { reports: object[] };
  nats.publish(subjectFor(Stream.load, "node-dead"), encodeJson(message));
}

const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${gateway.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });

const metricsText = async () => (await fetch(`${gateway.url}/metrics`)).text();

/**
 * Reads an SSE response to its end (the JSON payloads, whether [DONE] came), calling `onEvent` as events arrive;
 * fails, never hangs, when the stream has not ended within `timeoutMs`.
 */
async function readSseBounded(
  response: Response,
  timeoutMs: number,
  onEvent: (event: Record<string, unknown>) => void = () => {},
): Promise<{ events: Record<string, unknown>[]; done: boolean }> {
  const reader = response.body!.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void reader.cancel(new Error("timeout")).catch(() => undefined);
  }, timeoutMs);
  const parser = new SseParser();
  const events: Record<string, unknown>[] = [];
  let done = false;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      for (const data of parser.push(chunk.value)) {
        if (data === "[DONE]") done = true;
        else {
          const event = JSON.parse(data) as Record<string, unknown>;
          events.push(event);
          onEvent(event);
        }
      }
    }
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) throw new Error(`the stream did not end within ${timeoutMs} ms`);
  return { events, done };
}

beforeAll(async () => {
  cluster = testCluster();
  if (!cluster.natsUrl) throw new Error("the gateway tests need the harness's nats-server");
  nats = await connect({ servers: cluster.natsUrl });
  // A core-NATS subscription: it sees what the agent publishes to JetStream (a stream captures subjects; core
  // subscribers get every message as before).
  loadSub = nats.subscribe(subscriptionFor(Stream.load), {
    callback: (_err, m) =>
      loads.push(...decodeLoad(m.subject, m.data).reports.map((r) => ({ ...r, receivedMs: Date.now() }))),
  });
  namespace = await cluster.freshNamespace("gateway-e2e");
  operator = await startInProcessOperator(cluster, "gateway-e2e");
  const started = await startSimulatedAgent({
    kubeconfigPath: cluster.kubeconfigPath,
    natsUrl: cluster.natsUrl,
    name: "agent-gateway",
    env: { GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200", GPUFLEET_AGENT_ENGINE_PORT: "0" },
  });
  agent = started.agent;
  // 40 requests/s is more than one Llama-3-8B instance's goodput on an H100 (~21/s), so the plan has two or more.
  const applied = await kubectl(
    cluster.kubeconfigPath,
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        servingDeployment("colo", COLO, "colocated", 40),
        servingDeployment("disagg", DISAGG, "disaggregated", 2),
      ],
    }),
  );
  if (applied.code !== 0) throw new Error(`kubectl apply failed: ${applied.stderr}`);
  standIn = await startTestInstanceProcess({
    TEST_INSTANCE_ID: `overloaded-${run}`,
    TEST_INSTANCE_ROLE: "colocated",
    TEST_INSTANCE_MODEL: OVERLOADED,
    TEST_INSTANCE_SERVING_DEPLOYMENT: `${namespace}/overloaded`,
    TEST_INSTANCE_NATS_URL: cluster.natsUrl,
    TEST_INSTANCE_NODE: `node-overloaded-${run}`,
    TEST_INSTANCE_REPORT_MS: "200",
    TEST_INSTANCE_TOKEN_INTERVAL_MS: "200",
    TEST_INSTANCE_MAX_RUNNING: "1",
  });
  gateway = await startGatewayProcess({
    GPUFLEET_GATEWAY_NATS_URL: cluster.natsUrl,
    GPUFLEET_GATEWAY_LOG_LEVEL: "info",
    GPUFLEET_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS: "3000",
    GPUFLEET_GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS: "5000",
  });
  await waitFor(
    async () => {
      const list = await models();
      return (
        instancesOf(list, COLO, "colocated") >= 2 &&
        instancesOf(list, DISAGG, "prefill") >= 1 &&
        instancesOf(list, DISAGG, "decode") >= 1 &&
        instancesOf(list, OVERLOADED, "colocated") >= 1
      );
    },
    {
      description: "the gateway routing both ServingDeployments (two or more colocated instances) and the stand-in",
      timeoutMs: 120_000,
    },
  );
}, 240_000);

afterAll(async () => {
  clearInterval(deadReports);
  loadSub?.unsubscribe();
  await gateway?.stop();
  await standIn?.stop();
  await agent?.stop();
  await operator?.stop();
  await nats?.close();
});

describe("the gateway in front of simulated instances", () => {
  it("lists one model route per ServingDeployment with its mode and live instances by role", async () => {
    const list = await models();
    expect(list.find((m) => m.id === DISAGG)).toMatchObject({
      object: "model",
      gpufleet: { mode: "disaggregated", servingDeployments: [`${namespace}/disagg`], instances: { colocated: 0 } },
    });
    expect(list.find((m) => m.id === COLO)).toMatchObject({
      gpufleet: { mode: "colocated", servingDeployments: [`${namespace}/colo`], instances: { prefill: 0, decode: 0 } },
    });
    // The counts are the instances the agent reports (one per leader pod).
    expect(instancesOf(list, COLO, "colocated")).toBe(reportedInstances(COLO, "colocated").length);
  });

  it("streams a colocated completion as SSE, with usage and the client's request id", async () => {
    const prompt = "Hello there, how are you?";
    const response = await post(
      "/v1/completions",
      { model: COLO, prompt, max_tokens: 5, stream: true, stream_options: { include_usage: true } },
      { "x-request-id": `client-req-${run}` },
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("x-request-id")).toBe(`client-req-${run}`);
    expect(reportedInstances(COLO, "colocated").map((id) => `colocated:${id}`)).toContain(
      response.headers.get("x-gpufleet-instance"),
    );
    const { events, done } = await readSseBounded(response, 30_000);
    expect(done).toBe(true);
    expect(tokensOf(events).join("")).toBe(placeholderText(0, 5));
    expect(tokensOf(events)).toHaveLength(5);
    expect(events[0]).toMatchObject({ id: `cmpl-client-req-${run}`, object: "text_completion", model: COLO });
    expect(events.at(-1)).toMatchObject({
      object: "text_completion",
      choices: [],
      usage: { prompt_tokens: estimateTokens(prompt), completion_tokens: 5, total_tokens: estimateTokens(prompt) + 5 },
    });
  });

  it("answers a colocated completion whole, with usage", async () => {
    const response = await post("/v1/completions", { model: COLO, prompt: "x".repeat(400), max_tokens: 12 });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      object: "text_completion",
      model: COLO,
      choices: [{ index: 0, text: placeholderText(0, 12), finish_reason: "length" }],
      usage: { prompt_tokens: 100, completion_tokens: 12, total_tokens: 112 },
    });
  });

  it("answers a chat completion whole, the prompt built from the stated template", async () => {
    const response = await post("/v1/chat/completions", {
      model: COLO,
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "hi" },
      ],
      max_tokens: 3,
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      object: "chat.completion",
      model: COLO,
      choices: [{ index: 0, message: { role: "assistant", content: placeholderText(0, 3) }, finish_reason: "length" }],
    });
    // "<|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\n" is 46 bytes: 12 tokens at 4 bytes per token.
    expect(body.usage).toEqual({ prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 });
  });

  it("streams a disaggregated chat completion: prefill instance, then the decode instance pulls the KV and streams the rest", async () => {
    const response = await post("/v1/chat/completions", {
      model: DISAGG,
      messages: [{ role: "user", content: "z".repeat(4000) }],
      max_tokens: 8,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(response.status).toBe(200);
    const prefillId = response.headers.get("x-gpufleet-instance")?.replace(/^prefill:/, "");
    expect(reportedInstances(DISAGG, "prefill")).toContain(prefillId);
    const { events, done } = await readSseBounded(response, 30_000);
    expect(done).toBe(true);
    expect(events[0]).toMatchObject({ object: "chat.completion.chunk", choices: [{ delta: { role: "assistant" } }] });
    expect(tokensOf(events).join("")).toBe(placeholderText(0, 8));
    // "<|user|>\n" + 4000 bytes + "\n<|assistant|>\n" = 4024 bytes: 1006 tokens.
    expect(events.at(-1)).toMatchObject({ usage: { prompt_tokens: 1006, completion_tokens: 8, total_tokens: 1014 } });
    expect(await metricsText()).toMatch(
      new RegExp(
        `gpufleet_gateway_dispatch_decisions_total\\{model="${DISAGG}",policy="freeness",role="decode"\\} [1-9]`,
      ),
    );
    // The decode side freed the KV on the prefill instance once it had pulled it.
    const doneMs = Date.now();
    await waitFor(() => loads.find((l) => l.workerId === prefillId && l.receivedMs > doneMs && l.heldKvBlocks === 0), {
      description: "the prefill instance holding no KV",
      timeoutMs: 20_000,
    });
  });

  it("answers a disaggregated completion whole, first token included, with usage", async () => {
    const response = await post("/v1/completions", { model: DISAGG, prompt: "y".repeat(40), max_tokens: 6 });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      object: "text_completion",
      choices: [{ text: placeholderText(0, 6), finish_reason: "length" }],
      usage: { prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 },
    });
  });

  describe.each([
    { name: "unknown model", body: { model: "no-such-model", prompt: "x" }, status: 404, code: "model_not_found" },
    { name: "invalid JSON", body: "{not json", status: 400, code: "invalid_json" },
    { name: "missing prompt", body: { model: COLO }, status: 400, code: "invalid_request" },
    { name: "max_tokens 0", body: { model: COLO, prompt: "x", max_tokens: 0 }, status: 400, code: "invalid_request" },
    { name: "n = 2", body: { model: COLO, prompt: "x", n: 2 }, status: 400, code: "invalid_request" },
    {
      name: "bad priority header",
      body: { model: COLO, prompt: "x" },
      headers: { "x-gpufleet-priority": "urgent" },
      status: 400,
      code: "invalid_request",
    },
    // Within the gateway's limit (8192) but beyond the model's context (4096): the instance refuses, the client gets
    // 400.
    {
      name: "more tokens than the model's context (refused by the instance)",
      body: { model: DISAGG, prompt: "x", max_tokens: 8000 },
      status: 400,
      code: "invalid_request",
    },
  ])("$name", ({ body, headers, status, code }) => {
    it(`answers ${status} ${code} in OpenAI's error shape`, async () => {
      const response = await post("/v1/completions", body, headers);
      expect(response.status).toBe(status);
      const error = (
        (await response.json()) as { error: { code: string; message: string; type: string; param: unknown } }
      ).error;
      expect(error).toMatchObject({ code, type: "invalid_request_error" });
      expect(error.message.length).toBeGreaterThan(0);
    });
  });

  it("cancels the request on the instance when the client disconnects", async () => {
    const requestId = `cancel-${run}`;
    const controller = new AbortController();
    const response = await post(
      "/v1/completions",
      { model: COLO, prompt: "x", max_tokens: 3000, stream: true },
      { "x-request-id": requestId },
      controller.signal,
    );
    expect(response.status).toBe(200);
    await response.body!.getReader().read(); // the first token
    controller.abort();
    // The gateway closed its upstream call, and the instance cancelled the request of that id on its engine.
    await waitFor(
      () => agent!.logs.find((l) => l.msg === "client disconnected: request cancelled" && l.requestId === requestId),
      { description: "the instance cancelling the request", timeoutMs: 20_000 },
    );
    await waitFor(() => gateway.logs.find((l) => l.msg === "request" && l.requestId === requestId && l.code === 499), {
      description: "the gateway logging the client gone (499)",
      timeoutMs: 10_000,
    });
  });

  it("spreads a burst over equal instances: its own reservations count until the next load report", async () => {
    const live = reportedInstances(COLO, "colocated");
    expect(live.length).toBeGreaterThanOrEqual(2);
    const responses = await Promise.all(
      [1, 2, 3, 4].map(() => post("/v1/completions", { model: COLO, prompt: "x", max_tokens: 200 })),
    );
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const served = responses.map((r) => r.headers.get("x-gpufleet-instance"));
    await Promise.all(responses.map((r) => r.arrayBuffer()));
    const perInstance = [...new Set(served)].map((s) => served.filter((x) => x === s).length);
    expect(perInstance.length).toBe(Math.min(4, live.length));
    expect(Math.max(...perInstance)).toBe(Math.ceil(4 / live.length));
  });

  it("answers 429 with Retry-After when every instance tried answered 429 (stand-in instance)", async () => {
    const controller = new AbortController();
    const busy = await post(
      "/v1/completions",
      { model: OVERLOADED, prompt: "x", max_tokens: 50, stream: true },
      {},
      controller.signal,
    );
    expect(busy.status).toBe(200);
    await busy.body!.getReader().read();
    const response = await post("/v1/completions", { model: OVERLOADED, prompt: "x", max_tokens: 2 });
    controller.abort();
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(((await response.json()) as { error: { code: string; type: string } }).error).toMatchObject({
      code: "overloaded",
      type: "rate_limit_error",
    });
  });

  it("ends the stream with an error event, never a hang, when the decode pod is deleted mid-stream", async () => {
    const response = await post("/v1/completions", { model: DISAGG, prompt: "x", max_tokens: 3000, stream: true });
    expect(response.status).toBe(200);
    let received = 0;
    const reading = readSseBounded(response, 30_000, () => (received += 1));
    // Wait until decode tokens flow (the first token came from the prefill instance), then delete the decode pods.
    await waitFor(() => received >= 3, {
      description: "three streamed tokens, two of them from the decode instance",
      timeoutMs: 20_000,
      intervalMs: 5,
    });
    const pods = (
      await cluster.core.listNamespacedPod({
        namespace,
        labelSelector: "gpufleet.io/serving-deployment=disagg,gpufleet.io/role=decode",
      })
    ).items;
    expect(pods.length).toBeGreaterThan(0);
    await Promise.all(pods.map((p: V1Pod) => cluster.core.deleteNamespacedPod({ namespace, name: p.metadata!.name! })));
    const { events, done } = await reading;
    expect(done).toBe(false);
    const tokens = tokensOf(events);
    expect(tokens[0]).toBe(placeholderText(0, 1));
    expect(tokens.length).toBeLessThan(3000);
    const last = events.at(-1) as { error?: { code: string; type: string; message: string } };
    expect(last.error).toMatchObject({ code: "upstream_failed", type: "server_error" });
    // The message says what happened on the instance.
    expect(last.error!.message).toMatch(/simulated worker stopped/);
    expect(await metricsText()).toMatch(
      new RegExp(`gpufleet_gateway_errors_total\\{model="${DISAGG}",code="upstream_failed"\\} [1-9]`),
    );
  });

  describe("an instance that reports but does not answer", () => {
    beforeAll(() => {
      const publish = () => {
        publishDeadInstance(COLO, `dead-colo-${run}`);
        publishDeadInstance(DEAD, `dead-only-${run}`);
      };
      publish();
      deadReports = setInterval(publish, 200);
    });

    afterAll(() => clearInterval(deadReports));

    it("retries the request on a live instance before any token was sent", async () => {
      await waitFor(
        async () => instancesOf(await models(), COLO, "colocated") > reportedInstances(COLO, "colocated").length,
        { description: "the dead instance in the route", timeoutMs: 10_000 },
      );
      const response = await post("/v1/completions", { model: COLO, prompt: "x", max_tokens: 2 });
      expect(response.status).toBe(200);
      // The dead instance reports far more free KV, so it is chosen first; the header names the one that served.
      expect(reportedInstances(COLO, "colocated").map((id) => `colocated:${id}`)).toContain(
        response.headers.get("x-gpufleet-instance"),
      );
      expect(((await response.json()) as { choices: { text: string }[] }).choices[0]!.text).toBe(placeholderText(0, 2));
      expect(await metricsText()).toMatch(
        new RegExp(
          `gpufleet_gateway_upstream_retries_total\\{model="${COLO}",role="colocated",reason="unreachable"\\} [1-9]`,
        ),
      );
    });

    it("answers 503 upstream_failed with Retry-After when it is the only instance", async () => {
      await waitFor(async () => instancesOf(await models(), DEAD, "colocated") === 1, {
        description: "the dead-only route",
        timeoutMs: 10_000,
      });
      const response = await post("/v1/completions", { model: DEAD, prompt: "x" });
      expect(response.status).toBe(503);
      expect(response.headers.get("retry-after")).toBe("1");
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("upstream_failed");
    });
  });

  it("exports per-model request, latency and instance metrics", async () => {
    const metrics = await metricsText();
    expect(metrics).toMatch(
      new RegExp(`gpufleet_gateway_requests_total\\{model="${COLO}",endpoint="completions",code="200"\\} [1-9]`),
    );
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_ttft_seconds_count\\{model="${DISAGG}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_tpot_seconds_count\\{model="${COLO}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_instances\\{model="${DISAGG}",role="prefill"\\} [1-9]`));
  });

  // Last: it stops the gateway.
  it("on SIGTERM finishes the in-flight stream within the grace period, then exits cleanly", async () => {
    const requestId = `sigterm-${run}`;
    const response = await post(
      "/v1/completions",
      { model: COLO, prompt: "x", max_tokens: 300, stream: true },
      { "x-request-id": requestId },
    );
    expect(response.status).toBe(200);
    const reading = readSseBounded(response, 60_000);
    const exited = gateway.stop("SIGTERM");
    const { events, done } = await reading;
    expect(done).toBe(true);
    expect(tokensOf(events)).toHaveLength(300);
    expect(await exited).toBe(0);
    // The stream was still running when the shutdown began.
    const shutdownAt = gateway.logs.findIndex((l) => l.msg === "shutting down");
    const finishedAt = gateway.logs.findIndex((l) => l.msg === "request" && l.requestId === requestId);
    expect(shutdownAt).toBeGreaterThanOrEqual(0);
    expect(finishedAt).toBeGreaterThan(shutdownAt);
  });

  // After the SIGTERM test: a fresh gateway (it also learns the instances again, from the load stream), then the
  // agent itself stops under a running stream.
  it("ends the stream with an error event, never a hang, when the agent stops under it", async () => {
    gateway = await startGatewayProcess({
      GPUFLEET_GATEWAY_NATS_URL: cluster.natsUrl,
      GPUFLEET_GATEWAY_LOG_LEVEL: "info",
      GPUFLEET_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS: "3000",
      GPUFLEET_GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS: "5000",
    });
    await waitFor(async () => instancesOf(await models(), COLO, "colocated") >= 1, {
      description: "the restarted gateway routing the colocated deployment",
      timeoutMs: 20_000,
    });
    const response = await post("/v1/completions", { model: COLO, prompt: "x", max_tokens: 3000, stream: true });
    expect(response.status).toBe(200);
    let received = 0;
    const reading = readSseBounded(response, 30_000, () => (received += 1));
    await waitFor(() => received >= 3, { description: "three streamed tokens", timeoutMs: 20_000, intervalMs: 5 });
    expect(await agent!.stop("SIGTERM")).toBe(0);
    const { events, done } = await reading;
    expect(done).toBe(false);
    expect(tokensOf(events).length).toBeLessThan(3000);
    const last = events.at(-1) as { error?: { code: string; message: string } };
    expect(last.error).toMatchObject({ code: "upstream_failed" });
    // The instance ended its stream with an error event of its own before the agent closed its connections.
    expect(last.error!.message).toMatch(/simulated worker stopped/);
  });

  it("ends the stream with an error event, never a hang, when the agent is killed under it (connection reset)", async () => {
    // A new agent takes the same pods over (new engine port, so new engineUrls in its reports).
    const restarted = await startSimulatedAgent({
      kubeconfigPath: cluster.kubeconfigPath,
      natsUrl: cluster.natsUrl,
      name: "agent-gateway-2",
      env: { GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS: "200", GPUFLEET_AGENT_ENGINE_PORT: "0" },
    });
    agent = restarted.agent;
    const agentStartedMs = Date.now();
    // Wait for a report from the new agent (the old one's instances stay in the view, stale, for a few seconds).
    await waitFor(
      () => loads.find((l) => l.model === COLO && l.receivedMs > agentStartedMs && !l.workerId.startsWith("dead-")),
      { description: "a load report from the new agent", timeoutMs: 30_000 },
    );
    // Until the old agent's instances are stale the gateway may try them first: unreachable, retried on the new ones.
    const response = await post("/v1/completions", { model: COLO, prompt: "x", max_tokens: 3000, stream: true });
    expect(response.status).toBe(200);
    let received = 0;
    const reading = readSseBounded(response, 30_000, () => (received += 1));
    await waitFor(() => received >= 3, { description: "three streamed tokens", timeoutMs: 20_000, intervalMs: 5 });
    await agent.stop("SIGKILL");
    const { events, done } = await reading;
    expect(done).toBe(false);
    expect(tokensOf(events).length).toBeLessThan(3000);
    expect(events.at(-1)).toMatchObject({ error: { code: "upstream_failed", type: "server_error" } });
  });
});
