/**
 * An agent's NATS client certificate, issued per node without a Secret per node, against the real API server and a
 * real nats-server: the agent's own request code (agent/src/nats-certificate.ts) runs with a service-account token
 * bound to a pod on node A (a Node object of this test's own), under the chart's rendered agent RBAC; the operator
 * process (signer on through GPUFLEET_AGENT_SERVICE_ACCOUNT, as the chart sets it) approves and signs it;
 * nats-server, configured by renderNatsAuthorization and trusting the operator's CA, admits the certificate as node
 * A's agent and refuses its publish on node B's subject. Asking for node B's subject with node A's token, or with a
 * token bound to no pod, is denied with the reason, and no certificate is issued. Last, the agent process itself
 * (real mode, fixtures for nvidia-smi and sysfs) asks for its certificate at start and, with it, waits for the
 * operator's streams (it may not create them).
 */
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificatesV1Api, KubeConfig } from "@kubernetes/client-node";
import { connect, ErrorCode, type Status } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { obtainNatsCertificate } from "../../../agent/src/nats-certificate.js";
import { natsIdentity, NatsRole, renderNatsAuthorization } from "../../../common/src/nats/authorization.js";
import { natsCredentialOptions } from "../../../common/src/nats/connect.js";
import { ensureStreams, STREAMS } from "../../../common/src/telemetry/streams.js";
import { Stream, subjectFor } from "../../../common/src/telemetry/subjects.js";
import { issueLeaf, LeafUsage } from "../../../operator/src/agents/pki.js";
import { CsrReason } from "../../../operator/src/agents/csr/decide.js";
import { freePorts } from "../../harness/cluster.js";
import { startConfiguredNats } from "../../support/nats.js";
import { claimRunDir, type ManagedProcess } from "../../harness/processes.js";
import { waitFor } from "../../harness/wait.js";
import { helmBinary, CHART_DIR, run } from "../chart/tools.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { kubectl } from "../../support/kubectl.js";
import {
  metricValue,
  startComponentProcess,
  startOperatorProcess,
  type OperatorProcess,
} from "../../support/operator.js";
import { REPO_ROOT } from "../../support/paths.js";
import { podBoundToken } from "../../support/tokens.js";

let cluster: TestCluster;
let namespace: string;
let release: string;
let dir: string;
let operator: OperatorProcess;
let nodeA: string;
let nodeB: string;
let tokenA: string;
let unbound: string;
let caPem: string;
let nats: ManagedProcess | undefined;
let natsUrl: string;
let operatorFolder: string;

const agentSa = () => `${release}-gpufleet-agent`;

/** The agent's CertificatesV1Api as the pod would have it: the server, its CA and a bearer token, nothing else. */
function certificatesAs(token: string): CertificatesV1Api {
  const server = cluster.kubeConfig.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: server.server, caData: server.caData, caFile: server.caFile }],
    users: [{ name: "agent", token }],
    contexts: [{ name: "agent", cluster: "c", user: "agent" }],
    currentContext: "agent",
  });
  return kc.makeApiClient(CertificatesV1Api);
}

