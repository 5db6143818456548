/**
 * Leader election when the API server hangs on the Lease: a loopback proxy in front of the real kube-apiserver
 * accepts the leader's Lease calls and never answers them. The leader must abort each call at its renew deadline,
 * step down within it (before any follower may take over, leaseDuration after the last renew), and leave no call
 * open that could still land a write; a follower on a healthy connection then takes over, never overlapping.
 */
import { CoordinationV1Api, V1MicroTime } from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LeaderElector } from "../../../../operator/src/runtime/leader.js";
import { silentLogger } from "../../../../operator/src/runtime/logger.js";
import { waitFor } from "../../../harness/wait.js";
import { startApiProxy, type ApiProxy } from "../../../support/api-proxy.js";
import { testCluster, type TestCluster } from "../../../support/cluster.js";

const LEASE = { leaseDurationMs: 4000, renewDeadlineMs: 2000, retryPeriodMs: 300 };
const isLeaseCall = (url: string) =>
  url.includes("/apis/coordination.k8s.io/v1/namespaces/") && url.includes("/leases");

describe("a leader whose Lease calls hang", () => {
  let cluster: TestCluster;
  let proxy: ApiProxy;
  let namespace: string;
  let leader: LeaderElector | undefined;
  let follower: LeaderElector | undefined;
  const times: { leaderStartedMs?: number; leaderStoppedMs?: number; followerStartedMs?: number } = {};

  beforeAll(async () => {
    cluster = testCluster();
    namespace = await cluster.freshNamespace("leader");
    proxy = await startApiProxy(cluster.kubeConfig);
    const common = { namespace, leaseName: "op", ...LEASE, logger: silentLogger };
    leader = new LeaderElector({
      ...common,
      kubeConfig: proxy.kubeConfig,
      identity: "a",
      onStartedLeading: () => (times.leaderStartedMs = performance.now()),
      onStoppedLeading: () => (times.leaderStoppedMs = performance.now()),
    });
    leader.start();
    await waitFor(() => leader!.isLeader || undefined, { description: "a leads", timeoutMs: 30_000 });
    follower = new LeaderElector({
      ...common,
      kubeConfig: cluster.kubeConfig,
      identity: "b",
      onStartedLeading: () => (times.followerStartedMs = performance.now()),
      onStoppedLeading: () => {},
    });
    follower.start();
    // b has seen a renew a few times: it is a follower now.
    const seen = proxy.requests.length;
    await waitFor(
      () =>
        (proxy.requests.filter((r) => r.method === "PUT").length >= 3 && proxy.requests.length > seen + 3) || undefined,
      { description: "a renews", timeoutMs: 30_000 },
    );
    expect(follower.isLeader).toBe(false);
  });
  afterAll(async () => {
    await follower?.stop();
    await proxy?.close();
    await leader?.stop();
  }, 30_000);

  it("steps down within the renew deadline, aborting every hung call, and the follower takes over only after", async () => {
    proxy.setRule((r) => (isLeaseCall(r.url) ? "stall" : "forward"));
    const stalledFromMs = performance.now();
    await waitFor(() => times.leaderStoppedMs, { description: "a steps down", timeoutMs: 30_000 });
    const lastRenew = proxy.requests.filter((r) => r.method === "PUT" && r.verdict === "forward").at(-1)!;
    // Stepped down before a follower may take over (leaseDuration after the last renew), and not before the deadline.
    const heldAfterLastRenewMs = times.leaderStoppedMs! - lastRenew.atMs;
    expect(heldAfterLastRenewMs).toBeGreaterThanOrEqual(LEASE.renewDeadlineMs);
    expect(heldAfterLastRenewMs).toBeLessThan(LEASE.leaseDurationMs);
    expect(leader!.isLeader).toBe(false);

    // Every call that hung was given up by the client by the renew deadline: none is left to land a write later.
    const stalled = proxy.requests.filter((r) => r.verdict === "stall" && r.atMs < times.leaderStoppedMs!);
    expect(stalled.length).toBeGreaterThan(0);
    for (const r of stalled) {
      expect(r.abortedAtMs, `${r.method} ${r.url}`).toBeDefined();
      expect(r.abortedAtMs! - r.atMs).toBeLessThanOrEqual(LEASE.renewDeadlineMs + 500);
    }
    expect(
      proxy.requests.filter((r) => r.verdict === "forward" && isLeaseCall(r.url) && r.atMs >= stalledFromMs),
    ).toEqual([]);

    await waitFor(() => times.followerStartedMs, { description: "b takes over", timeoutMs: 30_000 });
    expect(times.followerStartedMs!).toBeGreaterThan(times.leaderStoppedMs!);
    // a keeps campaigning through the hung connection: its calls keep being aborted, and it never leads again.
    const later = proxy.requests.length;
    await waitFor(
      () => proxy.requests.slice(later).filter((r) => r.abortedAtMs !== undefined).length >= 2 || undefined,
      { description: "a's later calls are aborted too", timeoutMs: 30_000 },
    );
    expect(leader!.isLeader).toBe(false);
  });
});

describe("a follower watching a dead leader's Lease", () => {
  // retryPeriod close to leaseDuration makes the difference plain: on the retry grid alone the follower would take
  // over at its second tick after expiry (2 × 2,500 ms after it first saw the lease), not at expiry (3,000 ms).
  const SLOW_RETRY = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 2500 };
  let cluster: TestCluster;
  let follower: LeaderElector | undefined;
  afterAll(async () => {
    await follower?.stop();
  }, 30_000);

  it("takes over when the lease expires, not at the next retry after it", async () => {
    cluster = testCluster();
    const namespace = await cluster.freshNamespace("leader-expiry");
    const now = new V1MicroTime(Date.now());
    await cluster.kubeConfig.makeApiClient(CoordinationV1Api).createNamespacedLease({
      namespace,
      body: {
        metadata: { name: "op", namespace },
        spec: { holderIdentity: "dead", leaseDurationSeconds: 3, acquireTime: now, renewTime: now },
      },
    });
    let startedMs: number | undefined;
    follower = new LeaderElector({
      namespace,
      leaseName: "op",
      ...SLOW_RETRY,
      logger: silentLogger,
      kubeConfig: cluster.kubeConfig,
      identity: "b",
      onStartedLeading: () => (startedMs = performance.now()),
      onStoppedLeading: () => {},
    });
    const fromMs = performance.now();
    follower.start();
    await waitFor(() => startedMs, { description: "b takes over", timeoutMs: 20_000 });
    const tookMs = startedMs! - fromMs;
    // Never before the lease's duration from b's first sight of it, and well before the retry grid's 5,000 ms.
    expect(tookMs).toBeGreaterThanOrEqual(SLOW_RETRY.leaseDurationMs);
    expect(tookMs).toBeLessThan(SLOW_RETRY.leaseDurationMs + 1000);
  });
});
