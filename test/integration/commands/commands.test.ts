/**
 * Commands to agents, end to end over mTLS with operator-issued certificates: the operator's certificate manager
 * issues the CA and leaves into Secrets of the real API server; the agent serves its operator port with the agent
 * Secret laid out as kubelet mounts it; the operator's client pool calls it with the operator Secret; a real
 * WorkerClient on the agent's Unix socket receives the command and acknowledges it. Also: clients without a
 * certificate, or with one from another CA, are refused; a rotated certificate is used without restarting the
 * agent; a command nobody acknowledges ends with DEADLINE_EXCEEDED; the simulation agent (main.ts) advertises its
 * endpoint on a kwok node and the pool finds it there.
 */
import { X509Certificate as X509 } from "node:crypto";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import type { V1Node, V1Secret } from "@kubernetes/client-node";
import { connect, type NatsConnection } from "nats";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentCore } from "../../../agent/src/agent.js";
import { factsToLabels } from "../../../agent/src/discovery/facts.js";
import { NodeAgentClient, WorkerClient } from "../../../agent/src/grpc/client.js";
import type { NodeDirectory } from "../../../agent/src/grpc/node-agent-service.js";
import type { WorkerCommand__Output } from "../../../agent/src/grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { AgentMetrics } from "../../../agent/src/metrics.js";
import { simulatedNodeFacts } from "../../../agent/src/simulation/model.js";
import { JetStreamTransport } from "../../../agent/src/telemetry/jetstream.js";
import { DEFAULT_PUBLISHER_LIMITS } from "../../../agent/src/telemetry/publisher.js";
import { AGENT_ENDPOINT_ANNOTATION, AGENT_SERVER_NAME } from "../../../common/src/agents/endpoint.js";
import {
  CertificateManager,
  readSecret,
  secretNames,
  tlsFilesOf,
  type CertificateSettings,
} from "../../../operator/src/agents/certificates.js";
import { agentEndpointOf } from "../../../operator/src/agents/directory.js";
import { issueCa, issueLeaf } from "../../../operator/src/agents/pki.js";
import { AgentClientPool } from "../../../operator/src/agents/pool.js";
import { OperatorMetrics } from "../../../operator/src/metrics.js";
import { systemClock, type Clock } from "../../../operator/src/runtime/clock.js";
import { silentLogger } from "../../../operator/src/runtime/logger.js";
import { freshNamespace, getTestCluster, waitFor } from "../../harness/context.js";
import { metricValue, startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";
import { startNatsServer, type NatsServer } from "../agent/nats-server.js";

const NODE = "cmd-node-1";
const DAY = 86_400_000;
const facts = simulatedNodeFacts({
  metadata: { name: NODE, annotations: { "kwok.x-k8s.io/node": "fake" } },
} satisfies V1Node);
const nodes: NodeDirectory = {
  nodeNames: () => [NODE],
  facts: (n) => (n === NODE ? facts : undefined),
  labels: (n) => (n === NODE ? factsToLabels(facts) : undefined),
};

let namespace: string;
let dir: string;
let nats: NatsServer;
let nc: NatsConnection;
let agent: AgentCore;
let pool: AgentClientPool;
let operatorMetrics: OperatorMetrics;
let settings: CertificateSettings;
const workers: WorkerClient[] = [];
const delivered: Record<string, WorkerCommand__Output[]> = {};

const names = () => secretNames(settings.secretPrefix);
const secret = async (name: string): Promise<V1Secret> => (await readSecret(getTestCluster().core, namespace, name))!;
const decoded = (s: V1Secret, key: string): string => Buffer.from(s.data![key]!, "base64").toString();

/** Lays a Secret out as kubelet does: files are symlinks into ..data, which is swapped atomically on update. */
function writeSecretVolume(target: string, s: V1Secret): void {
  mkdirSync(target, { recursive: true });
  const version = `..${Date.now()}-${Math.random().toString(36).slice(2)}`;
  mkdirSync(join(target, version));
  for (const key of Object.keys(s.data ?? {})) writeFileSync(join(target, version, key), decoded(s, key));
  symlinkSync(version, join(target, "..data_tmp"));
  renameSync(join(target, "..data_tmp"), join(target, "..data"));
  for (const key of Object.keys(s.data ?? {})) {
    try {
      symlinkSync(join("..data", key), join(target, key));
    } catch {
      // already linked through ..data
    }
  }
}

function certificateManager(clock: Clock): CertificateManager {
  return new CertificateManager({
    core: getTestCluster().core,
    clock,
    logger: silentLogger,
    metrics: operatorMetrics,
    settings,
  });
}

/** The serial of the certificate the agent presents on its operator port now. */
function presentedSerial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: "127.0.0.1", port, ca, servername: AGENT_SERVER_NAME, ALPNProtocols: ["h2"] },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial.toUpperCase());
      },
    );
    socket.on("error", reject);
  });
}

