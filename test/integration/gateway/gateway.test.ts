/**
 * The gateway as a process in front of real HTTP instance processes (the TEST INSTANCE of test/support/, until the
 * agent's simulated instances replace it), learning them from load reports on the harness's real nats-server:
 * streaming and whole completions, a prefill/decode pair with the decode side pulling KV, the error codes, the
 * retry past a dead instance, cancellation on client disconnect, and a decode instance dying mid-stream.
 */
import { connect, type NatsConnection } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeJson, Schema, Stream, subjectFor, type LoadMessage } from "../../../common/src/telemetry/subjects.js";
import { getTestCluster, waitFor } from "../../harness/context.js";
import { readSse, startGatewayProcess, startTestInstanceProcess, tokensOf, type GatewayProcess, type InstanceProcess } from "../../support/gateway.js";

const run = Date.now().toString(36);
const model = (name: string) => `${name}-${run}`;

let nats: NatsConnection;
let gateway: GatewayProcess;
const instances: Record<string, InstanceProcess> = {};
let fakeReports: NodeJS.Timeout;

function instanceEnv(id: string, role: string, name: string, extra: Record<string, string> = {}): Record<string, string> {
  return { TEST_INSTANCE_ID: `${id}-${run}`, TEST_INSTANCE_ROLE: role, TEST_INSTANCE_MODEL: model(name), TEST_INSTANCE_SERVING_DEPLOYMENT: `gw-test/${name}`, TEST_INSTANCE_NATS_URL: getTestCluster().natsUrl, TEST_INSTANCE_NODE: `node-${id}`, TEST_INSTANCE_REPORT_MS: "200", ...extra };
}

/** A report for an instance nobody serves: its port is closed. Very free, so dispatch tries it first. */
function publishDeadInstance(): void {
  const now = Date.now();
  for (const name of ["retry", "dead"]) {
    const message = {
      schema: Schema.load, node: "node-dead", sentUnixMs: now,
      reports: [{ workerId: `dead-${name}-${run}`, podNamespace: "gw-test", podName: `dead-${name}`, unixMs: now, queueLength: 0, runningRequests: 0, kvCacheUsedFraction: 0, kvCacheUsedBytes: 0, ttftMs: 0, tpotMs: 0, tokensPerSecond: 0,
        engineUrl: "http://127.0.0.1:9", model: model(name), role: "colocated", servingDeployment: `gw-test/${name}`, kvBlocksTotal: 1_000_000, kvBlocksUsed: 0, blockSizeTokens: 16 }],
    } satisfies Omit<LoadMessage, "reports"> & { reports: object[] };
    nats.publish(subjectFor(Stream.load, "node-dead"), encodeJson(message));
  }
}

