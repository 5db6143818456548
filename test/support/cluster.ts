/**
 * The cluster a test file runs against: the one test/harness/global-setup.ts started for this run (its kubeconfig
 * path is provided to test files), or an existing cluster chosen with GPUFLEET_USE_EXISTING_CLUSTER=true and
 * KUBECONFIG. Each test works in a fresh namespace, deleted when the file's tests end.
 */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { afterAll, inject } from "vitest";
import { waitFor } from "../harness/wait.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfigPath: string;
    natsUrl: string;
  }
}

export interface TestCluster {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  natsUrl: string | undefined;
  /** Creates a namespace `<prefix>-<random>`, waits for its default ServiceAccount, deletes it after the file. */
  freshNamespace(prefix: string): Promise<string>;
}

export function testCluster(): TestCluster {
  const kubeconfigPath = inject("kubeconfigPath") || process.env.KUBECONFIG;
  if (!kubeconfigPath) throw new Error("no test cluster: run through the integration project (global setup) or set GPUFLEET_USE_EXISTING_CLUSTER=true and KUBECONFIG");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const created: string[] = [];
  afterAll(async () => {
    await Promise.all(created.map((name) => core.deleteNamespace({ name }).catch(() => undefined)));
  });
  return {
    kubeconfigPath,
    kubeConfig,
    natsUrl: inject("natsUrl") || process.env.GPUFLEET_NATS_URL,
    async freshNamespace(prefix) {
      const namespace = await core.createNamespace({ body: { metadata: { generateName: `${prefix}-` } } });
      const name = namespace.metadata!.name!;
      created.push(name);
      await waitFor(async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: name })).metadata?.name, {
        description: `default ServiceAccount in ${name}`,
        timeoutMs: 30_000,
      });
      return name;
    },
  };
}
