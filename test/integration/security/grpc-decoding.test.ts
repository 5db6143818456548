/**
 * The agent's worker gRPC server (a real grpc-js server on a Unix socket, AgentCore as the agent wires it) fed
 * bytes a worker should never send: random and truncated protobuf on ReportCollectives fail their call with
 * INTERNAL and count in gpufleet_agent_undecodable_messages_total; a message above the 32 MiB receive limit is
 * RESOURCE_EXHAUSTED; the server keeps answering well-formed calls after each. (The decoder itself is fuzzed in
 * agent/src/grpc/collective-batch-codec.fuzz.test.ts.)
 */
import * as grpc from "@grpc/grpc-js";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCore } from "../../../agent/src/agent.js";
import { NodeDiagnostics } from "../../../agent/src/diagnostics.js";
import { factsToLabels } from "../../../agent/src/discovery/facts.js";
import { AgentMetrics } from "../../../agent/src/metrics.js";
import { KWOK_NODE, simulatedNodeFacts } from "../../../agent/src/simulation/model.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../../agent/src/telemetry/publisher.js";

const NODE = "fuzz-node-0";
const METHOD = "/gpufleet.worker.v1.WorkerAgent/ReportCollectives";
let dir: string;
let agent: AgentCore;
let registry: Registry;
let client: grpc.Client;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gpufleet-grpc-fuzz-"));
  const socket = join(dir, "agent.sock");
  const facts = simulatedNodeFacts({ metadata: { name: NODE, annotations: { [KWOK_NODE.key]: KWOK_NODE.value } } });
  registry = new Registry();
  agent = new AgentCore(
    {
      workerSocketPath: socket,
      operatorAddress: "127.0.0.1:0",
      tls: undefined,
      heartbeatIntervalMs: 1000,
      missedHeartbeatsLimit: 5,
      publisherLimits: DEFAULT_PUBLISHER_LIMITS,
    },
    undefined,
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
    new AgentMetrics(registry),
    () => {},
  );
  await agent.start();
  client = new grpc.Client(`unix:${socket}`, grpc.credentials.createInsecure(), {
    "grpc.max_send_message_length": 64 * 1024 * 1024,
  });
});

afterAll(async () => {
  client?.close();
  await agent?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One ReportCollectives call with these exact bytes; resolves with the status code and details. */
function call(bytes: Buffer): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      METHOD,
      (b: Buffer) => b,
      (b: Buffer) => b,
      bytes,
      { deadline: Date.now() + 10_000 },
      (error) => {
        resolve(
          error ? { code: error.code ?? -1, details: error.details ?? "" } : { code: grpc.status.OK, details: "" },
        );
      },
    );
  });
}

const undecodable = async () =>
  (await registry.getSingleMetric("gpufleet_agent_undecodable_messages_total")!.get()).values.find(
    (v) => v.labels.method === "ReportCollectives",
  )?.value ?? 0;

describe("worker gRPC edge under bad bytes", () => {
  it("a well-formed batch from an unregistered worker is refused as such (the baseline the others are compared to)", async () => {
    const result = await call(Buffer.from([0x0a, 0x03, 0x77, 0x2d, 0x31])); // worker_id "w-1", no records
    expect(result.code).not.toBe(grpc.status.INTERNAL);
    expect(result.code).not.toBe(grpc.status.OK);
  });

  it("random and truncated bytes fail with INTERNAL, are counted, and the server keeps serving", async () => {
    const before = await undecodable();
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 256 }), async (bytes) => {
        const result = await call(Buffer.from(bytes));
        if (result.code === grpc.status.INTERNAL) refused++;
        // Bytes that happen to be valid protobuf reach the handler, which refuses the unknown worker otherwise.
        expect([
          grpc.status.INTERNAL,
          grpc.status.NOT_FOUND,
          grpc.status.INVALID_ARGUMENT,
          grpc.status.FAILED_PRECONDITION,
        ]).toContain(result.code);
      }),
      { numRuns: 200 },
    );
    // a record claiming 2^49 bytes
    const truncated = await call(Buffer.from([0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]));
    expect(truncated.code).toBe(grpc.status.INTERNAL);
    refused++;
    expect(refused).toBeGreaterThan(50);
    expect((await undecodable()) - before).toBe(refused);
    expect((await call(Buffer.from([0x0a, 0x03, 0x77, 0x2d, 0x31]))).code).not.toBe(grpc.status.INTERNAL);
  }, 120_000);

  it("a message above the 32 MiB receive limit is RESOURCE_EXHAUSTED and the server keeps serving", async () => {
    const huge = Buffer.alloc(33 * 1024 * 1024);
    const result = await call(huge);
    expect(result.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(result.details).toMatch(/larger than max/i);
    expect((await call(Buffer.from([0x0a, 0x03, 0x77, 0x2d, 0x31]))).code).not.toBe(grpc.status.INTERNAL);
  }, 60_000);
});
