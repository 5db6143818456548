/**
 * tls:// NATS URLs, which the chart's values schema accepts: the agent connects with TLS (nats.js ignores the
 * URL's scheme, so the agent has to ask for it), and refuses a server that offers no TLS rather than sending
 * telemetry in plaintext. A real nats-server with a certificate from a throwaway CA; the agent trusts that CA
 * through NODE_EXTRA_CA_CERTS, as a pod would trust a private CA.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCerts } from "../../harness/certs.js";
import { freePorts } from "../../harness/cluster.js";
import { getTestCluster } from "../../harness/context.js";
import { waitFor } from "../../harness/wait.js";
import { startComponentProcess, startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";
import { startNatsServer, type NatsServer } from "./nats-server.js";

interface Connz {
  connections?: { name?: string; tls_version?: string }[];
}

describe("the agent with a tls:// NATS URL", () => {
  let dir: string;
  let ca: string;
  let tlsNats: ChildProcess | undefined;
  let natsPort: number;
  let monitorPort: number;
  let plainNats: NatsServer | undefined;
  let agent: ComponentProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "gpufleet-nats-tls-"));
    const certs = await generateCerts(dir);
    ca = certs.ca.cert;
    [natsPort, monitorPort] = (await freePorts(2)) as [number, number];
    tlsNats = spawn(
      process.env.NATS_SERVER_BIN ?? "nats-server",
      [
        "-a",
        "127.0.0.1",
        "-p",
        String(natsPort),
        "-m",
        String(monitorPort),
        "-js",
        "-sd",
        join(dir, "jetstream"),
        "--tls",
        "--tlscert",
        certs.apiserver.cert,
        "--tlskey",
        certs.apiserver.key,
      ],
      { stdio: "ignore" },
    );
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${monitorPort}/varz`).catch(() => undefined))?.ok || undefined,
      { description: "TLS nats-server up", timeoutMs: 15_000 },
    );
    plainNats = await startNatsServer();
  });
  afterAll(async () => {
    await agent?.stop();
    if (tlsNats && tlsNats.exitCode === null) {
      const exited = new Promise((r) => tlsNats!.once("exit", r));
      tlsNats.kill("SIGTERM");
      await exited;
    }
    await plainNats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("connects over TLS", async () => {
    ({ agent } = await startSimulatedAgent({
      kubeconfigPath: getTestCluster().kubeconfigPath,
      natsUrl: `tls://127.0.0.1:${natsPort}`,
      name: "agent-nats-tls",
      env: { NODE_EXTRA_CA_CERTS: ca },
    }));
    expect(agent.logs.find((l) => l.msg === "agent serving")).toMatchObject({ telemetry: "nats" });
    const connz = (await (await fetch(`http://127.0.0.1:${monitorPort}/connz`)).json()) as Connz;
    expect(connz.connections?.find((c) => c.name === "gpufleet-agent-sim")?.tls_version).toMatch(/^1\.[23]$/);
  });

  it("refuses a server without TLS instead of falling back to plaintext", async () => {
    const started = startComponentProcess({
      name: "agent-nats-tls-plain",
      entry: "agent/src/main.ts",
      readyMessage: "agent serving",
      timeoutMs: 30_000,
      env: {
        KUBECONFIG: getTestCluster().kubeconfigPath,
        GPUFLEET_AGENT_SIMULATE: "true",
        GPUFLEET_NATS_URL: `tls://127.0.0.1:${plainNats!.port}`,
        GPUFLEET_AGENT_GRPC_ADDRESS: "127.0.0.1:0",
        GPUFLEET_AGENT_HTTP_PORT: "0",
        GPUFLEET_AGENT_SOCKET: join(dir, "plain.sock"),
        GPUFLEET_AGENT_INSECURE: "true",
      },
    });
    // A wrongly started agent must not outlive the test.
    void started.then(
      ({ process }) => process.stop(),
      () => undefined,
    );
    await expect(started).rejects.toThrow(/exited with 1: .*"message":"tls"/);
  });
});
