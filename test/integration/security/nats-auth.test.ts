/**
 * NATS per-component identity and subject permissions against a real nats-server (its own instance: the shared
 * test cluster's server keeps running without auth for every other test). The server's config is what
 * common/src/nats/authorization.ts renders; the certificates come from the operator's own PKI code
 * (operator/src/agents/pki.ts), and the components' real code paths run on top: the agent's JetStreamTransport,
 * the operator's ensureStreams/ensureConsumer, the gateway's load-stream instance source.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, ErrorCode, NatsError, type NatsConnection, type Status } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  natsIdentity,
  NatsRole,
  renderNatsAuthorization,
  type NatsIdentity,
} from "../../../common/src/nats/authorization.js";
import { natsCredentialOptions } from "../../../common/src/nats/connect.js";
import { ensureStreams, streamDefinition, streamName, STREAMS } from "../../../common/src/telemetry/streams.js";
import { encodeJson, Schema, Stream, subjectFor, subscriptionFor } from "../../../common/src/telemetry/subjects.js";
import { issueCa, issueLeaf, LeafUsage, type IssuedCertificate } from "../../../operator/src/agents/pki.js";
import { DEFAULT_CONSUMER_LIMITS, ensureConsumer } from "../../../operator/src/telemetry/consumer.js";
import { JetStreamTransport } from "../../../agent/src/telemetry/jetstream.js";
import { JetStreamLoadInstanceSource } from "../../../gateway/src/instances/nats-source.js";
import type { InstanceReport } from "../../../gateway/src/instances/source.js";
import { createLogger } from "../../../gateway/src/logger.js";
import { GatewayMetrics } from "../../../gateway/src/metrics.js";
import { freePorts } from "../../harness/cluster.js";
import { startConfiguredNats } from "../../support/nats.js";
import { claimRunDir, type ManagedProcess } from "../../harness/processes.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster } from "../../support/cluster.js";
import { startGatewayProcess } from "../../support/gateway.js";
import { startOperatorProcess, startSimulatedAgent } from "../../support/operator.js";

const NODES = ["node-a", "node-b"];
const DAY_MS = 24 * 3600_000;

let dir: string;
let server: ManagedProcess;
let url: string;
let ca: IssuedCertificate;
const open: NatsConnection[] = [];

/** A client certificate folder (ca.crt, tls.crt, tls.key) for this common name, signed by `signer`. */
async function clientCertDir(name: string, commonName: string, signer: IssuedCertificate): Promise<string> {
  const leaf = await issueLeaf(signer, {
    commonName,
    usage: LeafUsage.client,
    dnsNames: [],
    notBefore: new Date(Date.now() - 60_000),
    lifetimeMs: DAY_MS,
  });
  const folder = join(dir, "clients", name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, "ca.crt"), ca.certPem);
  writeFileSync(join(folder, "tls.crt"), leaf.certPem);
  writeFileSync(join(folder, "tls.key"), leaf.keyPem, { mode: 0o600 });
  return folder;
}

const dirs = new Map<string, string>();

async function connectAs(who: NatsIdentity, folder = dirs.get(who.user)!): Promise<NatsConnection> {
  const nc = await connect({ servers: url, ...natsCredentialOptions(folder, who), reconnect: false });
  open.push(nc);
  return nc;
}

