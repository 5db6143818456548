/** The chaos scenarios' context (bench/reliability/row.ts) over the integration run's shared cluster. */
import { afterAll, beforeAll } from "vitest";
import { localChaosContext } from "../../bench/reliability/local.js";
import type { ChaosContext } from "../../bench/reliability/row.js";
import { startLocalCluster, type LocalCluster } from "../harness/cluster.js";
import { freshNamespace, getTestCluster } from "../harness/context.js";
import { applyProfileFabrics } from "../harness/fabric.js";
import { installCrds } from "../support/operator.js";

/**
 * Short leases keep failover tests in seconds (not so short that a starved CI machine flaps); the bench runs the
 * chart's defaults.
 */
export const FAST_LEASE = { leaseDurationMs: 5000, renewDeadlineMs: 3500, retryPeriodMs: 500 };

export function chaosContext(): ChaosContext {
  const cluster = getTestCluster();
  return {
    kubeconfigPath: cluster.kubeconfigPath,
    kubeConfig: cluster.kubeConfig,
    ...(cluster.natsUrl ? { natsUrl: cluster.natsUrl } : {}),
    freshNamespace,
    log: (message) => console.log(`[chaos] ${message}`),
  };
}

/**
 * A cluster of a test file's own (default profile, CRDs installed, optionally its fabrics), for chaos that takes a
 * shared component away (the API server, NATS) and so must not run on the integration run's shared cluster. Call it
 * at the top of the file: it registers its own beforeAll/afterAll and returns the context the scenarios read.
 */
export function ownChaosCluster(options: { withNats: boolean; fabrics?: boolean }): {
  cluster: () => LocalCluster;
  ctx: () => ReturnType<typeof localChaosContext>;
} {
  let cluster: LocalCluster | undefined;
  let ctx: ReturnType<typeof localChaosContext> | undefined;
  beforeAll(async () => {
    cluster = await startLocalCluster({
      profile: "default",
      withNats: options.withNats,
      log: (m) => console.log(`[chaos cluster] ${m}`),
    });
    await installCrds(cluster.kubeconfigPath);
    if (options.fabrics && cluster.profile) await applyProfileFabrics(cluster.kubeconfigPath, cluster.profile);
    ctx = localChaosContext(cluster, (m) => console.log(`[chaos] ${m}`));
  }, 300_000);
  afterAll(async () => {
    await ctx?.deleteNamespaces();
    await cluster?.stop();
  }, 120_000);
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the chaos ${what} is not started (beforeAll failed?)`);
    return value;
  };
  return { cluster: () => started(cluster, "cluster"), ctx: () => started(ctx, "context") };
}
