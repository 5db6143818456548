/**
 * No key material in logs: the operator issues the mTLS CA and leaf certificates (docs/security.md) at debug log
 * level; its captured logs must contain none of the private keys it wrote into Secrets, nor the client key of the
 * kubeconfig it runs with. (The gateway's API keys: gateway-admission.test.ts.)
 */
import { CoreV1Api } from "@kubernetes/client-node";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { waitFor } from "../../harness/wait.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { installCrds, startOperatorProcess, type OperatorProcess } from "../../support/operator.js";

let cluster: TestCluster;
let namespace: string;
let operator: OperatorProcess | undefined;

beforeAll(async () => {
  cluster = testCluster();
  await installCrds(cluster.kubeconfigPath);
  namespace = await cluster.freshNamespace("nolog");
  operator = await startOperatorProcess({
    kubeconfigPath: cluster.kubeconfigPath,
    namespace,
    identity: "nolog-0",
    env: { GPUFLEET_CERT_SECRET_PREFIX: "nolog" },
  });
}, 180_000);

afterAll(async () => {
  await operator?.stop();
});

/** The lines of a PEM block's body (base64), each long enough that a match cannot be chance. */
const pemBodyLines = (pem: string) => pem.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));

describe("logs carry no secrets", () => {
  it("the operator's debug logs hold none of the private keys it issued, nor its kubeconfig's client key", async () => {
    const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
    const names = ["nolog-ca", "nolog-agent-tls", "nolog-operator-tls"];
    const secrets = await waitFor(
      async () => {
        try {
          return await Promise.all(names.map((name) => core.readNamespacedSecret({ name, namespace })));
        } catch {
          return undefined;
        }
      },
      { description: "the operator's certificate Secrets", timeoutMs: 60_000 },
    );
    const keys = secrets.flatMap((s) =>
      Object.entries(s.data ?? {})
        .filter(([k]) => k.endsWith(".key"))
        .map(([, v]) => Buffer.from(v, "base64").toString("utf8")),
    );
    expect(keys.length).toBe(3);
    const kubeconfig = parse(readFileSync(cluster.kubeconfigPath, "utf8")) as {
      users: { user: { "client-key-data"?: string; "client-key"?: string } }[];
    };
    const user = kubeconfig.users[0]!.user;
    const clientKey = user["client-key-data"]
      ? Buffer.from(user["client-key-data"], "base64").toString("utf8")
      : readFileSync(user["client-key"]!, "utf8");

    // Let it run a few reconciles and certificate checks at debug level.
    await waitFor(() => operator!.logs.some((l) => /certificate/i.test(String(l.msg))), {
      description: "certificate log lines",
      timeoutMs: 30_000,
    });
    const logged = JSON.stringify(operator!.logs);
    expect(operator!.logs.length).toBeGreaterThan(5);
    expect(logged).not.toMatch(/PRIVATE KEY/);
    for (const pem of [...keys, clientKey]) for (const line of pemBodyLines(pem)) expect(logged).not.toContain(line);
    for (const secret of secrets)
      for (const value of Object.values(secret.data ?? {})) expect(logged).not.toContain(value.slice(0, 64));
  }, 120_000);
});