/** The first PERMISSIONS_VIOLATION the server reports to this connection for `subject` (within 20 s). */
async function violation(nc: NatsConnection, subject: string): Promise<Status> {
  const seen = (async () => {
    for await (const s of nc.status()) {
      const ctx = (s as Status & { permissionContext?: { subject: string } }).permissionContext;
      if (s.type === "error" && s.data === ErrorCode.PermissionsViolation && ctx?.subject === subject) return s;
    }
    throw new Error(`the connection closed before a permissions violation on ${subject}`);
  })();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no permissions violation on ${subject} within 20 s`)), 20_000);
  });
  try {
    return await Promise.race([seen, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Subscribes and returns the error the subscription ended with (the server refused it) or "delivered". */
async function trySubscribe(nc: NatsConnection, subject: string): Promise<unknown> {
  const sub = nc.subscribe(subject, { max: 1, timeout: 10_000 });
  try {
    for await (const _m of sub) return "delivered";
    return "closed without error";
  } catch (err) {
    return err;
  }
}

/** A plaintext CONNECT + PING: what the server sent, and whether it closed the connection within 10 s. */
function plaintextConnect(): Promise<{ received: string; closedByServer: boolean }> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    let received = "";
    const socket = createConnection({ host: "127.0.0.1", port: Number(port) }, () =>
      socket.write('CONNECT {"verbose":false}\r\nPING\r\n'),
    );
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closedByServer: false });
    }, 10_000);
    socket.on("data", (d: Buffer) => (received += d.toString()));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ received, closedByServer: true });
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function loadMessage(node: string, podName: string): Uint8Array {
  return encodeJson({
    schema: Schema.load,
    node,
    sentUnixMs: Date.now(),
    reports: [
      {
        workerId: `${podName}-w`,
        podNamespace: "nats-auth",
        podName,
        unixMs: Date.now(),
        queueLength: 0,
        runningRequests: 0,
        kvCacheUsedFraction: 0,
        kvCacheUsedBytes: 0,
        ttftMs: 0,
        tpotMs: 0,
        tokensPerSecond: 0,
        engineUrl: "http://127.0.0.1:1",
        model: "nats-auth-model",
        role: "colocated",
        servingDeployment: "nats-auth/sd",
        kvBlocksTotal: 16,
        kvBlocksUsed: 0,
        blockSizeTokens: 16,
      },
    ],
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gpufleet-nats-auth-"));
  await claimRunDir(dir);
  const notBefore = new Date(Date.now() - 60_000);
  ca = await issueCa({ commonName: "gpufleet-ca", notBefore, lifetimeMs: DAY_MS });
  const serverCert = await issueLeaf(ca, {
    commonName: "nats",
    usage: LeafUsage.server,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    notBefore,
    lifetimeMs: DAY_MS,
  });
  for (const [file, pem] of [
    ["ca.crt", ca.certPem],
    ["server.crt", serverCert.certPem],
    ["server.key", serverCert.keyPem],
  ] as const)
    writeFileSync(join(dir, file), pem, { mode: 0o600 });
  const identities = [
    natsIdentity(NatsRole.operator),
    natsIdentity(NatsRole.gateway),
    natsIdentity(NatsRole.simulationAgent),
    ...NODES.map((n) => natsIdentity(NatsRole.agent, n)),
    // Signed by the right CA, named for a node the config does not list.
    natsIdentity(NatsRole.agent, "node-z"),
  ];
  for (const who of identities)
    dirs.set(who.user, await clientCertDir(who.commonName.replace(/:/g, "-"), who.commonName, ca));

  const [port] = (await freePorts(1)) as [number];
  url = `nats://127.0.0.1:${port}`;
  const config = [
    `listen: "127.0.0.1:${port}"`,
    `jetstream { store_dir: ${JSON.stringify(join(dir, "store"))} }`,
    renderNatsAuthorization(
      { nodes: NODES, simulationAgent: true },
      { certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key"), caFile: join(dir, "ca.crt") },
    ),
  ].join("\n");
  writeFileSync(join(dir, "nats.conf"), config);
  server = await startConfiguredNats({
    name: "nats-server-auth",
    configPath: join(dir, "nats.conf"),
    port,
    runDir: dir,
    description: "nats-server (with authorization)",
  });
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(open.map((nc) => nc.close()));
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("NATS authorization (verify_and_map, per-node allow lists)", () => {
  const agentA = natsIdentity(NatsRole.agent, "node-a");

  it("refuses a client without a certificate, one from another CA, and one for an unlisted node", async () => {
    // Plaintext: the server asks for TLS in its INFO, never answers the PING, and drops the connection.
    const plain = await plaintextConnect();
    expect(plain.received).toContain('"tls_required":true');
    expect(plain.received).not.toContain("PONG");
    expect(plain.closedByServer).toBe(true);
    // TLS that trusts the server, without a client certificate: the server ends the handshake.
    const noCert = await connect({ servers: url, reconnect: false, tls: { caFile: join(dir, "ca.crt") } }).then(
      () => "connected",
      (err: unknown) => String(err),
    );
    // The server refused the handshake: its TLS alert 42, or, when it closes first, the reset before the client
    // read the alert. Either way no connection came up ("connected" fails both).
    const tlsRefusal = /bad certificate|ECONNRESET/;
    expect(noCert).toMatch(tlsRefusal);

    const otherCa = await issueCa({
      commonName: "gpufleet-ca",
      notBefore: new Date(Date.now() - 60_000),
      lifetimeMs: DAY_MS,
    });
    const forged = await clientCertDir("forged-node-a", agentA.commonName, otherCa);
    const forgedOutcome = await connectAs(agentA, forged).then(
      () => "connected",
      (err: unknown) => String(err),
    );
    expect(forgedOutcome).toMatch(tlsRefusal);

    const unlisted = natsIdentity(NatsRole.agent, "node-z");
    const refused = await connectAs(unlisted).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(NatsError);
    expect((refused as NatsError).code).toBe(ErrorCode.AuthorizationViolation);
  });

  it("lets the operator set up the streams and its durable consumer", async () => {
    const nc = await connectAs(natsIdentity(NatsRole.operator));
    const jsm = await nc.jetstreamManager();
    await ensureStreams(jsm);
    for (const s of STREAMS) await ensureConsumer(jsm, s, `gpufleet-operator-${s.stream}`, DEFAULT_CONSUMER_LIMITS);
    expect((await jsm.streams.names().next()).sort()).toEqual(STREAMS.map((s) => s.name).sort());
  });

  it("lets node-a's agent publish every stream of its own node, acknowledged by JetStream", async () => {
    const nc = await connectAs(agentA);
    const transport = await JetStreamTransport.connect(nc, { streams: "await", ackTimeoutMs: 10_000 });
    for (const s of Object.values(Stream))
      await transport.publish(subjectFor(s, "node-a"), loadMessage("node-a", "pod-a"), `node-a-${s}-1`);
    const jsm = await nc.jetstreamManager();
    // The agent may check the streams but not read them: the check goes through the operator below.
    await expect(
      jsm.streams.getMessage(streamName(Stream.load), { last_by_subj: subjectFor(Stream.load, "node-a") }),
    ).rejects.toThrow();
  });

  it("refuses node-a's agent changing a stream (it could shrink every node's telemetry) or creating one", async () => {
    const nc = await connectAs(agentA);
    const jsm = await nc.jetstreamManager();
    const load = await jsm.streams.info(streamName(Stream.load));
    const update = violation(nc, `$JS.API.STREAM.UPDATE.${streamName(Stream.load)}`);
    await expect(jsm.streams.update(streamName(Stream.load), { max_bytes: 1 })).rejects.toThrow();
    expect(String((await update).data)).toBe(ErrorCode.PermissionsViolation);
    await expect(ensureStreams(jsm)).rejects.toThrow(/setting up JetStream stream/);
    const operator = await connectAs(natsIdentity(NatsRole.operator));
    const after = await (await operator.jetstreamManager()).streams.info(streamName(Stream.load));
    expect(after.config.max_bytes).toBe(load.config.max_bytes);
  });

  it("refuses node-a's agent publishing node-b's subjects: the client sees the violation, the stream stores nothing", async () => {
    const nc = await connectAs(agentA);
    const transport = await JetStreamTransport.connect(nc, { streams: "await", ackTimeoutMs: 3_000 });
    const subject = subjectFor(Stream.load, "node-b");
    const seen = violation(nc, subject);
    const published = transport.publish(subject, loadMessage("node-b", "pod-forged"), "forged-1").then(
      () => "acknowledged",
      (err: unknown) => err,
    );
    const status = await seen;
    expect(String(status.data)).toBe(ErrorCode.PermissionsViolation);
    expect(await published).not.toBe("acknowledged");
    nc.publish(subjectFor(Stream.collectives, "node-b"), new Uint8Array([1]));
    await violation(nc, subjectFor(Stream.collectives, "node-b"));

    const operator = await connectAs(natsIdentity(NatsRole.operator));
    const jsm = await operator.jetstreamManager();
    await expect(
      jsm.streams.getMessage(streamName(Stream.load), { last_by_subj: subjectFor(Stream.load, "node-b") }),
    ).rejects.toThrow(/no message found/i);
    const own = await jsm.streams.getMessage(streamName(Stream.load), {
      last_by_subj: subjectFor(Stream.load, "node-a"),
    });
    expect(own.subject).toBe(subjectFor(Stream.load, "node-a"));
  });

  it("refuses node-a's agent subscribing to telemetry or to another component's inbox", async () => {
    const nc = await connectAs(agentA);
    for (const subject of [subscriptionFor(Stream.load), "gpufleet.v1.>", "_INBOX.agent.node-b.>", "_INBOX.>"]) {
      const outcome = await trySubscribe(nc, subject);
      expect(outcome, subject).toBeInstanceOf(NatsError);
      expect((outcome as NatsError).code, subject).toBe(ErrorCode.PermissionsViolation);
      expect((outcome as NatsError).message, subject).toContain(
        `Permissions Violation for Subscription to "${subject}"`,
      );
    }
    expect(nc.isClosed()).toBe(false);
  });

  it("lets the gateway read node-a's load reports from the stream, and refuses it publishing telemetry", async () => {
    const nc = await connectAs(natsIdentity(NatsRole.gateway));
    const metrics = new GatewayMetrics();
    const source = await JetStreamLoadInstanceSource.start(
      nc,
      { logger: createLogger({ level: "silent", name: "gateway" }), metrics },
      { lookbackMs: 10 * 60_000 },
    );
    const reports: InstanceReport[] = [];
    source.subscribe((r) => reports.push(r));
    await waitFor(() => reports.some((r) => r.podName === "pod-a"), {
      description: "the gateway sees node-a's load report",
      timeoutMs: 30_000,
    });
    expect(reports.some((r) => r.podName === "pod-forged")).toBe(false);

    nc.publish(subjectFor(Stream.load, "node-a"), loadMessage("node-a", "pod-from-gateway"));
    await violation(nc, subjectFor(Stream.load, "node-a"));
    const outcome = await trySubscribe(nc, subscriptionFor(Stream.collectives));
    expect((outcome as NatsError).code).toBe(ErrorCode.PermissionsViolation);
    await source.close();
  });

  it("runs the gateway process with GPUFLEET_GATEWAY_NATS_TLS_DIR; with an agent's certificate it is refused", async () => {
    const env = { GPUFLEET_GATEWAY_NATS_URL: url, GPUFLEET_GATEWAY_INSTANCE_STALE_MS: String(10 * 60_000) };
    const gateway = await startGatewayProcess({
      ...env,
      GPUFLEET_GATEWAY_NATS_TLS_DIR: dirs.get(natsIdentity(NatsRole.gateway).user)!,
    });
    try {
      await waitFor(
        async () => {
          const body = (await (await fetch(`${gateway.url}/v1/models`)).json()) as { data?: { id: string }[] };
          return body.data?.some((m) => m.id === "nats-auth-model");
        },
        { description: "the gateway process routes the model node-a reported", timeoutMs: 60_000 },
      );
    } finally {
      await gateway.stop();
    }
    // The gateway presenting node-a's agent certificate: authenticated as that agent, refused the gateway's work.
    const refused = await startGatewayProcess({
      ...env,
      GPUFLEET_GATEWAY_NATS_TLS_DIR: dirs.get(natsIdentity(NatsRole.agent, "node-a").user)!,
    }).then(
      () => "started",
      (err: unknown) => String(err),
    );
    expect(refused).toMatch(/exited with [1-9]/);
    expect(refused).toMatch(/Permissions Violation for Subscription to "_INBOX\.gateway\./);
  });

  it("lets the operator consume and acknowledge node-a's records, and refuses it publishing telemetry", async () => {
    const nc = await connectAs(natsIdentity(NatsRole.operator));
    const stream = streamDefinition(Stream.workerEvents);
    const consumer = await nc.jetstream().consumers.get(stream.name, `gpufleet-operator-${stream.stream}`);
    const message = await consumer.next({ expires: 10_000 });
    expect(message?.subject).toBe(subjectFor(Stream.workerEvents, "node-a"));
    expect(await message!.ackAck()).toBe(true);

    nc.publish(subjectFor(Stream.workerEvents, "node-a"), new Uint8Array([1]));
    await violation(nc, subjectFor(Stream.workerEvents, "node-a"));
  });
});

describe("component processes with their NATS certificate folders", () => {
  it("starts the simulation agent with GPUFLEET_AGENT_NATS_TLS_DIR (streams set up under its identity); not with node-a's", async () => {
    const cluster = testCluster();
    const base = { kubeconfigPath: cluster.kubeconfigPath, natsUrl: url };
    const { agent } = await startSimulatedAgent({
      ...base,
      name: "nats-auth-agent",
      env: { GPUFLEET_AGENT_NATS_TLS_DIR: dirs.get(natsIdentity(NatsRole.simulationAgent).user)! },
    });
    await agent.stop();
    // With node-a's certificate, the simulation agent (which serves every node) is refused its inbox and stream setup.
    const refused = await startSimulatedAgent({
      ...base,
      name: "nats-auth-agent-wrong-cert",
      env: { GPUFLEET_AGENT_NATS_TLS_DIR: dirs.get(natsIdentity(NatsRole.agent, "node-a").user)! },
    }).then(
      () => "started",
      (err: unknown) => String(err),
    );
    expect(refused).toMatch(/exited with [1-9]/);
    expect(refused).toMatch(/Permissions Violation for Subscription to \\"_INBOX\.simulation-agent\./);
  });

  it("the operator process with GPUFLEET_NATS_TLS_DIR creates its durable consumers", async () => {
    const cluster = testCluster();
    const operator = await startOperatorProcess({
      kubeconfigPath: cluster.kubeconfigPath,
      namespace: "default",
      identity: "nats-auth-operator",
      env: {
        GPUFLEET_NATS_URL: url,
        GPUFLEET_NATS_TLS_DIR: dirs.get(natsIdentity(NatsRole.operator).user)!,
        GPUFLEET_LEADER_ELECTION: "false",
        GPUFLEET_TELEMETRY_DURABLE_PREFIX: "nats-auth-process",
        GPUFLEET_AGENT_INSECURE: "true",
      },
    });
    try {
      const jsm = await (await connectAs(natsIdentity(NatsRole.operator))).jetstreamManager();
      await waitFor(
        () =>
          jsm.consumers.info(streamName(Stream.load), "nats-auth-process-load").then(
            () => true,
            () => false,
          ),
        { description: "the operator process's durable consumer on the load stream", timeoutMs: 60_000 },
      );
    } finally {
      await operator.stop();
    }
  });
});
