/** A ChaosContext over a cluster this process started (the bench's, or a chaos test's own). */
import { CoreV1Api } from "@kubernetes/client-node";
import type { LocalCluster } from "../../test/harness/cluster.js";
import { waitFor } from "../../test/harness/wait.js";
import type { ChaosContext } from "./row.js";

export function localChaosContext(
  cluster: LocalCluster,
  log: (message: string) => void,
): ChaosContext & { deleteNamespaces(): Promise<void> } {
  const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
  const made: string[] = [];
  return {
    kubeconfigPath: cluster.kubeconfigPath,
    kubeConfig: cluster.kubeConfig,
    ...(cluster.natsUrl ? { natsUrl: cluster.natsUrl } : {}),
    ...(cluster.restart ? { restart: cluster.restart } : {}),
    ...(cluster.nats ? { nats: cluster.nats } : {}),
    log,
    async freshNamespace(prefix) {
      const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
      await core.createNamespace({ body: { metadata: { name } } });
      made.push(name);
      await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: name }), {
        description: `ServiceAccount ${name}/default`,
        timeoutMs: 60_000,
      });
      return name;
    },
    async deleteNamespaces() {
      await Promise.all(made.splice(0).map((name) => core.deleteNamespace({ name }).catch(() => undefined)));
    },
  };
}
