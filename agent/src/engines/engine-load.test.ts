import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EngineAdapter, commandOutcome, type AgentLink } from "./adapter.js";
import { AdapterConfigError, loadAdapterConfig } from "./config.js";
import { EngineMetricsError, engineLoad } from "./engine-load.js";
import { PrometheusTextError, parsePrometheusText } from "./prometheus-text.js";

/** Pages shaped as the engines document them (sources in each file's header). */
const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

describe("parsePrometheusText", () => {
  it("reads names, labels (with escapes and braces in values) and values, skipping comments and timestamps", () => {
    const samples = parsePrometheusText(
      ["# HELP x y", "a_total 3", 'b{le="+Inf",q="x\\"}y"} 2.5e+03 1700000000000', "c +Inf", ""].join("\n"),
    );
    expect(samples).toEqual([
      { name: "a_total", labels: {}, value: 3 },
      { name: "b", labels: { le: "+Inf", q: 'x"}y' }, value: 2500 },
      { name: "c", labels: {}, value: Infinity },
    ]);
  });

  it.each([
    ["a value that is not a number", "x 12abc", /line 1: x has no numeric value/],
    ["an unclosed label set", 'ok 1\nx{a="1" 2', /line 2: unclosed label set/],
    ["a bad label", "x{a=1} 2", /line 1: bad label/],
  ])("names the line of %s", (_name, text, message) => {
    expect(() => parsePrometheusText(text)).toThrow(PrometheusTextError);
    expect(() => parsePrometheusText(text)).toThrow(message);
  });
});

describe("engineLoad from the documented vLLM page", () => {
  const first = engineLoad("vllm", parsePrometheusText(fixture("vllm-metrics-1.txt")), 1_000);

  it("maps the gauges and the cache config to a load report", () => {
    expect(first.load).toMatchObject({
      runningRequests: 12,
      queueLength: 3,
      kvCacheUsedFraction: 0.25,
      kvBlocksTotal: 20000,
      kvBlocksUsed: 5000,
      blockSizeTokens: 16,
      preemptionsTotal: 4,
    });
    // No previous reading: latencies are the means since the engine started; no token rate yet.
    expect(first.load.ttftMs).toBeCloseTo(100, 6);
    expect(first.load.tpotMs).toBeCloseTo(20, 6);
    expect(first.load.tokensPerSecond).toBe(0);
  });

  it("takes latencies and the token rate over the interval since the previous scrape", () => {
    const second = engineLoad("vllm", parsePrometheusText(fixture("vllm-metrics-2.txt")), 3_000, first.reading);
    expect(second.load).toMatchObject({ runningRequests: 14, queueLength: 0 });
    expect(second.load.ttftMs).toBeCloseTo(200, 6); // (12 − 10) s over 10 requests
    expect(second.load.tpotMs).toBeCloseTo(25, 6); // (150 − 100) s over 2,000 tokens
    expect(second.load.tokensPerSecond).toBeCloseTo(1000, 6); // 2,000 tokens in 2 s
  });

  it("starts afresh after a counter reset (engine restart)", () => {
    const restarted = engineLoad(
      "vllm",
      parsePrometheusText(fixture("vllm-metrics-1.txt")),
      5_000,
      engineLoad("vllm", parsePrometheusText(fixture("vllm-metrics-2.txt")), 3_000).reading,
    );
    expect(restarted.load.ttftMs).toBeCloseTo(100, 6);
    expect(restarted.load.tokensPerSecond).toBe(0);
  });

  it("reads the pre-v1 name vllm:gpu_cache_usage_perc when kv_cache_usage_perc is absent", () => {
    const old = fixture("vllm-metrics-1.txt").replaceAll("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc");
    expect(engineLoad("vllm", parsePrometheusText(old), 1).load.kvCacheUsedFraction).toBe(0.25);
  });
});

describe("engineLoad from the documented SGLang page", () => {
  it("maps running, queued, token usage and throughput", () => {
    const { load } = engineLoad("sglang", parsePrometheusText(fixture("sglang-metrics.txt")), 1);
    expect(load).toMatchObject({
      runningRequests: 162,
      queueLength: 2826,
      kvCacheUsedFraction: 0.28,
      kvBlocksUsed: 123859,
      kvBlocksTotal: Math.round(123859 / 0.28),
      blockSizeTokens: 1,
    });
    expect(load.tokensPerSecond).toBeCloseTo(86.508, 3);
    expect(load.ttftMs).toBeCloseTo((2.3518979474117756e6 / 11008) * 1000, 3);
    expect(load.tpotMs).toBeCloseTo((866964.5791549598 / 7.400757e6) * 1000, 6);
  });

  it("refuses a page without the gauges (SGLang without --enable-metrics, or the wrong engine kind)", () => {
    expect(() => engineLoad("sglang", parsePrometheusText(fixture("vllm-metrics-1.txt")), 1)).toThrow(
      EngineMetricsError,
    );
    expect(() => engineLoad("vllm", parsePrometheusText(fixture("sglang-metrics.txt")), 1)).toThrow(
      /vllm metrics lack vllm:num_requests_running, vllm:num_requests_waiting, vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc/,
    );
  });
});

