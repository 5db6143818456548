/**
 * Gateway admission (gateway/src/admission) on the real gateway process, with simulated serving instances (the
 * agent's own parts, test/support/simulated-instances.ts) reporting their load over the cluster's NATS:
 * - API keys from a file: 401 without or with a wrong key (OpenAI's invalid_api_key), 200 with one; probes and
 *   metrics need none; a rewritten file (a rotated Secret) takes effect without a restart;
 * - overload: with 2 slots and a queue of 2, a burst of 12 streams gets only 200, 429 or 503, every refusal with
 *   Retry-After, at least 8 refused at once, and the refusals counted by reason;
 * - a client trickling its request is cut off by the request timeout (Node answers 408 and closes);
 * - fuzzed bodies (random bytes and JSON, oversized) get 400/404/413 in OpenAI's error shape, never a 5xx, and the
 *   gateway keeps serving.
 */
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../harness/wait.js";
import { testCluster } from "../../support/cluster.js";
import { startGatewayProcess, type GatewayProcess } from "../../support/gateway.js";
import { metricValue } from "../../support/operator.js";
import { startSimulatedInstances, type SimulatedInstances } from "../../support/simulated-instances.js";

const KEY = "sk-gpufleet-test-0123456789abcdef";
const ROTATED = "sk-gpufleet-rotated-fedcba9876543210";
let dir: string;
let keyFile: string;
let sim: SimulatedInstances;
let gateway: GatewayProcess;

