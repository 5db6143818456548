/**
 * Certificate rotation under load, without a restart: the agent process serves NodeAgent over mTLS from a folder
 * laid out like the chart's Secret volume (ca.crt, tls.crt, tls.key), with certificates issued by the operator's
 * own PKI code (operator/src/agents/pki.ts). While clients keep calling — a long-lived channel and a stream of new
 * connections — the leaf is replaced by a new one of the same CA (files swapped by rename, as kubelet swaps a
 * Secret volume). Every call must succeed, new connections must be served the new certificate, and the agent
 * process must be the same one throughout.
 */
import * as grpc from "@grpc/grpc-js";
import { X509Certificate } from "node:crypto";
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import { AGENT_SERVER_NAME } from "../../../common/src/agents/endpoint.js";
import { issueCa, issueLeaf, LeafUsage, type IssuedCertificate } from "../../../operator/src/agents/pki.js";
import { waitFor } from "../../harness/wait.js";
import { testCluster } from "../../support/cluster.js";
import { startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

const DAY_MS = 86_400_000;
let dir: string;
let tlsDir: string;
let ca: IssuedCertificate;
let client: IssuedCertificate;
let agent: ComponentProcess | undefined;
let port: number;

const leaf = (usage: LeafUsage, commonName: string) =>
  issueLeaf(ca, {
    commonName,
    usage,
    dnsNames: usage === LeafUsage.server ? [AGENT_SERVER_NAME] : [],
    notBefore: new Date(Date.now() - 60_000),
    lifetimeMs: DAY_MS,
  });

/** Writes a file by rename, so a reader sees the old or the new content, never half of one. */
function swap(name: string, content: string): void {
  const tmp = join(tlsDir, `.${name}.tmp`);
  writeFileSync(tmp, content);
  renameSync(tmp, join(tlsDir, name));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gpufleet-rotation-"));
  tlsDir = join(dir, "agent-tls");
  mkdirSync(tlsDir);
  ca = await issueCa({ commonName: "gpufleet-ca", notBefore: new Date(Date.now() - 60_000), lifetimeMs: 30 * DAY_MS });
  const server = await leaf(LeafUsage.server, "agent-1");
  client = await leaf(LeafUsage.client, "gpufleet-operator");
  swap("ca.crt", ca.certPem);
  swap("tls.crt", server.certPem);
  swap("tls.key", server.keyPem);
  const { kubeconfigPath, natsUrl } = testCluster();
  const started = await startSimulatedAgent({
    kubeconfigPath,
    natsUrl,
    name: "agent-rotation",
    env: { GPUFLEET_AGENT_TLS_DIR: tlsDir, GPUFLEET_AGENT_TLS_REFRESH_MS: "200" },
  });
  agent = started.agent;
  port = started.grpcPort;
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const credentials = () =>
  grpc.credentials.createSsl(Buffer.from(ca.certPem), Buffer.from(client.keyPem), Buffer.from(client.certPem));
const newClient = () =>
  new NodeAgentClient(`127.0.0.1:${port}`, credentials(), 5000, {
    "grpc.ssl_target_name_override": AGENT_SERVER_NAME,
    "grpc.default_authority": AGENT_SERVER_NAME,
  });

/** SHA-256 fingerprint of the certificate the agent serves to a new connection now. */
function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      {
        host: "127.0.0.1",
        port,
        ca: ca.certPem,
        cert: client.certPem,
        key: client.keyPem,
        servername: AGENT_SERVER_NAME,
        ALPNProtocols: ["h2"],
      },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.destroy();
      },
    );
    socket.on("error", reject);
  });
}
const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

describe("mTLS certificate rotation under load", () => {
  it("keeps every call succeeding while the leaf is replaced, and serves the new one without a restart", async () => {
    const pid = agent!.child.pid;
    const outcomes = { ok: 0, failed: [] as string[] };
    let running = true;
    const record = async (callOnce: () => Promise<unknown>) => {
      try {
        await callOnce();
        outcomes.ok++;
      } catch (error) {
        outcomes.failed.push(String(error));
      }
    };
    const longLived = newClient();
    const loops = [
      (async () => {
        while (running) await record(() => longLived.listWorkers());
      })(),
      ...Array.from({ length: 3 }, async () => {
        while (running) {
          const fresh = newClient();
          await record(() => fresh.listWorkers());
          fresh.close();
        }
      }),
    ];
    try {
      await waitFor(() => outcomes.ok >= 20, { description: "load running", timeoutMs: 30_000 });
      const next = await leaf(LeafUsage.server, "agent-2");
      expect(await servedFingerprint()).not.toBe(fingerprintOf(next.certPem));
      swap("tls.key", next.keyPem); // a torn pair (new key, old certificate) for a moment, as during a Secret swap
      swap("tls.crt", next.certPem);
      await waitFor(async () => (await servedFingerprint()) === fingerprintOf(next.certPem), {
        description: "the new certificate served",
        timeoutMs: 30_000,
      });
      const atRotation = outcomes.ok;
      await waitFor(() => outcomes.ok >= atRotation + 20, {
        description: "calls after the rotation",
        timeoutMs: 30_000,
      });
    } finally {
      running = false;
      await Promise.all(loops);
      longLived.close();
    }
    console.log(`rotation under load: ${outcomes.ok} calls succeeded, ${outcomes.failed.length} failed`);
    expect(outcomes.failed).toEqual([]);
    expect(outcomes.ok).toBeGreaterThanOrEqual(40);
    expect(agent!.child.pid).toBe(pid);
    expect(agent!.child.exitCode).toBeNull();
  }, 120_000);
});