const serialOf = (pem: string): string => new X509(pem).serialNumber.toUpperCase();

/** A worker on the agent's socket that acknowledges each command as `answer` says (or never, when undefined). */
async function startWorker(
  workerId: string,
  answer: (c: WorkerCommand__Output) => { outcome: string; reason: string } | "close" | undefined,
): Promise<void> {
  const client = new WorkerClient(`unix:${join(dir, "agent.sock")}`);
  workers.push(client);
  await client.register({
    workerId,
    podNamespace: "ns",
    podName: workerId,
    podUid: workerId,
    nodeName: NODE,
    kind: "serving",
    gpuUuids: [],
    rank: -1,
    worldSize: 0,
    simulated: false,
  });
  delivered[workerId] = [];
  const stream = client.commands(
    workerId,
    (command) => {
      delivered[workerId]!.push(command);
      const a = answer(command);
      if (a === "close") stream.cancel();
      else if (a) void client.ackCommand({ workerId, commandId: command.commandId, ...a });
    },
    () => {},
  );
}

beforeAll(async () => {
  namespace = await freshNamespace("commands");
  operatorMetrics = new OperatorMetrics({ defaultMetrics: false });
  settings = {
    namespace,
    secretPrefix: "gpufleet",
    caLifetimeMs: 365 * DAY,
    leafLifetimeMs: 30 * DAY,
    renewAtFraction: 2 / 3,
    agentDnsNames: [AGENT_SERVER_NAME],
    natsServerDnsNames: [],
    maxCheckIntervalMs: 3600_000,
  };
  // Issued 21 days ago (30-day leaves): still valid now, and due for renewal (past 2/3) at the rotation test.
  await certificateManager({ ...systemClock, now: () => Date.now() - 21 * DAY }).reconcile();
  dir = mkdtempSync(join(tmpdir(), "gpufleet-commands-"));
  writeSecretVolume(join(dir, "tls"), await secret(names().agent));

  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  agent = new AgentCore(
    {
      workerSocketPath: join(dir, "agent.sock"),
      operatorAddress: "127.0.0.1:0",
      tls: { dir: join(dir, "tls"), refreshIntervalMs: 200 },
      heartbeatIntervalMs: 1000,
      missedHeartbeatsLimit: 30,
      publisherLimits: {
        ...DEFAULT_PUBLISHER_LIMITS,
        maxBatchItems: 100,
        maxBufferedItems: 1000,
        maxInFlightBatches: 2,
        flushIntervalMs: 50,
      },
    },
    await JetStreamTransport.connect(nc),
    nodes,
    { run: async () => ({ passed: true, summary: "ok", details: {} }) },
    new AgentMetrics(new Registry()),
    () => {},
  );
  await agent.start();
  const endpoint = `127.0.0.1:${agent.server.operatorPort}`;
  pool = new AgentClientPool({
    lookup: (n) =>
      agentEndpointOf(
        n,
        n === NODE ? { metadata: { name: n, annotations: { [AGENT_ENDPOINT_ANNOTATION]: endpoint } } } : undefined,
      ),
    serverName: AGENT_SERVER_NAME,
    insecure: false,
    callTimeoutMs: 3000,
    maxAttempts: 4,
    backoff: { baseMs: 50, maxMs: 500 },
    circuit: { failureThreshold: 5, openMs: 60_000 },
    metrics: operatorMetrics,
  });
  pool.setCredentials(tlsFilesOf(await secret(names().operator)));

  await startWorker("w-ack", (c) =>
    c.command === "drain"
      ? { outcome: "applied", reason: "" }
      : c.command === "abort"
        ? { outcome: "rejected", reason: "no request to abort" }
        : { outcome: "failed", reason: `cannot ${c.command}` },
  );
  await startWorker("w-silent", () => undefined);
  await startWorker("w-closing", () => "close");
});

