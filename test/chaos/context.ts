/** The chaos scenarios' context (bench/reliability/row.ts) over the integration run's shared cluster. */
import { freshNamespace, getTestCluster } from "../harness/context.js";
import type { ChaosContext } from "../../bench/reliability/row.js";

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
