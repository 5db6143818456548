/**
 * The agent's serving certificate as the operator issues it (into a Secret in its namespace), written to a
 * directory for a simulated agent's GPUFLEET_AGENT_TLS_DIR: so the operator's mTLS client pool talks to the agent
 * with the certificates of a real install.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CoreV1Api } from "@kubernetes/client-node";
import { secretNames } from "../../operator/src/agents/certificates.js";
import { waitFor } from "../harness/wait.js";

export async function writeOperatorIssuedAgentCerts(cluster: { core: CoreV1Api }, dir: string): Promise<void> {
  const secret = await waitFor(
    async () => {
      const s = await cluster.core
        .readNamespacedSecret({ namespace: "default", name: secretNames("gpufleet").agent })
        .catch(() => undefined);
      return s?.data?.["tls.crt"] ? s : undefined;
    },
    { description: "the agent certificate Secret issued by the operator", timeoutMs: 30_000 },
  );
  mkdirSync(dir, { recursive: true });
  for (const key of ["ca.crt", "tls.crt", "tls.key"])
    writeFileSync(join(dir, key), Buffer.from(secret.data![key]!, "base64"), { mode: 0o600 });
}
