/**
 * Control-plane chaos (bench/reliability/control-plane.ts) on a cluster of this file's own: kube-apiserver, then etcd,
 * then both are killed and restarted under an in-process operator; every change made the moment the API is back is
 * seen and reconciled. Its own cluster, since the run's shared one must not lose its API server under other files.
 */
import { describe, expect, it } from "vitest";
import { controlPlaneRestart } from "../../bench/reliability/control-plane.js";
import { ownChaosCluster } from "./context.js";
import type { RestartableServer } from "../harness/cluster.js";

const chaos = ownChaosCluster({ withNats: false });

describe("control-plane restarts under the operator", () => {
  // The last case keeps both down long enough for the informers' restart backoff to grow (0.5 s doubling: 8 s by
  // then), the path of the 1,000-node failure in docs/reliability.md, at this file's small scale.
  const cases: [string, RestartableServer[], number][] = [
    ["kube-apiserver", ["kube-apiserver"], 2000],
    ["etcd", ["etcd"], 2000],
    ["both", ["etcd", "kube-apiserver"], 2000],
    ["both, 20 s down", ["etcd", "kube-apiserver"], 20_000],
  ];
  for (const [what, servers, downMs] of cases) {
    it(`${what}: every change made as the API comes back is seen and reconciled`, async () => {
      const row = await controlPlaneRestart(chaos.ctx(), { servers, downMs, changes: 5, timeoutMs: 120_000 });
      console.log(JSON.stringify(row));
      expect(row).toMatchObject({ lost: 0, passed: true });
      expect(row.counts).toMatchObject({ changes: 10, reconciled: 10 });
    }, 300_000);
  }
});
