/**
 * The chart's NATS with TLS and per-component authorization (nats.authorization.enabled), end to end against the
 * real API server and a real nats-server: the operator process, configured as the chart's Deployment configures
 * it, issues the nats-server's and the gateway's certificates and writes the per-node user list; nats-server runs
 * the chart's own nats.conf, which includes that list. The test stands in for two things a cluster does: kubelet's
 * volume mounts (it writes the ConfigMaps' and Secrets' contents to files, under a folder of its own instead of
 * /etc) and the reloader sidecar (it sends SIGHUP to the pid in the chart's pid file when a watched file changed).
 *
 * Shown: the operator waits for its mounted certificate, then connects as gpufleet-operator and creates the
 * streams; an agent of a node in the cluster is admitted, one of a node not in it is refused; a Node created
 * later is admitted after the operator's rewrite and a reload (its agent process, started before, keeps trying and
 * then serves), and refused again once deleted; the gateway's
 * certificate may read the load stream and not publish telemetry.
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { connect, ErrorCode, type NatsConnection, type Status } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { NATS_SERVER_TLS_DIR, natsIdentity, NatsRole } from "../../../common/src/nats/authorization.js";
import { natsCredentialOptions } from "../../../common/src/nats/connect.js";
import { STREAMS, streamName } from "../../../common/src/telemetry/streams.js";
import { Stream, subjectFor } from "../../../common/src/telemetry/subjects.js";
import { NATS_AUTHORIZATION_KEY } from "../../../operator/src/agents/nats-authorization.js";
import { issueLeaf, LeafUsage } from "../../../operator/src/agents/pki.js";
import { freePorts } from "../../harness/cluster.js";
import { startConfiguredNats } from "../../support/nats.js";
import type { ManagedProcess } from "../../harness/processes.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import {
  metricValue,
  startComponentProcess,
  startOperatorProcess,
  type ComponentProcess,
  type OperatorProcess,
} from "../../support/operator.js";
import { REPO_ROOT } from "../../support/paths.js";
import { CHART_DIR, helmBinary, run } from "../chart/tools.js";

interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec?: {
    template: {
      spec: { containers: { name: string; args?: string[]; env?: { name: string; value?: string }[] }[] };
    };
  };
}

let cluster: TestCluster;
let namespace: string;
let prefix: string;
let dir: string;
let operator: OperatorProcess;
let nats: ManagedProcess | undefined;
let natsUrl: string;
let chartNatsConf: string;
let chartDnsNames: string[];
let reloaderArgs: string[];
let newNode: string;
let caPair: { certPem: string; keyPem: string };
const agents: ComponentProcess[] = [];

/** The test's stand-in for the pod's root: /etc/... of the chart becomes <dir>/root/etc/... */
const rooted = (path: string) => join(dir, "root", path);

async function secret(name: string): Promise<V1Secret> {
  return waitFor(async () => cluster.core.readNamespacedSecret({ name, namespace }).catch(() => undefined), {
    description: `Secret ${name}`,
    timeoutMs: 60_000,
  });
}

async function authorizationConfigMap(): Promise<V1ConfigMap | undefined> {
  return cluster.core
    .readNamespacedConfigMap({ name: `${prefix}-nats-authorization`, namespace })
    .catch(() => undefined);
}

/** kubelet's part: a Secret's keys as files in a folder. */
function writeSecret(s: V1Secret, folder: string): void {
  mkdirSync(folder, { recursive: true });
  for (const key of ["ca.crt", "tls.crt", "tls.key"])
    writeFileSync(join(folder, key), Buffer.from(s.data![key]!, "base64"), { mode: 0o600 });
}

/** kubelet's part for the user list (its certificate paths moved under the stand-in root); returns the text. */
async function mountAuthorization(): Promise<string> {
  const text = (await authorizationConfigMap())!.data![NATS_AUTHORIZATION_KEY]!;
  mkdirSync(rooted("etc/nats-auth"), { recursive: true });
  writeFileSync(
    rooted("etc/nats-auth/authorization.conf"),
    text.replaceAll(NATS_SERVER_TLS_DIR, rooted("etc/nats-tls")),
  );
  return text;
}

/** The reloader's part: SIGHUP to the pid the server wrote to the chart's pid file. */
function reload(): void {
  process.kill(Number(readFileSync(rooted("var/run/nats/nats.pid"), "utf8").trim()), "SIGHUP");
}

