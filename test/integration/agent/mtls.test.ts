/**
 * Optional mTLS on the operator → agent gRPC port: with GPUFLEET_AGENT_TLS_DIR set the agent requires a client
 * certificate from its CA; plaintext clients, clients without a certificate and clients of another CA are refused.
 */
import * as grpc from "@grpc/grpc-js";
import { copyFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeAgentClient } from "../../../agent/src/grpc/client.js";
import { generateCerts, type ClusterCerts } from "../../harness/certs.js";
import { getTestCluster } from "../../harness/context.js";
import { startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

let workDir: string;
let certs: ClusterCerts;
let foreign: ClusterCerts;
let agent: ComponentProcess | undefined;
let address: string;

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), "gpufleet-mtls-"));
  [certs, foreign] = await Promise.all([
    generateCerts(path.join(workDir, "ca")),
    generateCerts(path.join(workDir, "foreign")),
  ]);
  // The Secret layout the chart mounts: ca.crt, tls.crt, tls.key (the harness's server cert has SAN 127.0.0.1).
  const tlsDir = path.join(workDir, "agent-tls");
  await mkdir(tlsDir);
  await copyFile(certs.ca.cert, path.join(tlsDir, "ca.crt"));
  await copyFile(certs.apiserver.cert, path.join(tlsDir, "tls.crt"));
  await copyFile(certs.apiserver.key, path.join(tlsDir, "tls.key"));
  const { kubeconfigPath, natsUrl } = getTestCluster();
  const started = await startSimulatedAgent({
    kubeconfigPath,
    natsUrl,
    name: "agent-mtls",
    env: { GPUFLEET_AGENT_TLS_DIR: tlsDir },
  });
  agent = started.agent;
  address = `127.0.0.1:${started.grpcPort}`;
});

afterAll(async () => {
  await agent?.stop();
  await rm(workDir, { recursive: true, force: true });
});

async function listWorkersWith(
  credentials: grpc.ChannelCredentials,
): Promise<{ ok: true } | { ok: false; code: number }> {
  const client = new NodeAgentClient(address, credentials, 3000);
  try {
    await client.listWorkers();
    return { ok: true };
  } catch (error) {
    return { ok: false, code: (error as grpc.ServiceError).code };
  } finally {
    client.close();
  }
}

describe("agent gRPC with mTLS", () => {
  it("serves a client holding a certificate from its CA", async () => {
    const credentials = grpc.credentials.createSsl(
      await readFile(certs.ca.cert),
      await readFile(certs.admin.key),
      await readFile(certs.admin.cert),
    );
    expect(await listWorkersWith(credentials)).toEqual({ ok: true });
  });

  it.each([
    ["a plaintext client", async () => grpc.credentials.createInsecure()],
    ["a TLS client without a certificate", async () => grpc.credentials.createSsl(await readFile(certs.ca.cert))],
    [
      "a client whose certificate another CA signed",
      async () =>
        grpc.credentials.createSsl(
          await readFile(certs.ca.cert),
          await readFile(foreign.admin.key),
          await readFile(foreign.admin.cert),
        ),
    ],
  ])("refuses %s", async (_name, credentials) => {
    expect(await listWorkersWith(await credentials())).toEqual({ ok: false, code: grpc.status.UNAVAILABLE });
  });
});