const env = {
  GPUFLEET_ENGINE_KIND: "vllm",
  GPUFLEET_ENGINE_METRICS_URL: "http://127.0.0.1:8000/metrics",
  GPUFLEET_AGENT_SOCKET: "/run/gpufleet/agent.sock",
  POD_IP: "10.0.0.7",
  GPUFLEET_PORT: "8000",
  POD_NAMESPACE: "llm",
  POD_NAME: "chat-h-p0",
  POD_UID: "uid-7",
  NODE_NAME: "n1",
  GPUFLEET_SERVING_DEPLOYMENT: "chat",
  GPUFLEET_ROLE: "prefill",
  GPUFLEET_MODEL: "m",
  GPUFLEET_TP: "2",
  GPUFLEET_PP: "1",
  GPUFLEET_GPU_MODEL: "H100-80GB",
};

describe("loadAdapterConfig", () => {
  it("reads the operator's env", () => {
    expect(loadAdapterConfig(env)).toMatchObject({
      kind: "vllm",
      engineUrl: "http://10.0.0.7:8000",
      servingDeployment: "llm/chat",
      role: "prefill",
      tp: 2,
      pp: 1,
      scrapeIntervalMs: 1000,
    });
  });
  it("needs the bootstrap port on a SGLang prefill adapter only (the gateway sends it with every request)", () => {
    const sglang = { ...env, GPUFLEET_ENGINE_KIND: "sglang" };
    expect(() => loadAdapterConfig(sglang)).toThrow(/GPUFLEET_ENGINE_BOOTSTRAP_PORT must be a positive integer/);
    expect(loadAdapterConfig({ ...sglang, GPUFLEET_ENGINE_BOOTSTRAP_PORT: "8998" }).bootstrapPort).toBe(8998);
    expect(loadAdapterConfig({ ...sglang, GPUFLEET_ROLE: "decode" }).bootstrapPort).toBeUndefined();
    expect(loadAdapterConfig(env).bootstrapPort).toBeUndefined();
    expect(() => loadAdapterConfig({ ...sglang, GPUFLEET_ENGINE_BOOTSTRAP_PORT: "70000" })).toThrow(/a port number/);
  });
  it.each([
    ["GPUFLEET_ENGINE_KIND", "reference", /GPUFLEET_ENGINE_KIND must be vllm or sglang/],
    ["GPUFLEET_TP", "0", /GPUFLEET_TP must be a positive integer, got "0"/],
    ["POD_UID", "", /POD_UID must be set/],
  ])("names %s when it is wrong", (name, value, message) => {
    expect(() => loadAdapterConfig({ ...env, [name]: value })).toThrow(AdapterConfigError);
    expect(() => loadAdapterConfig({ ...env, [name]: value })).toThrow(message);
  });
});

describe("EngineAdapter", () => {
  function link() {
    const calls: { method: string; arg: unknown }[] = [];
    const agent: AgentLink = {
      register: async (arg) => (calls.push({ method: "register", arg }), { heartbeatIntervalMs: 500 }),
      heartbeat: async (arg) => calls.push({ method: "heartbeat", arg }),
      reportLoad: async (arg) => calls.push({ method: "reportLoad", arg }),
      ackCommand: async (arg) => calls.push({ method: "ackCommand", arg }),
    };
    return { agent, calls };
  }

  it("registers as the role's worker kind and reports the engine's load with the instance's place", async () => {
    const { agent, calls } = link();
    const adapter = new EngineAdapter(
      loadAdapterConfig(env),
      agent,
      async () => fixture("vllm-metrics-1.txt"),
      () => 42,
    );
    expect(await adapter.register()).toBe(500);
    const report = await adapter.scrapeAndReport();
    expect(calls[0]).toMatchObject({
      method: "register",
      arg: { workerId: "uid-7/engine", kind: "serving-prefill", podName: "chat-h-p0", simulated: false, rank: -1 },
    });
    expect(report).toMatchObject({
      workerId: "uid-7/engine",
      unixMs: 42,
      runningRequests: 12,
      queueLength: 3,
      role: "prefill",
      tp: 2,
      engineUrl: "http://10.0.0.7:8000",
      servingDeployment: "llm/chat",
      draining: false,
      engine: "vllm",
      disaggregationBootstrapPort: 0,
    });
    expect(calls[1]).toEqual({ method: "reportLoad", arg: report });
  });

  it("applies Drain (reports draining) and rejects migration", async () => {
    const { agent, calls } = link();
    const adapter = new EngineAdapter(loadAdapterConfig(env), agent, async () => fixture("vllm-metrics-1.txt"));
    await adapter.handleCommand({ commandId: "m1", command: "migrateOut" } as never);
    await adapter.handleCommand({ commandId: "d1", command: "drain", drain: {} } as never);
    expect(calls.map((c) => c.arg)).toMatchObject([
      {
        commandId: "m1",
        outcome: "rejected",
        reason: expect.stringMatching(/vllm instances do not support migrateOut/),
      },
      { commandId: "d1", outcome: "applied" },
    ]);
    expect((await adapter.scrapeAndReport()).draining).toBe(true);
    expect(commandOutcome({ commandId: "x", command: "injectFault" } as never, "sglang").outcome).toBe("rejected");
  });
});
