/**
 * What an integration test file uses to reach the cluster started by global-setup.ts: clients, a fresh namespace
 * per test (deleted afterwards), and bounded polling.
 */
import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
} from "@kubernetes/client-node";
import { afterAll, inject, onTestFinished } from "vitest";
import { waitFor } from "./wait.js";

export { waitFor, WaitTimeoutError } from "./wait.js";
export type { WaitOptions } from "./wait.js";

export interface TestCluster {
  kubeconfigPath: string;
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  coordination: CoordinationV1Api;
  customObjects: CustomObjectsApi;
  objects: KubernetesObjectApi;
  /** "" when the run has no NATS server. */
  natsUrl: string;
  /** Whether the harness started this cluster (false when running against an existing one). */
  local: boolean;
}

let cached: TestCluster | undefined;

/** The cluster under test, with clients (one set per test file). */
export function getTestCluster(): TestCluster {
  if (cached) return cached;
  const kubeconfigPath = inject("kubeconfigPath");
  if (!kubeconfigPath)
    throw new Error("no kubeconfigPath provided: is test/harness/global-setup.ts the project's globalSetup?");
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  cached = {
    kubeconfigPath,
    kubeConfig,
    core: kubeConfig.makeApiClient(CoreV1Api),
    apps: kubeConfig.makeApiClient(AppsV1Api),
    batch: kubeConfig.makeApiClient(BatchV1Api),
    coordination: kubeConfig.makeApiClient(CoordinationV1Api),
    customObjects: kubeConfig.makeApiClient(CustomObjectsApi),
    objects: KubernetesObjectApi.makeApiClient(kubeConfig),
    natsUrl: inject("natsUrl"),
    local: inject("localCluster"),
  };
  return cached;
}

// Namespaces made outside a test body (beforeAll/beforeEach) live until the file ends.
const fileScoped: string[] = [];
afterAll(async () => {
  const names = fileScoped.splice(0);
  if (names.length > 0) await deleteNamespaces(names);
});

async function deleteNamespaces(names: string[]): Promise<void> {
  const { core } = getTestCluster();
  // Deletion is asynchronous (the namespace controller empties the namespace first); nothing waits on it.
  await Promise.all(names.map((name) => core.deleteNamespace({ name }).catch(() => undefined)));
}

/**
 * Creates a namespace `<prefix>-<random>`, waits for its default ServiceAccount (pods are rejected until the
 * controller-manager has made it), and deletes it when the current test finishes, or, when called from a hook,
 * after the file's last test.
 */
export async function freshNamespace(prefix: string): Promise<string> {
  const { core } = getTestCluster();
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`.toLowerCase();
  await core.createNamespace({ body: { metadata: { name, labels: { "gpufleet.io/test": "true" } } } });
  try {
    onTestFinished(() => deleteNamespaces([name]));
  } catch {
    fileScoped.push(name); // not inside a test body
  }
  await waitFor(() => core.readNamespacedServiceAccount({ name: "default", namespace: name }), {
    description: `ServiceAccount ${name}/default`,
    timeoutMs: 30_000,
  });
  return name;
}
