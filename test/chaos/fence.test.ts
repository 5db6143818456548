/**
 * The write fence (operator/src/runtime/fence.ts) against the real API server, in the stalled-renew case made
 * deterministic: the leader's event loop is blocked past its renew deadline (as SIGSTOP, a VM pause or CPU
 * starvation would), and the first thing it does on waking is a write. The elector has had no tick, so it still says
 * it leads; a plain client's write lands, the fenced client's is refused before it leaves the process.
 */
import { CoreV1Api } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FencedKubeConfig, LeaseLostError } from "../../operator/src/runtime/fence.js";
import { LeaderElector } from "../../operator/src/runtime/leader.js";
import { silentLogger } from "../../operator/src/runtime/logger.js";
import { freshNamespace, getTestCluster, waitFor } from "../harness/context.js";
import { FAST_LEASE } from "./context.js";

/** Blocks this thread: no timer, I/O callback or elector tick runs meanwhile. */
function freezeEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe("the write fence of a leader whose event loop stalled past its renew deadline", () => {
  let namespace: string;
  let elector: LeaderElector;
  let steppedDown = 0;

  beforeAll(async () => {
    const cluster = getTestCluster();
    namespace = await freshNamespace("chaos-fence");
    elector = new LeaderElector({
      kubeConfig: cluster.kubeConfig,
      namespace,
      leaseName: "fence",
      identity: "frozen",
      ...FAST_LEASE,
      logger: silentLogger,
      onStartedLeading: () => {},
      onStoppedLeading: () => (steppedDown += 1),
    });
    elector.start();
    await waitFor(() => elector.holdsLease() || undefined, { description: "the elector leads", timeoutMs: 30_000 });
  });
  afterAll(async () => {
    await elector?.stop();
  });

  it("refuses the write a plain client would send: the elector has not noticed yet, the monotonic deadline has", async () => {
    const cluster = getTestCluster();
    const fenced = new FencedKubeConfig(cluster.kubeConfig, () =>
      elector.holdsLease() ? undefined : "lease not held",
    ).makeApiClient(CoreV1Api);
    const plain = cluster.core;
    const configMap = (name: string) => ({ namespace, body: { metadata: { name } } });
    // While the lease is fresh the fence lets writes through.
    await fenced.createNamespacedConfigMap(configMap("before-freeze"));

    freezeEventLoop(FAST_LEASE.renewDeadlineMs + 500);
    // Nothing has run since: the elector still believes it leads, exactly what a thawed leader's reconcile sees.
    expect(elector.isLeader).toBe(true);
    expect(elector.holdsLease()).toBe(false);
    const refused = fenced.createNamespacedConfigMap(configMap("from-fenced-client"));
    const landed = plain.createNamespacedConfigMap(configMap("from-plain-client"));
    await expect(refused).rejects.toBeInstanceOf(LeaseLostError);
    await expect(refused).rejects.toThrow(
      /refused POST \/api\/v1\/namespaces\/chaos-fence-\w+\/configmaps: lease not held/,
    );
    await landed;

    const names = (await plain.listNamespacedConfigMap({ namespace })).items.map((c) => c.metadata?.name);
    expect(names).toContain("before-freeze");
    expect(names).toContain("from-plain-client"); // the hazard the fence closes is real
    expect(names).not.toContain("from-fenced-client");
    // Reads still pass (a follower keeps its caches warm), and the elector steps down at its next tick.
    await expect(fenced.readNamespacedConfigMap({ namespace, name: "before-freeze" })).resolves.toBeDefined();
    await waitFor(() => steppedDown > 0 || undefined, {
      description: "the elector steps down at its next tick",
      timeoutMs: 10_000,
    });
  });
});
