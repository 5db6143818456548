/**
 * Leader chaos on the shared local cluster (bench/reliability/leader.ts; the bench runs it at 1,024 GPUs with the
 * chart's lease settings): two operator processes, the leader killed or frozen in the middle of placing a 4-node gang
 * (shared with other test files, the cluster has 8 H100 nodes).
 */
import { describe, expect, it } from "vitest";
import { leaderFaultDuringGang } from "../../bench/reliability/leader.js";
import { chaosContext, FAST_LEASE } from "./context.js";

describe("leader chaos during a gang placement", () => {
  it("SIGKILL: the follower takes over, and the gang ends whole (no lost or duplicate pod, no half-placed gang)", async () => {
    const row = await leaderFaultDuringGang(chaosContext(), {
      nodes: 4,
      lease: FAST_LEASE,
      signal: "SIGKILL",
      timeoutMs: 90_000,
    });
    console.log(JSON.stringify(row));
    expect(row).toMatchObject({ lost: 0, duplicated: 0, passed: true });
    expect(row.timingsMs.failoverMs).toBeGreaterThan(0);
  }, 240_000);

  it("SIGSTOP (stalled renew): the frozen leader, once thawed, writes nothing and exits; objects keep their resourceVersions", async () => {
    const row = await leaderFaultDuringGang(chaosContext(), {
      nodes: 4,
      lease: FAST_LEASE,
      signal: "SIGSTOP",
      timeoutMs: 90_000,
    });
    console.log(JSON.stringify(row));
    expect(row.counts).toMatchObject({ staleWrites: 0, objectsChangedWhileThawed: 0 });
    expect(row.counts?.thawedExitCode).toBe(1);
    expect(row).toMatchObject({ lost: 0, duplicated: 0, passed: true });
  }, 240_000);
});
