/**
 * Leader chaos in a serving rollout on the shared local cluster (bench/reliability/serving-rollout.ts; the bench runs
 * it with the chart's lease settings): two operator processes, the leader SIGKILLed at its second pod write of a
 * rollout (a new plan's pod created, the next in flight), the follower finishing it.
 */
import { describe, expect, it } from "vitest";
import { leaderKillDuringServingRollout } from "../../bench/reliability/serving-rollout.js";
import { chaosContext, FAST_LEASE } from "./context.js";

describe("leader chaos during a serving rollout", () => {
  it("SIGKILL: the follower takes over and finishes the rollout (exactly the new plan's pods, none twice, none lost)", async () => {
    const row = await leaderKillDuringServingRollout(chaosContext(), {
      lease: FAST_LEASE,
      faultAtPodWrite: 2,
      timeoutMs: 90_000,
    });
    console.log(JSON.stringify(row));
    expect(row).toMatchObject({ lost: 0, duplicated: 0, passed: true });
    expect(row.counts).toMatchObject({ roleGaps: 0 });
    expect(row.counts?.newPlanPods).toBeGreaterThan(0);
    expect(row.timingsMs.failoverMs).toBeGreaterThan(0);
  }, 300_000);
});