afterAll(async () => {
  pool?.close();
  for (const w of workers) w.close();
  await agent?.stop();
  await nc?.close();
  await nats?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const codeOf = async (p: Promise<unknown>): Promise<[number, string]> => {
  try {
    await p;
    return [grpc.status.OK, ""];
  } catch (err) {
    return [(err as grpc.ServiceError).code, (err as grpc.ServiceError).details ?? (err as Error).message];
  }
};

describe("command round trip over mTLS", () => {
  it("the operator-issued Secrets hold a CA and leaves it signed", async () => {
    const [ca, agentTls, operatorTls] = await Promise.all([
      secret(names().ca),
      secret(names().agent),
      secret(names().operator),
    ]);
    const caCert = new X509(decoded(ca, "ca.crt"));
    for (const s of [agentTls, operatorTls]) {
      expect(s.type).toBe("kubernetes.io/tls");
      expect(new X509(decoded(s, "tls.crt")).checkIssued(caCert)).toBe(true);
      expect(decoded(s, "ca.crt")).toBe(decoded(ca, "ca.crt"));
    }
    expect(new X509(decoded(agentTls, "tls.crt")).subjectAltName).toBe(`DNS:${AGENT_SERVER_NAME}`);
    expect(Object.keys(agentTls.data!).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]); // the CA key never leaves its Secret
  });

  it("operator → agent → worker → acknowledgement, with the worker's outcome", async () => {
    const applied = await pool.sendWorkerCommand(NODE, "w-ack", { commandId: "c-drain", drain: { deadlineMs: 10 } });
    expect(applied).toMatchObject({ commandId: "c-drain", outcome: "applied", reason: "" });
    expect(Number(applied.acknowledgedUnixMs)).toBeGreaterThan(0);
    const rejected = await pool.sendWorkerCommand(NODE, "w-ack", { commandId: "c-abort", abort: { reason: "test" } });
    expect(rejected).toMatchObject({ commandId: "c-abort", outcome: "rejected", reason: "no request to abort" });
    const failed = await pool.sendWorkerCommand(NODE, "w-ack", {
      commandId: "c-fault",
      injectFault: { kind: "hang-rank", rank: 0, peerRank: 0, factor: 0 },
    });
    expect(failed).toMatchObject({ outcome: "failed", reason: "cannot injectFault" });
    expect(delivered["w-ack"]!.map((c) => c.commandId)).toEqual(["c-drain", "c-abort", "c-fault"]);
  });

  it("a retried command_id answers with the first outcome and is not delivered again", async () => {
    const first = await pool.sendWorkerCommand(NODE, "w-ack", { commandId: "c-once", drain: { deadlineMs: 10 } });
    const again = await pool.sendWorkerCommand(NODE, "w-ack", { commandId: "c-once", drain: { deadlineMs: 10 } });
    expect(again).toEqual(first);
    expect(delivered["w-ack"]!.filter((c) => c.commandId === "c-once")).toHaveLength(1);
  });

  it("a command nobody acknowledges ends with DEADLINE_EXCEEDED, never success", async () => {
    const [code] = await codeOf(
      pool.sendWorkerCommand(NODE, "w-silent", { commandId: "c-silent", drain: { deadlineMs: 10 } }, 800),
    );
    expect(code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(delivered["w-silent"]!.map((c) => c.commandId)).toEqual(["c-silent"]); // it was delivered, just never acknowledged
    expect(
      metricValue(await operatorMetrics.registry.metrics(), "gpufleet_operator_agent_calls_total", {
        method: "SendWorkerCommand",
        code: "DEADLINE_EXCEEDED",
      }),
    ).toBe(1);
  });

  it("a worker whose stream closes with a command pending fails it at once with UNAVAILABLE", async () => {
    const raw = new NodeAgentClient(
      `127.0.0.1:${agent.server.operatorPort}`,
      grpc.credentials.createSsl(...sslArgs(await secret(names().operator))),
      10_000,
      { "grpc.ssl_target_name_override": AGENT_SERVER_NAME },
    );
    try {
      const [code, details] = await codeOf(
        raw.sendWorkerCommand("w-closing", { commandId: "c-closing", drain: { deadlineMs: 10 } }),
      );
      expect(code).toBe(grpc.status.UNAVAILABLE);
      expect(details).toMatch(/closed before it acknowledged command "c-closing"/);
    } finally {
      raw.close();
    }
  });

  it("answers ApplyTrafficPlan with UNIMPLEMENTED", async () => {
    const raw = new NodeAgentClient(
      `127.0.0.1:${agent.server.operatorPort}`,
      grpc.credentials.createSsl(...sslArgs(await secret(names().operator))),
      3000,
      { "grpc.ssl_target_name_override": AGENT_SERVER_NAME },
    );
    try {
      const [code] = await codeOf(
        raw.applyTrafficPlan({
          nodeName: NODE,
          planId: "p1",
          routes: [{ communicator: "c", rank: 0, peerRank: 1, nic: "mlx5_0", weight: 1 }],
        }),
      );
      expect(code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      raw.close();
    }
  });
});

function sslArgs(s: V1Secret): [Buffer, Buffer, Buffer] {
  const tls = tlsFilesOf(s)!;
  return [tls.caCert, tls.key, tls.cert];
}

describe("the agent's control port refuses unauthenticated clients", () => {
  const listWith = async (credentials: grpc.ChannelCredentials): Promise<number> => {
    const client = new NodeAgentClient(`127.0.0.1:${agent.server.operatorPort}`, credentials, 3000, {
      "grpc.ssl_target_name_override": AGENT_SERVER_NAME,
    });
    try {
      return (await codeOf(client.listWorkers()))[0];
    } finally {
      client.close();
    }
  };

  it("serves the operator's certificate (control)", async () => {
    expect(await listWith(grpc.credentials.createSsl(...sslArgs(await secret(names().operator))))).toBe(grpc.status.OK);
  });

  it.each([
    ["a plaintext client", async () => grpc.credentials.createInsecure()],
    [
      "a TLS client without a certificate",
      async () => grpc.credentials.createSsl(tlsFilesOf(await secret(names().operator))!.caCert),
    ],
    [
      "a client whose certificate another CA signed",
      async () => {
        const foreignCa = await issueCa({
          commonName: "other-ca",
          notBefore: new Date(Date.now() - 60_000),
          lifetimeMs: DAY,
        });
        const foreign = await issueLeaf(foreignCa, {
          commonName: "gpufleet-operator",
          usage: "client",
          dnsNames: [],
          notBefore: new Date(Date.now() - 60_000),
          lifetimeMs: DAY,
        });
        return grpc.credentials.createSsl(
          tlsFilesOf(await secret(names().operator))!.caCert,
          Buffer.from(foreign.keyPem),
          Buffer.from(foreign.certPem),
        );
      },
    ],
  ])("refuses %s", async (_name, credentials) => {
    expect(await listWith(await credentials())).toBe(grpc.status.UNAVAILABLE);
  });
});

describe("rotation", () => {
  it("re-issues leaves past 2/3 of their lifetime; the agent serves the new one without a restart and the pool redials with its new one", async () => {
    const before = await secret(names().agent);
    await certificateManager(systemClock).reconcile();
    const after = await secret(names().agent);
    const newSerial = serialOf(decoded(after, "tls.crt"));
    expect(newSerial).not.toBe(serialOf(decoded(before, "tls.crt")));
    expect(
      metricValue(await operatorMetrics.registry.metrics(), "gpufleet_operator_certificates_issued_total", {
        secret: names().agent,
      }),
    ).toBe(2);

    const ca = decoded(after, "ca.crt");
    expect(await presentedSerial(agent.server.operatorPort, ca)).toBe(serialOf(decoded(before, "tls.crt")));
    // A torn set (new certificate, old key) is skipped: the agent keeps serving the previous one.
    writeSecretVolume(join(dir, "tls"), { ...after, data: { ...after.data, "tls.key": before.data!["tls.key"]! } });
    expect(await agent.server.reloadCertificates()).toBe(false);
    expect(await presentedSerial(agent.server.operatorPort, ca)).toBe(serialOf(decoded(before, "tls.crt")));
    writeSecretVolume(join(dir, "tls"), after); // what kubelet does when the Secret changes
    await waitFor(async () => (await presentedSerial(agent.server.operatorPort, ca)) === newSerial, {
      description: "agent presents the rotated certificate",
      timeoutMs: 20_000,
    });

    expect(pool.setCredentials(tlsFilesOf(await secret(names().operator)))).toBe(true);
    expect(
      await pool.sendWorkerCommand(NODE, "w-ack", { commandId: "c-after-rotation", drain: { deadlineMs: 10 } }),
    ).toMatchObject({ outcome: "applied" });
  });
});

describe("retries and the circuit", () => {
  it("retries idempotent calls after UNAVAILABLE, never ApplyTrafficPlan, and opens the circuit of a node whose agent is gone", async () => {
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    const gone = "gone-node";
    const deadPool = new AgentClientPool({
      lookup: (n) =>
        // nothing listens on port 1
        agentEndpointOf(n, { metadata: { name: n, annotations: { [AGENT_ENDPOINT_ANNOTATION]: "127.0.0.1:1" } } }),
      serverName: AGENT_SERVER_NAME,
      insecure: false,
      callTimeoutMs: 5000,
      maxAttempts: 3,
      backoff: { baseMs: 10, maxMs: 50 },
      circuit: { failureThreshold: 4, openMs: 60_000 },
      metrics,
    });
    deadPool.setCredentials(tlsFilesOf(await secret(names().operator)));
    try {
      expect((await codeOf(deadPool.listWorkers(gone)))[0]).toBe(grpc.status.UNAVAILABLE); // 3 attempts: 3 failures
      expect(
        (
          await codeOf(
            deadPool.call(gone, "ApplyTrafficPlan", (c, ms) =>
              c.applyTrafficPlan({ nodeName: gone, planId: "p", routes: [] }, ms),
            ),
          )
        )[0],
      ).toBe(grpc.status.UNAVAILABLE); // 1 attempt: 4th failure
      expect(deadPool.circuitState(gone)).toBe("open");
      const [code, details] = await codeOf(deadPool.getNodeInfo(gone));
      expect(code).toBe(grpc.status.UNAVAILABLE);
      expect(details).toMatch(/circuit .* is open/); // failed fast in the pool: no call was made (CIRCUIT_OPEN below)
      const text = await metrics.registry.metrics();
      expect(metricValue(text, "gpufleet_operator_agent_call_retries_total", { method: "ListWorkers" })).toBe(2);
      expect(
        metricValue(text, "gpufleet_operator_agent_call_retries_total", { method: "ApplyTrafficPlan" }),
      ).toBeUndefined();
      expect(
        metricValue(text, "gpufleet_operator_agent_calls_total", { method: "GetNodeInfo", code: "CIRCUIT_OPEN" }),
      ).toBe(1);
      expect(metricValue(text, "gpufleet_operator_agent_circuit_state", { node: gone })).toBe(2);
    } finally {
      deadPool.close();
    }
  });
});

describe("discovery through the node annotation (simulation agent process, mTLS from the Secret)", () => {
  let simAgent: ComponentProcess | undefined;
  const kwokNode = `cmd-kwok-${Math.random().toString(36).slice(2, 7)}`;
  afterAll(async () => {
    await simAgent?.stop();
    await getTestCluster()
      .core.deleteNode({ name: kwokNode })
      .catch(() => undefined);
  });

  it("the agent advertises its endpoint on the kwok node and the pool reaches it there", async () => {
    const { core, kubeconfigPath, natsUrl } = getTestCluster();
    await core.createNode({ body: { metadata: { name: kwokNode, annotations: { "kwok.x-k8s.io/node": "fake" } } } });
    const tlsDir = join(dir, "sim-tls");
    writeSecretVolume(tlsDir, await secret(names().agent));
    simAgent = (
      await startSimulatedAgent({
        kubeconfigPath,
        natsUrl: natsUrl || nats.url,
        name: "agent-commands",
        env: { GPUFLEET_AGENT_TLS_DIR: tlsDir },
      })
    ).agent;
    const node = await waitFor(
      async () => {
        const n = await core.readNode({ name: kwokNode });
        return n.metadata?.annotations?.[AGENT_ENDPOINT_ANNOTATION] ? n : undefined;
      },
      { description: `${AGENT_ENDPOINT_ANNOTATION} on ${kwokNode}`, timeoutMs: 30_000 },
    );
    const simPool = new AgentClientPool({
      lookup: (n) => agentEndpointOf(n, n === kwokNode ? node : undefined),
      serverName: AGENT_SERVER_NAME,
      insecure: false,
      callTimeoutMs: 5000,
      maxAttempts: 4,
      backoff: { baseMs: 50, maxMs: 500 },
      circuit: { failureThreshold: 5, openMs: 60_000 },
      metrics: new OperatorMetrics({ defaultMetrics: false }),
    });
    simPool.setCredentials(tlsFilesOf(await secret(names().operator)));
    try {
      const info = await simPool.getNodeInfo(kwokNode);
      expect(info).toMatchObject({ nodeName: kwokNode, simulated: true });
      expect(info.gpus).toHaveLength(8);
    } finally {
      simPool.close();
    }
  });

  it("an agent without TLS and without the development flag refuses to start", async () => {
    const { kubeconfigPath, natsUrl } = getTestCluster();
    await expect(
      startSimulatedAgent({
        kubeconfigPath,
        natsUrl: natsUrl || nats.url,
        name: "agent-plain",
        env: { GPUFLEET_AGENT_INSECURE: "false" },
      }),
    ).rejects.toThrow(/GPUFLEET_AGENT_TLS_DIR is required/);
  });
});