async function agentCertificate(node: string): Promise<string> {
  const folder = join(dir, `agent-${node}`);
  mkdirSync(folder, { recursive: true });
  // The certificate the operator's CSR signer issues for a node (agent-nats-certificate.test.ts shows that flow).
  const cert = await issueLeaf(caPair, {
    commonName: natsIdentity(NatsRole.agent, node).commonName,
    usage: LeafUsage.client,
    dnsNames: [],
    notBefore: new Date(Date.now() - 60_000),
    lifetimeMs: 3600_000,
  });
  writeFileSync(join(folder, "ca.crt"), caPair.certPem);
  writeFileSync(join(folder, "tls.crt"), cert.certPem);
  writeFileSync(join(folder, "tls.key"), cert.keyPem, { mode: 0o600 });
  return folder;
}

const connectAs = (folder: string, who: ReturnType<typeof natsIdentity>): Promise<NatsConnection> =>
  connect({ servers: natsUrl, reconnect: false, ...natsCredentialOptions(folder, who) });

/** "admitted", or the error code the server answered the connect with. */
async function admits(node: string): Promise<string> {
  const folder = await agentCertificate(node);
  try {
    const nc = await connectAs(folder, natsIdentity(NatsRole.agent, node));
    await nc.close();
    return "admitted";
  } catch (err) {
    return String((err as { code?: string }).code ?? err);
  }
}