const post = (path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) =>
  fetch(`${gateway.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body), ...(signal ? { signal } : {}) });

beforeAll(async () => {
  const { natsUrl } = getTestCluster();
  if (!natsUrl) throw new Error("the gateway tests need the harness's nats-server");
  nats = await connect({ servers: natsUrl });
  publishDeadInstance();
  fakeReports = setInterval(publishDeadInstance, 200);
  const started = await Promise.all([
    startTestInstanceProcess(instanceEnv("colo", "colocated", "colo")),
    startTestInstanceProcess(instanceEnv("slow", "colocated", "slow", { TEST_INSTANCE_TOKEN_INTERVAL_MS: "200", TEST_INSTANCE_MAX_RUNNING: "1" })),
    startTestInstanceProcess(instanceEnv("prefill", "prefill", "disagg")),
    startTestInstanceProcess(instanceEnv("decode", "decode", "disagg")),
    startTestInstanceProcess(instanceEnv("prefill2", "prefill", "dying")),
    startTestInstanceProcess(instanceEnv("decode2", "decode", "dying", { TEST_INSTANCE_DIE_AFTER_TOKENS: "3", TEST_INSTANCE_TOKEN_INTERVAL_MS: "20" })),
    startTestInstanceProcess(instanceEnv("retry", "colocated", "retry")),
    startTestInstanceProcess(instanceEnv("spread-a", "colocated", "spread", { TEST_INSTANCE_TOKEN_INTERVAL_MS: "50" })),
    startTestInstanceProcess(instanceEnv("spread-b", "colocated", "spread", { TEST_INSTANCE_TOKEN_INTERVAL_MS: "50" })),
  ]);
  for (const p of started) instances[p.id.replace(`-${run}`, "")] = p;
  gateway = await startGatewayProcess({ GPUFLEET_GATEWAY_NATS_URL: natsUrl, GPUFLEET_GATEWAY_LOG_LEVEL: "info", GPUFLEET_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS: "3000", GPUFLEET_GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS: "5000" });
  await waitFor(async () => {
    const list = (await (await fetch(`${gateway.url}/v1/models`)).json()) as { data: { id: string; gpufleet: { instances: Record<string, number> } }[] };
    const live = (name: string, role: string, n: number) => (list.data.find((m) => m.id === model(name))?.gpufleet.instances[role] ?? 0) >= n;
    return live("colo", "colocated", 1) && live("slow", "colocated", 1) && live("disagg", "prefill", 1) && live("disagg", "decode", 1) && live("dying", "decode", 1) && live("retry", "colocated", 2) && live("dead", "colocated", 1) && live("spread", "colocated", 2);
  }, { description: "every instance in /v1/models", timeoutMs: 30_000 });
}, 120_000);

afterAll(async () => {
  clearInterval(fakeReports);
  await gateway?.stop();
  await Promise.all(Object.values(instances).map((p) => p.stop()));
  await nats?.close();
});

describe("gateway", () => {
  it("lists one model route per ServingDeployment with its mode and instances by role", async () => {
    const list = (await (await fetch(`${gateway.url}/v1/models`)).json()) as { object: string; data: { id: string; object: string; gpufleet: { mode: string; servingDeployments: string[]; instances: Record<string, number> } }[] };
    expect(list.object).toBe("list");
    expect(list.data.find((m) => m.id === model("disagg"))).toMatchObject({ object: "model", gpufleet: { mode: "disaggregated", servingDeployments: ["gw-test/disagg"], instances: { prefill: 1, decode: 1, colocated: 0 } } });
    expect(list.data.find((m) => m.id === model("colo"))?.gpufleet.mode).toBe("colocated");
  });

  it("streams a completion from a colocated instance, with usage and the request id", async () => {
    const response = await post("/v1/completions", { model: model("colo"), prompt: "Hello there", max_tokens: 5, stream: true, stream_options: { include_usage: true } }, { "x-request-id": "client-req-1" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    expect(response.headers.get("x-request-id")).toBe("client-req-1");
    const { events, done } = await readSse(response);
    expect(done).toBe(true);
    expect(tokensOf(events)).toEqual(["tok1 ", "tok2 ", "tok3 ", "tok4 ", "tok5 "]);
    expect(events.at(-1)).toMatchObject({ object: "text_completion", choices: [], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } });
    expect((await instances.colo!.stats()).requestIds).toContain("client-req-1");
  });

  it("answers a chat completion whole, the prompt built from the stated template", async () => {
    const response = await post("/v1/chat/completions", { model: model("colo"), messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }], max_tokens: 3 });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ object: "chat.completion", model: model("colo"), choices: [{ index: 0, message: { role: "assistant", content: "tok1 tok2 tok3 " }, finish_reason: "length" }] });
    // "<|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\n" is 46 bytes: 12 tokens at 4 bytes per token.
    expect(body.usage).toEqual({ prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 });
  });

  it("prefills on the prefill instance, and the decode instance pulls the KV and streams the rest", async () => {
    const response = await post("/v1/chat/completions", { model: model("disagg"), messages: [{ role: "user", content: "tell me" }], max_tokens: 4, stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-gpufleet-instance")).toBe(`prefill:prefill-${run}`);
    const { events, done } = await readSse(response);
    expect(done).toBe(true);
    expect(events[0]).toMatchObject({ object: "chat.completion.chunk", choices: [{ delta: { role: "assistant" } }] });
    expect(tokensOf(events)).toEqual(["tok1 ", "tok2 ", "tok3 ", "tok4 "]);
    const prefill = await instances.prefill!.stats();
    expect(prefill.kvPulled).toBeGreaterThanOrEqual(1);
    expect(prefill.kvHeld).toBe(0); // freed after the pull
  });

  describe.each([
    { name: "unknown model", body: { model: "no-such-model", prompt: "x" }, status: 404, code: "model_not_found" },
    { name: "invalid JSON", body: "{not json", status: 400, code: "invalid_json" },
    { name: "missing prompt", body: { model: model("colo") }, status: 400, code: "invalid_request" },
    { name: "max_tokens 0", body: { model: model("colo"), prompt: "x", max_tokens: 0 }, status: 400, code: "invalid_request" },
    { name: "n = 2", body: { model: model("colo"), prompt: "x", n: 2 }, status: 400, code: "invalid_request" },
    { name: "bad priority header", body: { model: model("colo"), prompt: "x" }, headers: { "x-gpufleet-priority": "urgent" }, status: 400, code: "invalid_request" },
    { name: "only a dead instance", body: { model: model("dead"), prompt: "x" }, status: 503, code: "upstream_failed" },
  ])("$name", ({ body, headers, status, code }) => {
    it(`answers ${status} ${code} in OpenAI's error shape`, async () => {
      const response = await post("/v1/completions", body, headers);
      expect(response.status).toBe(status);
      const error = ((await response.json()) as { error: { code: string; message: string; type: string } }).error;
      expect(error.code).toBe(code);
      expect(error.message.length).toBeGreaterThan(0);
      if (status === 503) expect(response.headers.get("retry-after")).toBe("1");
    });
  });

  it("retries a dead instance's request on a live one before any token was sent", async () => {
    const response = await post("/v1/completions", { model: model("retry"), prompt: "x", max_tokens: 2 });
    expect(response.status).toBe(200);
    // The dead instance reports far more free KV, so it is chosen first; the header names the one that served.
    expect(response.headers.get("x-gpufleet-instance")).toBe(`colocated:retry-${run}`);
    expect(((await response.json()) as { choices: { text: string }[] }).choices[0]!.text).toBe("tok1 tok2 ");
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_upstream_retries_total\\{model="${model("retry")}",role="colocated",reason="unreachable"\\} [1-9]`));
  });

  it("spreads a burst over equal instances: its own reservations count until the next load report", async () => {
    const responses = await Promise.all([1, 2, 3, 4].map(() => post("/v1/completions", { model: model("spread"), prompt: "x", max_tokens: 10 })));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    const served = responses.map((r) => r.headers.get("x-gpufleet-instance"));
    expect(served.filter((s) => s === `colocated:spread-a-${run}`)).toHaveLength(2);
    expect(served.filter((s) => s === `colocated:spread-b-${run}`)).toHaveLength(2);
  });

  it("cancels the upstream request when the client disconnects", async () => {
    const controller = new AbortController();
    const response = await post("/v1/completions", { model: model("slow"), prompt: "x", max_tokens: 50, stream: true }, {}, controller.signal);
    expect(response.status).toBe(200);
    await response.body!.getReader().read(); // the first token
    controller.abort();
    await waitFor(async () => (await instances.slow!.stats()).cancelled >= 1 && (await instances.slow!.stats()).running === 0, { description: "slow instance saw the cancellation", timeoutMs: 10_000 });
  });

  it("answers 429 with Retry-After when every instance of the route is overloaded", async () => {
    const controller = new AbortController();
    const busy = await post("/v1/completions", { model: model("slow"), prompt: "x", max_tokens: 50, stream: true }, {}, controller.signal);
    expect(busy.status).toBe(200);
    await busy.body!.getReader().read();
    const response = await post("/v1/completions", { model: model("slow"), prompt: "x", max_tokens: 2 });
    controller.abort();
    expect(response.status).toBe(429);
    expect(response.headers.get("retry-after")).toBe("1");
    expect(((await response.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: "overloaded", type: "rate_limit_error" });
  });

  it("ends the stream with an error event, never a hang, when the decode instance dies mid-stream", async () => {
    const started = Date.now();
    const response = await post("/v1/completions", { model: model("dying"), prompt: "x", max_tokens: 20, stream: true });
    expect(response.status).toBe(200);
    const { events, done } = await readSse(response);
    expect(done).toBe(false);
    const tokens = tokensOf(events);
    expect(tokens[0]).toBe("tok1 ");
    expect(tokens.length).toBeLessThan(20);
    expect(events.at(-1)).toMatchObject({ error: { code: "upstream_failed", type: "server_error" } });
    // Bounded by the connection reset, not by the 5 s idle timeout.
    expect(Date.now() - started).toBeLessThan(5_000);
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_errors_total\\{model="${model("dying")}",code="upstream_failed"\\} 1`));
  });

  it("exports per-model request, latency and dispatch metrics", async () => {
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_requests_total\\{model="${model("colo")}",endpoint="completions",code="200"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_ttft_seconds_count\\{model="${model("disagg")}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_tpot_seconds_count\\{model="${model("colo")}"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_dispatch_decisions_total\\{model="${model("disagg")}",policy="freeness",role="decode"\\} [1-9]`));
    expect(metrics).toMatch(new RegExp(`gpufleet_gateway_instances\\{model="${model("disagg")}",role="prefill"\\} 1`));
  });

  // Last: it stops the gateway.
  it("on SIGTERM finishes the in-flight stream within the grace period, then exits cleanly", async () => {
    const response = await post("/v1/completions", { model: model("slow"), prompt: "x", max_tokens: 6, stream: true });
    expect(response.status).toBe(200);
    const reading = readSse(response);
    const exited = gateway.stop("SIGTERM");
    const { events, done } = await reading;
    expect(done).toBe(true);
    expect(tokensOf(events)).toHaveLength(6);
    expect(await exited).toBe(0);
  });
});