beforeAll(async () => {
  cluster = testCluster();
  namespace = await cluster.freshNamespace("agent-csr");
  release = namespace;
  dir = mkdtempSync(join(tmpdir(), "gpufleet-agent-csr-"));
  await claimRunDir(dir);
  // The chart's agent ServiceAccount and ClusterRole (with the certificate opt-in), exactly as rendered.
  const rendered = await run(await helmBinary(), [
    "template",
    release,
    CHART_DIR,
    "--namespace",
    namespace,
    "--set",
    "agent.natsClientCertificate=true",
    "--show-only",
    "templates/agent-rbac.yaml",
  ]);
  expect(rendered.code, rendered.stderr).toBe(0);
  const docs = parseAllDocuments(rendered.stdout)
    .map((d) => d.toJSON() as { kind: string } | null)
    .filter((d) => d !== null);
  expect(docs.map((d) => d.kind).sort()).toEqual(["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]);
  const applied = await kubectl(
    cluster.kubeconfigPath,
    ["apply", "-n", namespace, "-f", "-"],
    docs.map((d) => stringify(d)).join("---\n"),
  );
  expect(applied.code, applied.stderr).toBe(0);

  // A Node of this test's own (no kwok annotation: nothing runs there, no placement uses it), because the agent
  // process below labels the node it serves; node B need not exist (only a subject names it).
  [nodeA, nodeB] = [`${namespace}-a`, `${namespace}-b`];
  const node = { apiVersion: "v1", kind: "Node", metadata: { name: nodeA, labels: { "gpufleet.io/test": namespace } } };
  expect((await kubectl(cluster.kubeconfigPath, ["apply", "-f", "-"], stringify(node))).code).toBe(0);
  tokenA = await podBoundToken(cluster.kubeconfigPath, {
    namespace,
    serviceAccount: agentSa(),
    pod: "agent-a",
    node: nodeA,
  });
  unbound = (await kubectl(cluster.kubeconfigPath, ["create", "token", agentSa(), "-n", namespace])).stdout.trim();

  operator = await startOperatorProcess({
    kubeconfigPath: cluster.kubeconfigPath,
    namespace,
    identity: "op-csr",
    env: { GPUFLEET_AGENT_SERVICE_ACCOUNT: agentSa() },
  });
  // The operator's CA, written by its certificate manager when it starts leading.
  const ca = await waitFor(
    async () => {
      try {
        return await cluster.core.readNamespacedSecret({ name: "gpufleet-ca", namespace });
      } catch {
        return undefined;
      }
    },
    { description: "the operator's CA Secret", timeoutMs: 60_000 },
  );
  caPem = Buffer.from(ca.data!["ca.crt"]!, "base64").toString();
  const caPair = { certPem: caPem, keyPem: Buffer.from(ca.data!["ca.key"]!, "base64").toString() };
  await startNats(caPair);
  // The operator's NATS identity (the test reads streams with it); in a deployment, its <prefix>-operator-tls.
  const operatorCert = await issueLeaf(caPair, {
    commonName: natsIdentity(NatsRole.operator).commonName,
    usage: LeafUsage.client,
    dnsNames: [],
    notBefore: new Date(Date.now() - 60_000),
    lifetimeMs: 3600_000,
  });
  operatorFolder = join(dir, "operator-nats");
  mkdirSync(operatorFolder);
  writeFileSync(join(operatorFolder, "ca.crt"), caPem);
  writeFileSync(join(operatorFolder, "tls.crt"), operatorCert.certPem);
  writeFileSync(join(operatorFolder, "tls.key"), operatorCert.keyPem, { mode: 0o600 });
}, 180_000);

/** nats-server with JetStream and the rendered authorization for nodes A and B, its certificate from the CA. */
async function startNats(caPair: { certPem: string; keyPem: string }): Promise<void> {
  const serverCert = await issueLeaf(caPair, {
    commonName: "nats",
    usage: LeafUsage.server,
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1"],
    notBefore: new Date(Date.now() - 60_000),
    lifetimeMs: 3600_000,
  });
  writeFileSync(join(dir, "server.crt"), serverCert.certPem);
  writeFileSync(join(dir, "server.key"), serverCert.keyPem, { mode: 0o600 });
  writeFileSync(join(dir, "ca.crt"), caPair.certPem);
  const [port] = (await freePorts(1)) as [number];
  natsUrl = `nats://127.0.0.1:${port}`;
  writeFileSync(
    join(dir, "nats.conf"),
    [
      `listen: "127.0.0.1:${port}"`,
      `jetstream { store_dir: ${JSON.stringify(join(dir, "store"))} }`,
      renderNatsAuthorization(
        { nodes: [nodeA, nodeB] },
        { certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key"), caFile: join(dir, "ca.crt") },
      ),
    ].join("\n"),
  );
  nats = await startConfiguredNats({
    name: "nats-server-agent-csr",
    configPath: join(dir, "nats.conf"),
    port,
    runDir: dir,
    description: "nats-server (with authorization)",
  });
}

afterAll(async () => {
  await nats?.stop();
  await operator?.stop();
  await cluster?.core.deleteNamespacedPod({ name: "agent-a", namespace, gracePeriodSeconds: 0 }).catch(() => undefined);
  await kubectl(cluster.kubeconfigPath, ["delete", "clusterrole,clusterrolebinding", agentSa(), "--ignore-not-found"]);
  if (nodeA) await kubectl(cluster.kubeconfigPath, ["delete", "node", nodeA, "--ignore-not-found"]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the agent's NATS client certificate, from a CertificateSigningRequest", () => {
  let folderA: string;

  it("is signed for the node the agent's token is bound to, with the key made by the agent", async () => {
    folderA = join(dir, "agent-a");
    const got = await obtainNatsCertificate({
      certificates: certificatesAs(tokenA),
      node: nodeA,
      dir: folderA,
      caPem,
      expirationSeconds: 3600,
    });
    const cert = new X509Certificate(readFileSync(join(folderA, "tls.crt")));
    expect(cert.subject).toBe(`CN=gpufleet-agent:${nodeA}\nO=gpufleet`);
    expect(cert.subjectAltName).toBeUndefined();
    expect(cert.verify(new X509Certificate(caPem).publicKey)).toBe(true);
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]); // clientAuth only
    // The requested hour (plus the minute it is backdated), not the operator's default leaf lifetime of 30 days.
    expect(got.notAfterMs - got.notBeforeMs).toBe(3600_000 + 60_000);
    expect(statSync(join(folderA, "tls.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(folderA, "ca.crt"), "utf8")).toBe(caPem);

    const csr = await cluster.kubeConfig
      .makeApiClient(CertificatesV1Api)
      .readCertificateSigningRequest({ name: got.csrName });
    expect(csr.spec.username).toBe(`system:serviceaccount:${namespace}:${agentSa()}`);
    expect(csr.spec.extra?.["authentication.kubernetes.io/node-name"]).toEqual([nodeA]);
    expect(csr.status?.conditions?.find((c) => c.type === "Approved")?.reason).toBe(CsrReason.approved);
    expect(
      metricValue(await operator.metrics(), "gpufleet_operator_agent_certificate_requests_total", {
        outcome: "signed",
      }),
    ).toBeGreaterThanOrEqual(1);
  }, 90_000);

  it("is denied for another node's subject, and for a token bound to no pod: no certificate is issued", async () => {
    const deniedFor = async (token: string, node: string): Promise<string> => {
      const outcome = await obtainNatsCertificate({
        certificates: certificatesAs(token),
        node,
        dir: join(dir, `denied-${node}`),
        caPem,
        expirationSeconds: 3600,
      }).then(
        () => "signed",
        (err: unknown) => String(err),
      );
      return outcome;
    };
    const otherNode = await deniedFor(tokenA, nodeB);
    expect(otherNode).toContain("denied");
    expect(otherNode).toContain(CsrReason.wrongSubject);
    expect(otherNode).toContain(`bound to a pod on node ${nodeA}`);
    const noPod = await deniedFor(unbound, nodeA);
    expect(noPod).toContain(CsrReason.noNode);
    const list = await cluster.kubeConfig.makeApiClient(CertificatesV1Api).listCertificateSigningRequest();
    const denied = list.items.filter((c) => c.status?.conditions?.some((x) => x.type === "Denied"));
    expect(denied.filter((c) => c.spec.username === `system:serviceaccount:${namespace}:${agentSa()}`).length).toBe(2);
    for (const c of denied) expect(c.status?.certificate).toBeUndefined();
    // RBAC: the agent cannot approve its own request (no approval or signer rights).
    const canApprove = await kubectl(cluster.kubeconfigPath, [
      "auth",
      "can-i",
      "update",
      "certificatesigningrequests/approval",
      `--as=system:serviceaccount:${namespace}:${agentSa()}`,
    ]);
    expect(canApprove.stdout.trim()).toBe("no");
  }, 90_000);

  it("is admitted by nats-server as node A's agent, which may publish node A's subjects and not node B's", async () => {
    const nc = await connect({
      servers: natsUrl,
      reconnect: false,
      ...natsCredentialOptions(folderA, natsIdentity(NatsRole.agent, nodeA)),
    });
    try {
      const violations: Status[] = [];
      void (async () => {
        for await (const s of nc.status()) if (s.type === "error") violations.push(s);
      })();
      nc.publish(subjectFor(Stream.load, nodeA), new Uint8Array([1]));
      await nc.flush();
      nc.publish(subjectFor(Stream.load, nodeB), new Uint8Array([1]));
      await nc.flush();
      await waitFor(() => violations.length > 0 || undefined, {
        description: "a permissions violation for node B's subject",
        timeoutMs: 10_000,
      });
      const permissionSubject = (v: Status) =>
        (v as Status & { permissionContext?: { subject: string } }).permissionContext?.subject;
      expect(violations.map((v) => [v.data, permissionSubject(v)])).toEqual([
        [ErrorCode.PermissionsViolation, subjectFor(Stream.load, nodeB)],
      ]);
    } finally {
      await nc.close();
    }
  }, 60_000);

  it("is what the agent process asks for at start (GPUFLEET_AGENT_NATS_CSR=true) before it waits for its streams", async () => {
    // The agent in real mode on node A: nvidia-smi and sysfs from the H200 fixtures, the operator's agent mTLS
    // Secret as its TLS folder, the pod-bound token as its only credential, and the NATS server above.
    const agentTls = await cluster.core.readNamespacedSecret({ name: "gpufleet-agent-tls", namespace });
    const tlsDir = join(dir, "agent-process-tls");
    mkdirSync(tlsDir);
    for (const key of ["ca.crt", "tls.crt", "tls.key"])
      writeFileSync(join(tlsDir, key), Buffer.from(agentTls.data![key]!, "base64"), { mode: 0o600 });
    const fixtures = join(REPO_ROOT, "agent/src/discovery/fixtures");
    const fakeSmi = join(dir, "nvidia-smi");
    writeFileSync(
      fakeSmi,
      `#!/bin/sh\nif [ "$1" = topo ]; then cat ${fixtures}/h200/topo-m.txt; else cat ${fixtures}/h200/nvidia-smi-q-x.xml; fi\n`,
      { mode: 0o755 },
    );
    const server = cluster.kubeConfig.getCurrentCluster()!;
    const kubeconfig = join(dir, "agent-kubeconfig.yaml");
    writeFileSync(
      kubeconfig,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [
          {
            name: "c",
            cluster: {
              server: server.server,
              ...(server.caFile ? { "certificate-authority": server.caFile } : {}),
              ...(server.caData ? { "certificate-authority-data": server.caData } : {}),
            },
          },
        ],
        users: [{ name: "agent", user: { token: tokenA } }],
        contexts: [{ name: "agent", context: { cluster: "c", user: "agent" } }],
        "current-context": "agent",
      }),
    );
    const natsDir = join(dir, "agent-process-nats");
    const { process: agent } = await startComponentProcess({
      name: "agent-csr",
      entry: "agent/src/main.ts",
      // Under authorization the agent may not create streams: it waits for the operator's.
      readyMessage: "waiting for the operator to create the JetStream stream",
      env: {
        KUBECONFIG: kubeconfig,
        NODE_NAME: nodeA,
        GPUFLEET_AGENT_NVIDIA_SMI: fakeSmi,
        GPUFLEET_AGENT_SYSFS_ROOT: join(fixtures, "sysfs-ib"),
        GPUFLEET_AGENT_TLS_DIR: tlsDir,
        GPUFLEET_AGENT_NATS_CSR: "true",
        GPUFLEET_AGENT_NATS_TLS_DIR: natsDir,
        GPUFLEET_AGENT_NATS_CSR_EXPIRATION_SECONDS: "900",
        GPUFLEET_NATS_URL: natsUrl,
        GPUFLEET_AGENT_SOCKET: join(dir, "agent.sock"),
        GPUFLEET_AGENT_GRPC_ADDRESS: "127.0.0.1:0",
        GPUFLEET_AGENT_HTTP_PORT: "0",
      },
    });
    try {
      const signed = agent.logs.find((l) => l.msg === "NATS client certificate signed by the operator");
      expect(signed, JSON.stringify(agent.logs.slice(-10))).toBeDefined();
      const cert = new X509Certificate(readFileSync(join(natsDir, "tls.crt")));
      expect(cert.subject).toBe(`CN=gpufleet-agent:${nodeA}\nO=gpufleet`);
      // The agent connected under node A's identity (in a server that admits nothing without a certificate) and
      // checks for its streams; once the operator's identity creates them, the agent serves.
      expect(agent.logs.some((l) => l.msg === "agent serving")).toBe(false);
      const operatorNc = await connect({
        servers: natsUrl,
        reconnect: false,
        ...natsCredentialOptions(operatorFolder, natsIdentity(NatsRole.operator)),
      });
      try {
        const jsm = await operatorNc.jetstreamManager();
        await ensureStreams(jsm);
        await waitFor(() => agent.logs.some((l) => l.msg === "agent serving"), {
          description: "the agent serving once its streams exist",
          timeoutMs: 15_000,
        });
        expect((await jsm.streams.names().next()).sort()).toEqual(STREAMS.map((x) => x.name).sort());
      } finally {
        await operatorNc.close();
      }
    } finally {
      await agent.stop();
    }
  }, 90_000);
});