beforeAll(async () => {
  cluster = testCluster();
  namespace = await cluster.freshNamespace("nats-authz");
  dir = mkdtempSync(join(tmpdir(), "gpufleet-nats-authz-"));
  const rendered = await run(await helmBinary(), [
    "template",
    namespace,
    CHART_DIR,
    "--namespace",
    namespace,
    "--set",
    "nats.authorization.enabled=true",
  ]);
  expect(rendered.stderr).toBe("");
  const manifests = parseAllDocuments(rendered.stdout)
    .map((d) => d.toJSON() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
  const find = (kind: string, suffix: string) =>
    manifests.find((m) => m.kind === kind && m.metadata.name.endsWith(suffix))!;
  chartNatsConf = find("ConfigMap", "-nats-config").data!["nats.conf"]!;
  const operatorEnv = new Map(
    find("Deployment", "-operator").spec!.template.spec.containers[0]!.env!.map((e) => [e.name, e.value ?? ""]),
  );
  prefix = operatorEnv.get("GPUFLEET_CERT_SECRET_PREFIX")!;
  chartDnsNames = operatorEnv.get("GPUFLEET_NATS_SERVER_DNS_NAMES")!.split(",");
  reloaderArgs = find("StatefulSet", "-nats").spec!.template.spec.containers.find((c) => c.name === "reloader")!.args!;

  const [port, monitorPort] = (await freePorts(2)) as [number, number];
  // The chart's URL names the Service; here the server is on loopback, so the certificate also names localhost.
  natsUrl = `tls://localhost:${port}`;
  operator = await startOperatorProcess({
    kubeconfigPath: cluster.kubeconfigPath,
    namespace,
    identity: "op-nats-authz",
    env: {
      GPUFLEET_CERT_SECRET_PREFIX: prefix,
      GPUFLEET_NATS_SERVER_DNS_NAMES: [...chartDnsNames, "localhost"].join(","),
      GPUFLEET_NATS_URL: natsUrl,
      GPUFLEET_NATS_TLS_DIR: join(dir, "operator-nats"),
    },
  });
  const ca = await secret(`${prefix}-ca`);
  caPair = {
    certPem: Buffer.from(ca.data!["ca.crt"]!, "base64").toString(),
    keyPem: Buffer.from(ca.data!["ca.key"]!, "base64").toString(),
  };
  writeSecret(await secret(`${prefix}-nats-tls`), rooted("etc/nats-tls"));
  await waitFor(authorizationConfigMap, { description: "the authorization ConfigMap", timeoutMs: 30_000 });
  await mountAuthorization();
  mkdirSync(rooted("etc/nats-config"), { recursive: true });
  mkdirSync(rooted("var/run/nats"), { recursive: true });
  writeFileSync(
    rooted("etc/nats-config/nats.conf"),
    chartNatsConf
      .replace(/^port: \d+$/m, `port: ${port}`)
      .replace(/^http_port: \d+$/m, `http_port: ${monitorPort}`)
      .replace('"/var/run/nats/nats.pid"', JSON.stringify(rooted("var/run/nats/nats.pid")))
      .replace('store_dir: "/data"', `store_dir: ${JSON.stringify(join(dir, "data"))}`),
  );
  nats = await startConfiguredNats({
    name: "nats-server-chart-authz",
    configPath: rooted("etc/nats-config/nats.conf"),
    port,
    runDir: dir,
    description: "nats-server (the chart's config)",
  });
}, 180_000);

afterAll(async () => {
  for (const agent of agents) await agent.stop();
  await operator?.stop();
  await nats?.stop();
  if (newNode) await kubectl(cluster.kubeconfigPath, ["delete", "node", newNode, "--ignore-not-found"]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the chart's NATS with per-component authorization", () => {
  it("watches, in the reloader, exactly the files the server reads: its config, the user list, its certificate", () => {
    const watched = reloaderArgs.filter((_, i) => reloaderArgs[i - 1] === "-config");
    expect(watched).toEqual([
      "/etc/nats-config/nats.conf",
      "/etc/nats-auth/authorization.conf",
      `${NATS_SERVER_TLS_DIR}/tls.crt`,
      `${NATS_SERVER_TLS_DIR}/tls.key`,
      `${NATS_SERVER_TLS_DIR}/ca.crt`,
    ]);
    expect(chartNatsConf).toContain('include "../nats-auth/authorization.conf"');
    expect(reloaderArgs.slice(0, 2)).toEqual(["-pid", "/var/run/nats/nats.pid"]);
    expect(chartNatsConf).toContain('pid_file: "/var/run/nats/nats.pid"');
  });

  it("issues the server's certificate for the chart's Service names and the gateway's as gpufleet-gateway", async () => {
    const server = new X509Certificate(Buffer.from((await secret(`${prefix}-nats-tls`)).data!["tls.crt"]!, "base64"));
    for (const name of chartDnsNames) expect(server.subjectAltName).toContain(`DNS:${name}`);
    expect(server.checkIssued(new X509Certificate(caPair.certPem))).toBe(true);
    const gateway = new X509Certificate(
      Buffer.from((await secret(`${prefix}-gateway-tls`)).data!["tls.crt"]!, "base64"),
    );
    expect(gateway.subject).toBe("CN=gpufleet-gateway\nO=gpufleet");
    expect(gateway.subjectAltName).toBeUndefined();
    expect(gateway.keyUsage ?? []).not.toContain("1.3.6.1.5.5.7.3.1"); // not serverAuth
  });

  it("runs the operator on its mounted certificate once the file is there: it connects and creates the streams", async () => {
    // Its TLS folder was empty at start (the leader issues the Secret; the chart mounts it as optional).
    expect(
      operator.logs.some((l) => l.msg === "NATS client certificate not there yet; waiting (the leader issues it)"),
    ).toBe(true);
    writeSecret(await secret(`${prefix}-operator-tls`), join(dir, "operator-nats"));
    await waitFor(() => operator.logs.some((l) => l.msg === "connected to NATS"), {
      description: "the operator connected to NATS",
      timeoutMs: 20_000,
    });
    const nc = await connectAs(join(dir, "operator-nats"), natsIdentity(NatsRole.operator));
    try {
      const jsm = await nc.jetstreamManager();
      await waitFor(async () => (await jsm.streams.names().next()).length === STREAMS.length, {
        description: "the operator's streams",
        timeoutMs: 20_000,
      });
    } finally {
      await nc.close();
    }
  }, 60_000);

  it("admits the agent of a node in the cluster, publishing its own subject; refuses a node not in it", async () => {
    const node = (await cluster.core.listNode()).items[0]!.metadata!.name!;
    const folder = await agentCertificate(node);
    const nc = await connectAs(folder, natsIdentity(NatsRole.agent, node));
    try {
      const ack = await nc.jetstream().publish(subjectFor(Stream.load, node), new Uint8Array([1]));
      expect(ack.stream).toBe(streamName(Stream.load));
    } finally {
      await nc.close();
    }
    newNode = `${namespace}-joins`;
    expect(await admits(newNode)).toBe(ErrorCode.AuthorizationViolation);
  }, 60_000);

  it("admits a Node created later after the operator's rewrite and a reload, and refuses it once deleted", async () => {
    const before = await mountAuthorization();
    // The new node's agent process (real mode, fixtures for nvidia-smi and sysfs, its NATS certificate in place as
    // the CSR flow leaves it) starts before the node is admitted: it keeps trying instead of exiting.
    const agentTls = join(dir, "agent-grpc-tls");
    writeSecret(await secret(`${prefix}-agent-tls`), agentTls);
    const fixtures = join(REPO_ROOT, "agent/src/discovery/fixtures");
    const fakeSmi = join(dir, "nvidia-smi");
    writeFileSync(
      fakeSmi,
      `#!/bin/sh\nif [ "$1" = topo ]; then cat ${fixtures}/h200/topo-m.txt; else cat ${fixtures}/h200/nvidia-smi-q-x.xml; fi\n`,
      { mode: 0o755 },
    );
    const { process: agent } = await startComponentProcess({
      name: "agent-joins",
      entry: "agent/src/main.ts",
      readyMessage: "connecting to NATS as this node's agent (retrying until it admits this node)",
      env: {
        KUBECONFIG: cluster.kubeconfigPath,
        NODE_NAME: newNode,
        GPUFLEET_AGENT_NVIDIA_SMI: fakeSmi,
        GPUFLEET_AGENT_SYSFS_ROOT: join(fixtures, "sysfs-ib"),
        GPUFLEET_AGENT_TLS_DIR: agentTls,
        GPUFLEET_AGENT_NATS_TLS_DIR: await agentCertificate(newNode),
        GPUFLEET_NATS_URL: natsUrl,
        GPUFLEET_AGENT_SOCKET: join(dir, "agent.sock"),
        GPUFLEET_AGENT_GRPC_ADDRESS: "127.0.0.1:0",
        GPUFLEET_AGENT_HTTP_PORT: "0",
      },
    });
    agents.push(agent);
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: newNode, labels: { "gpufleet.io/test": namespace } },
    };
    const createdAt = Date.now();
    expect((await kubectl(cluster.kubeconfigPath, ["apply", "-f", "-"], stringify(node))).code).toBe(0);
    const user = `"${natsIdentity(NatsRole.agent, newNode).user}"`;
    await waitFor(async () => (await authorizationConfigMap())?.data?.[NATS_AUTHORIZATION_KEY]?.includes(user), {
      description: "the new node in the user list",
      timeoutMs: 20_000,
    });
    const rewriteMs = Date.now() - createdAt;
    // Not admitted until the server re-reads the file: the mount is what it knows.
    expect(await admits(newNode)).toBe(ErrorCode.AuthorizationViolation);
    expect(await mountAuthorization()).not.toBe(before);
    reload();
    await waitFor(async () => (await admits(newNode)) === "admitted", {
      description: "the new node's agent admitted after the reload",
      timeoutMs: 10_000,
    });
    await waitFor(() => agent.logs.some((l) => l.msg === "agent serving"), {
      description: "the waiting agent process serving once admitted",
      timeoutMs: 20_000,
    });
    await agent.stop();

    expect((await kubectl(cluster.kubeconfigPath, ["delete", "node", newNode])).code).toBe(0);
    await waitFor(async () => !(await authorizationConfigMap())?.data?.[NATS_AUTHORIZATION_KEY]?.includes(user), {
      description: "the deleted node out of the user list",
      timeoutMs: 20_000,
    });
    await mountAuthorization();
    reload();
    await waitFor(async () => (await admits(newNode)) === ErrorCode.AuthorizationViolation, {
      description: "the deleted node's agent refused after the reload",
      timeoutMs: 10_000,
    });
    // Node events are coalesced for 2 s before a write.
    expect(rewriteMs).toBeGreaterThanOrEqual(1500);
    const metrics = await operator.metrics();
    expect(
      metricValue(metrics, "gpufleet_operator_nats_authorization_writes_total", { outcome: "written" }),
    ).toBeGreaterThanOrEqual(3);
    expect(metricValue(metrics, "gpufleet_operator_nats_authorized_nodes")).toBe(
      (await cluster.core.listNode()).items.length,
    );
  }, 90_000);

  it("lets the gateway's certificate read the load stream and not publish telemetry", async () => {
    writeSecret(await secret(`${prefix}-gateway-tls`), join(dir, "gateway-nats"));
    const nc = await connectAs(join(dir, "gateway-nats"), natsIdentity(NatsRole.gateway));
    try {
      const info = await (await nc.jetstreamManager()).streams.info(streamName(Stream.load));
      expect(info.config.name).toBe(streamName(Stream.load));
      const refused = (async () => {
        for await (const s of nc.status()) if (s.type === "error") return s as Status;
        return undefined;
      })();
      nc.publish(subjectFor(Stream.load, "any-node"), new Uint8Array([1]));
      expect(String((await refused)?.data)).toBe(ErrorCode.PermissionsViolation);
    } finally {
      await nc.close();
    }
  });
});
