/**
 * `npm run bench -- gateway`: what the gateway adds over a direct connection to one instance, on loopback.
 *
 * One TEST INSTANCE process (test/support/test-instance/, a placeholder until the agent's simulated instances land:
 * fixed token interval, no latency model) and one gateway process in front of it (static instance source: no
 * NATS). The client runs in this process. Two phases per target, same requests (non-streamed completions,
 * 8 tokens, token interval 1 ms):
 * - latency: sequential requests, P50/P99 of end-to-end latency; addedLatencyMsP50 = gateway P50 − direct P50;
 * - throughput: CONCURRENCY closed-loop clients for DURATION_MS; requests/s completed.
 * The machine is shared (2 cores, other work running): numbers are indicative, and all three processes compete
 * for the same cores.
 *
 * Not measured yet: P99 TTFT with freeness dispatch vs round-robin at high load on the Azure trace needs
 * instances whose step times and KV follow the latency model (the simulated workers). Those fields are written
 * as null with the reason, never estimated.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SEQUENTIAL_REQUESTS = 300;
const CONCURRENCY = 16;
const DURATION_MS = 5_000;
const MAX_TOKENS = 8;
const TOKEN_INTERVAL_MS = 1;
const MODEL = "bench-model";

async function startProcess(entry: string, env: Record<string, string>, ready: string): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, entry)], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  let buffered = "";
  const line = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${entry} did not start in 60 s`)), 60_000);
    child.once("exit", (code) => reject(new Error(`${entry} exited with ${code}`)));
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const l of buffered.split("\n")) {
        try {
          const parsed = JSON.parse(l) as Record<string, unknown>;
          if (parsed.msg === ready) {
            clearTimeout(timer);
            resolve(parsed);
          }
        } catch {
          // not a JSON line
        }
      }
    });
  });
  return { child, line };
}

async function complete(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: MODEL, prompt: "benchmark prompt", max_tokens: MAX_TOKENS }) });
  const body = (await response.json()) as { choices?: { text: string }[] };
  if (response.status !== 200 || !body.choices?.[0]?.text) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
  return performance.now() - started;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function latency(url: string): Promise<{ p50Ms: number; p99Ms: number }> {
  for (let i = 0; i < 20; i++) await complete(url); // warm-up: connections, JIT
  const samples: number[] = [];
  for (let i = 0; i < SEQUENTIAL_REQUESTS; i++) samples.push(await complete(url));
  samples.sort((a, b) => a - b);
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) };
}

async function throughput(url: string): Promise<number> {
  const deadline = performance.now() + DURATION_MS;
  let done = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        await complete(url);
        done += 1;
      }
    }),
  );
  return done / (DURATION_MS / 1000);
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

export async function run(): Promise<void> {
  const instance = await startProcess("test/support/test-instance/main.ts", { TEST_INSTANCE_ID: "bench-0", TEST_INSTANCE_MODEL: MODEL, TEST_INSTANCE_TOKEN_INTERVAL_MS: String(TOKEN_INTERVAL_MS), TEST_INSTANCE_NATS_URL: "" }, "test instance ready");
  const instanceUrl = instance.line.url as string;
  const report = { id: "bench-0", model: MODEL, role: "colocated", engineUrl: instanceUrl, servingDeployment: "bench/bench", podNamespace: "bench", podName: "bench-0", reportedUnixMs: Date.now(), load: { kvBlocksTotal: 100_000, kvBlocksUsed: 0, blockSizeTokens: 16, runningRequests: 0, queuedRequests: 0, headOfLineDemandBlocks: 0, highPriorityRunning: 0, draining: false, outstandingPromptTokens: 0 } };
  const gateway = await startProcess("bench/gateway/static-gateway.ts", { BENCH_INSTANCES: JSON.stringify([report]), GPUFLEET_GATEWAY_PORT: "0", GPUFLEET_GATEWAY_HOST: "127.0.0.1", GPUFLEET_GATEWAY_LOG_LEVEL: "warn", GPUFLEET_GATEWAY_MAX_QUEUED_PER_INSTANCE: "100000" }, "gateway listening");
  const gatewayUrl = `http://127.0.0.1:${gateway.line.port as number}`;
  try {
    const directLatency = await latency(instanceUrl);
    const gatewayLatency = await latency(gatewayUrl);
    const directRequestsPerSec = await throughput(instanceUrl);
    const gatewayRequestsPerSec = await throughput(gatewayUrl);
    const notMeasured = "not yet measured: needs the simulated instances (latency-model step times, KV) on the Azure trace";
    const result = {
      setup: { instance: "test instance (placeholder, fixed 1 ms token interval)", maxTokens: MAX_TOKENS, sequentialRequests: SEQUENTIAL_REQUESTS, concurrency: CONCURRENCY, durationMs: DURATION_MS, loopback: true, cpus: (await import("node:os")).cpus().length },
      directRequestsPerSec: round(directRequestsPerSec, 1),
      gatewayRequestsPerSec: round(gatewayRequestsPerSec, 1),
      throughputRatio: round(gatewayRequestsPerSec / directRequestsPerSec, 3),
      directLatencyMsP50: round(directLatency.p50Ms),
      gatewayLatencyMsP50: round(gatewayLatency.p50Ms),
      directLatencyMsP99: round(directLatency.p99Ms),
      gatewayLatencyMsP99: round(gatewayLatency.p99Ms),
      addedLatencyMsP50: round(gatewayLatency.p50Ms - directLatency.p50Ms),
      p99TtftFreenessMs: null,
      p99TtftRoundRobinMs: null,
      p99TtftNote: notMeasured,
    };
    const dir = path.join(ROOT, "bench/results");
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "gateway.json"), JSON.stringify(result, null, 2) + "\n");
    const md = [
      "# Gateway overhead (loopback)",
      "",
      `One test instance (placeholder for the simulated workers; ${TOKEN_INTERVAL_MS} ms per token, ${MAX_TOKENS} tokens, non-streamed) reached directly and through one gateway process. ${result.setup.cpus} CPUs shared by the client, the gateway, the instance and other work on the machine.`,
      "",
      "| | direct | through gateway | ratio / difference |",
      "|---|---|---|---|",
      `| requests/s, ${CONCURRENCY} closed-loop clients, ${DURATION_MS / 1000} s | ${result.directRequestsPerSec} | ${result.gatewayRequestsPerSec} | ${result.throughputRatio}× |`,
      `| latency P50, sequential (ms) | ${result.directLatencyMsP50} | ${result.gatewayLatencyMsP50} | +${result.addedLatencyMsP50} ms |`,
      `| latency P99, sequential (ms) | ${result.directLatencyMsP99} | ${result.gatewayLatencyMsP99} | |`,
      "",
      `P99 TTFT, freeness vs round-robin at high load on the Azure trace: ${notMeasured}.`,
      "",
    ].join("\n");
    await writeFile(path.join(dir, "gateway.md"), md);
    console.log(md);
  } finally {
    gateway.child.kill("SIGTERM");
    instance.child.kill("SIGTERM");
  }
}
