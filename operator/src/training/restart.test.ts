import { describe, expect, it } from "vitest";
import { decideRestart, type RestartState } from "./restart.js";

const running = (n: number) =>
  Array.from({ length: n }, (_, i) => ({ name: `j-${i}`, nodeName: `node-${i}`, phase: "Running" as const }));
const base: RestartState = {
  jobName: "j",
  restarts: 0,
  maxRestarts: 3,
  pods: running(4),
  isolatedNodes: [],
  lastCheckpointStep: 500,
  backoffBaseMs: 10_000,
};
const failPod = (pods: RestartState["pods"], i: number) =>
  pods.map((p, k) => (k === i ? { ...p, phase: "Failed" as const } : p));

describe("decideRestart", () => {
  it.each([
    { name: "healthy gang", state: base, want: { action: "none", reason: "AsExpected", backoffMs: 0, restarts: 0 } },
    {
      name: "pod in Unknown is not a failure by itself",
      state: { ...base, pods: base.pods.map((p, i) => (i === 0 ? { ...p, phase: "Unknown" as const } : p)) },
      want: { action: "none", reason: "AsExpected" },
    },
    {
      name: "all pods succeeded",
      state: { ...base, pods: base.pods.map((p) => ({ ...p, phase: "Succeeded" as const })) },
      want: { action: "none", reason: "Completed" },
    },
    {
      name: "first failure: restart after the base backoff from the checkpoint",
      state: { ...base, pods: failPod(base.pods, 2) },
      want: { action: "restart", reason: "GangMemberFailed", backoffMs: 10_000, restarts: 1, resumeStep: 500 },
    },
    {
      name: "isolated node: restart even while its pod still runs",
      state: { ...base, isolatedNodes: ["node-1"] },
      want: { action: "restart", backoffMs: 10_000, restarts: 1 },
    },
    {
      name: "third failure: backoff doubled twice",
      state: { ...base, restarts: 2, pods: failPod(base.pods, 0) },
      want: { action: "restart", backoffMs: 40_000, restarts: 3 },
    },
    {
      name: "backoff capped",
      state: { ...base, restarts: 9, maxRestarts: 20, pods: failPod(base.pods, 0), backoffMaxMs: 60_000 },
      want: { action: "restart", backoffMs: 60_000, restarts: 10 },
    },
    {
      name: "no checkpoint yet: resume from step 0",
      state: { ...base, lastCheckpointStep: undefined, pods: failPod(base.pods, 0) },
      want: { action: "restart", resumeStep: 0 },
    },
    {
      name: "budget spent: fail",
      state: { ...base, restarts: 3, pods: failPod(base.pods, 3) },
      want: { action: "fail", reason: "RestartBudgetExhausted", backoffMs: 0, restarts: 3 },
    },
    {
      name: "maxRestarts 0: the first failure fails the job",
      state: { ...base, maxRestarts: 0, isolatedNodes: ["node-0"] },
      want: { action: "fail", reason: "RestartBudgetExhausted" },
    },
  ])("$name", ({ state, want }) => {
    expect(decideRestart(state)).toMatchObject(want);
  });

  it("names the failed pods and isolated nodes in its message", () => {
    const d = decideRestart({ ...base, pods: failPod(base.pods, 1), isolatedNodes: ["node-3", "node-3"] });
    expect(d.message).toBe(
      "pod j-1 (node node-1) failed; node node-3 isolated; restarting the whole gang (restart 1 of 3) from step 500 after 10s",
    );
    const f = decideRestart({ ...base, restarts: 3, isolatedNodes: ["node-0"] });
    expect(f.message).toBe("node node-0 isolated; restart budget spent (3 of maxRestarts 3 used)");
  });

  it("never lowers the restart count, whatever happens after a restart", () => {
    let restarts = 0;
    const seen: number[] = [];
    // Failure, healthy run, failure, completed, failure …: the count only climbs until the budget is spent.
    for (const healthy of [false, true, false, true, true, false, true, false]) {
      const d = decideRestart({ ...base, restarts, pods: healthy ? base.pods : failPod(base.pods, 0) });
      expect(d.restarts).toBeGreaterThanOrEqual(restarts);
      restarts = d.restarts;
      seen.push(d.restarts);
    }
    expect(seen).toEqual([1, 1, 2, 2, 2, 3, 3, 3]);
    expect(decideRestart({ ...base, restarts, pods: failPod(base.pods, 0) }).action).toBe("fail");
  });

  it("refuses a negative restart count", () => {
    expect(() => decideRestart({ ...base, restarts: -1 })).toThrow(
      /TrainingJob j: restarts must be a non-negative integer/,
    );
  });
});
