/**
 * Controllers start only on caches that listed. A failed first pod list leaves an empty pod cache, in which every
 * GPU looks free; reconciling on it would place pods onto GPUs that are in use. Here the real API server sits behind
 * a loopback proxy that fails every pod list until the test lets it through.
 */
import { CustomObjectsApi, KubernetesObjectApi } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOperatorConfig } from "../../../operator/src/config/config.js";
import { silentLogger } from "../../../operator/src/runtime/logger.js";
import { startOperator, type OperatorHandle } from "../../../operator/src/operator.js";
import { waitFor } from "../../harness/wait.js";
import { startApiProxy, type ApiProxy } from "../../support/api-proxy.js";
import { testCluster, type TestCluster } from "../../support/cluster.js";
import { installCrds, metricValue } from "../../support/operator.js";
import { validServingDeployment } from "./fixtures.js";

const isPodList = (r: { method: string; url: string }) =>
  r.method === "GET" && /^\/api\/v1\/pods(\?|$)/.test(r.url) && !/[?&]watch=(true|1)/.test(r.url);

describe("an operator whose first pod list fails", () => {
  let cluster: TestCluster;
  let proxy: ApiProxy;
  let operator: OperatorHandle | undefined;
  let namespace: string;
  let custom: CustomObjectsApi;
  let podListsFail = true;

  beforeAll(async () => {
    cluster = testCluster();
    await installCrds(cluster.kubeconfigPath);
    namespace = await cluster.freshNamespace("cache-sync");
    custom = cluster.kubeConfig.makeApiClient(CustomObjectsApi);
    await KubernetesObjectApi.makeApiClient(cluster.kubeConfig).create(
      validServingDeployment("chat", namespace) as never,
    );
    proxy = await startApiProxy(cluster.kubeConfig);
    proxy.setRule((r) => (podListsFail && isPodList(r) ? { status: 500 } : "forward"));
    const config = loadOperatorConfig({
      GPUFLEET_LEADER_ELECTION: "false",
      GPUFLEET_HTTP_PORT: "0",
      GPUFLEET_IDENTITY: "cache-sync",
      GPUFLEET_NAMESPACE: "default",
    });
    operator = await startOperator({ config, kubeConfig: proxy.kubeConfig, logger: silentLogger });
  }, 60_000);
  afterAll(async () => {
    await operator?.stop();
    await proxy?.close();
  }, 30_000);

  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${operator!.httpPort}/readyz`);
    return { status: res.status, text: await res.text() };
  };
  const leaderGauge = async () =>
    metricValue(
      await (await fetch(`http://127.0.0.1:${operator!.httpPort}/metrics`)).text(),
      "gpufleet_operator_leader",
    );
  const status = async () =>
    (
      (await custom.getNamespacedCustomObject({
        group: "gpufleet.io",
        version: "v1alpha1",
        namespace,
        plural: "servingdeployments",
        name: "chat",
      })) as { status?: { observedGeneration?: number } }
    ).status;

  it("reconciles nothing and is not ready, naming the cache, while pods cannot be listed", async () => {
    // The first list and four retries (0.5 + 1 + 2 + 4 s of backoff) failed: long enough for a started controller
    // to have reconciled and written status.
    await waitFor(
      () => proxy.requests.filter((r) => isPodList(r) && r.verdict === "answered").length >= 5 || undefined,
      { description: "five failed pod lists", timeoutMs: 60_000 },
    );
    expect(await readyz()).toEqual({ status: 503, text: "caches not synced: pods" });
    expect(await status()).toBeUndefined();
    expect(operator!.isLeader()).toBe(false);
    expect(await leaderGauge()).toBe(0);
  });

  it("starts the controllers once the pod list succeeds", async () => {
    podListsFail = false;
    await waitFor(async () => (await readyz()).status === 200 || undefined, {
      description: "operator ready",
      timeoutMs: 60_000,
    });
    expect(await readyz()).toEqual({ status: 200, text: "ok" });
    await waitFor(async () => (await status())?.observedGeneration === 1 || undefined, {
      description: "ServingDeployment reconciled",
      timeoutMs: 30_000,
    });
    expect(operator!.isLeader()).toBe(true);
    expect(await leaderGauge()).toBe(1);
  });
});