beforeAll(async () => {
  const cluster = testCluster();
  dir = mkdtempSync(join(tmpdir(), "gw-admission-"));
  keyFile = join(dir, "api-keys");
  writeFileSync(keyFile, `# test keys\n${KEY}\n`);
  sim = await startSimulatedInstances({
    natsUrl: cluster.natsUrl,
    pods: [{ name: "adm-0" }],
    namespace: "admission",
    deployment: `adm-${Date.now().toString(36)}`,
  });
  gateway = await startGatewayProcess({
    GPUFLEET_GATEWAY_NATS_URL: cluster.natsUrl,
    GPUFLEET_GATEWAY_MAX_IN_FLIGHT: "2",
    GPUFLEET_GATEWAY_MAX_QUEUED: "2",
    GPUFLEET_GATEWAY_QUEUE_TIMEOUT_MS: "1500",
    GPUFLEET_GATEWAY_ADMISSION_RETRY_AFTER_S: "2",
    GPUFLEET_GATEWAY_REQUEST_TIMEOUT_MS: "1000",
    GPUFLEET_GATEWAY_API_KEYS_FILE: keyFile,
    GPUFLEET_GATEWAY_API_KEYS_REFRESH_MS: "200",
  });
  await waitFor(
    async () => {
      const res = await fetch(`${gateway.url}/v1/models`, { headers: auth(KEY) });
      const body = (await res.json()) as { data?: { id: string }[] };
      return body.data?.some((m) => m.id === sim.model);
    },
    { description: "the gateway routes the simulated model", timeoutMs: 60_000 },
  );
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const completion = (maxTokens: number, stream: boolean) =>
  JSON.stringify({ model: sim.model, prompt: "hello there", max_tokens: maxTokens, stream });
const post = (body: string, headers: Record<string, string> = auth(KEY)) =>
  fetch(`${gateway.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
const metrics = async () => (await fetch(`${gateway.url}/metrics`)).text();

describe("API keys", () => {
  it("refuses a missing or wrong key with 401 invalid_api_key, admits a listed one", async () => {
    const refused: Record<string, string>[] = [{}, auth("sk-wrong"), { "x-api-key": "sk-wrong" }];
    for (const headers of refused) {
      const res = await post(completion(4, false), headers);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");
    }
    expect((await fetch(`${gateway.url}/v1/models`)).status).toBe(401);
    const ok = await post(completion(4, false));
    expect(ok.status).toBe(200);
    expect((await post(completion(4, false), { "x-api-key": KEY })).status).toBe(200);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const text = await metrics();
    expect(
      metricValue(text, "gpufleet_gateway_admission_refused_total", { reason: "missing_key" }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      metricValue(text, "gpufleet_gateway_admission_refused_total", { reason: "invalid_key" }),
    ).toBeGreaterThanOrEqual(2);
  });

  it("takes a rotated key file without a restart", async () => {
    writeFileSync(keyFile, `${ROTATED}\n`);
    await waitFor(async () => (await post(completion(2, false), auth(ROTATED))).status === 200, {
      description: "the rotated key admitted",
      timeoutMs: 20_000,
    });
    expect((await post(completion(2, false))).status).toBe(401);
    writeFileSync(keyFile, `${KEY}\n`);
    await waitFor(async () => (await post(completion(2, false))).status === 200, {
      description: "the first key admitted again",
      timeoutMs: 20_000,
    });
  });

  it("never writes a key into its logs", async () => {
    const logged = JSON.stringify(gateway.logs);
    expect(logged).not.toContain(KEY);
    expect(logged).not.toContain(ROTATED);
    expect(logged).not.toContain("sk-wrong");
  });
});

describe("overload", () => {
  it("a burst beyond slots + queue gets 429/503 with Retry-After, never anything else", async () => {
    const before =
      metricValue(await metrics(), "gpufleet_gateway_admission_refused_total", { reason: "queue_full" }) ?? 0;
    const burst = await Promise.all(
      Array.from({ length: 12 }, async () => {
        const res = await post(completion(300, true));
        const text = await res.text(); // reads the stream to its end
        return { status: res.status, retryAfter: res.headers.get("retry-after"), text };
      }),
    );
    const statuses = burst.map((r) => r.status);
    expect(
      statuses.every((s) => s === 200 || s === 429 || s === 503),
      `statuses ${statuses.join(",")}`,
    ).toBe(true);
    for (const r of burst.filter((x) => x.status !== 200)) {
      expect(r.retryAfter).toBe("2");
      expect(JSON.parse(r.text)).toMatchObject({ error: { code: "overloaded" } });
    }
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(8);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
    const after = await metrics();
    expect(
      (metricValue(after, "gpufleet_gateway_admission_refused_total", { reason: "queue_full" }) ?? 0) - before,
    ).toBe(statuses.filter((s) => s === 429).length);
    await waitFor(
      async () => metricValue(await metrics(), "gpufleet_gateway_admission_requests", { state: "in_flight" }) === 0,
      { description: "every slot given back", timeoutMs: 30_000 },
    );
    expect(metricValue(await metrics(), "gpufleet_gateway_admission_requests", { state: "queued" })).toBe(0);
    expect((await post(completion(4, false))).status).toBe(200);
  }, 120_000);

  it("cuts off a client that trickles its request (request timeout)", async () => {
    const port = Number(new URL(gateway.url).port);
    const socket = connect(port, "127.0.0.1");
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"mo`,
    );
    // Node checks request timeouts every 30 s (connectionsCheckingInterval), so the cut comes within timeout + 30 s.
    const trickle = setInterval(() => !socket.destroyed && socket.write(" "), 500);
    await waitFor(() => socket.destroyed || received.length > 0, {
      description: "the trickling request cut off",
      timeoutMs: 60_000,
    });
    clearInterval(trickle);
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 408/);
  }, 90_000);
});

describe("fuzzed request bodies", () => {
  it("random bodies get 400, 404 or 413 in OpenAI's error shape, never a 5xx", async () => {
    const bodies = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            model: fc.oneof(fc.string(), fc.constant(sim.model)),
            prompt: fc.oneof(fc.string(), fc.integer(), fc.array(fc.string())),
            max_tokens: fc.oneof(fc.integer(), fc.string(), fc.double()),
            stream: fc.oneof(fc.boolean(), fc.string()),
            temperature: fc.oneof(fc.double(), fc.string()),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v)),
      fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString("latin1")),
      fc.string({ maxLength: 200 }).map((s) => `{"model":${s}`),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await post(body);
        const text = await res.text();
        expect(
          res.status,
          `${res.status} for ${JSON.stringify(body).slice(0, 300)}: ${text.slice(0, 300)}`,
        ).toBeLessThan(500);
        if (res.status !== 200)
          expect(
            (JSON.parse(text) as { error: { code: string; message: string } }).error.message.length,
          ).toBeGreaterThan(0);
      }),
      { numRuns: 150 },
    );
    const huge = await post(JSON.stringify({ model: sim.model, prompt: "x".repeat(2 * 1024 * 1024) }));
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { code: string } }).error.code).toBe("body_too_large");
    expect((await post(completion(4, false))).status).toBe(200);
  }, 300_000);
});
