import { describe, expect, it } from "vitest";
import { dispatchBatch, FreenessPolicy, RoundRobinPolicy, type Candidate, type DispatchRequest } from "./dispatch.js";
import { idleLoad, type InstanceLoad } from "./freeness.js";

const decode = (id: string, over: Partial<InstanceLoad> = {}): Candidate => ({ id, role: "decode", load: { ...idleLoad(100), ...over } });
const prefill = (id: string, over: Partial<InstanceLoad> = {}): Candidate => ({ id, role: "prefill", load: { ...idleLoad(100), ...over } });
const request = (id: string, priority: "high" | "normal" = "normal", promptTokens = 160): DispatchRequest => ({ id, priority, promptTokens });

describe("FreenessPolicy.choose", () => {
  describe.each([
    {
      name: "highest F wins, not fewest blocks used: a big batch drains free blocks faster",
      candidates: [decode("a", { kvBlocksUsed: 50, runningRequests: 1 }), decode("b", { kvBlocksUsed: 20, runningRequests: 8 })],
      chosen: "a", // F(a) = 50, F(b) = 10
    },
    {
      name: "a head-of-line waiting request makes its instance look loaded before its memory is",
      candidates: [decode("a", { kvBlocksUsed: 10, runningRequests: 1, queuedRequests: 2, headOfLineDemandBlocks: 80 }), decode("b", { kvBlocksUsed: 50, runningRequests: 1 })],
      chosen: "b", // F(a) = 10, F(b) = 50
    },
    {
      name: "high-priority headroom steers new requests away",
      candidates: [decode("a", { kvBlocksUsed: 20, runningRequests: 2, highPriorityRunning: 2 }), decode("b", { kvBlocksUsed: 30, runningRequests: 2 })],
      chosen: "b", // F(a) = (100-20-20)/2 = 30, F(b) = 35
    },
    {
      name: "a draining instance is never chosen, even empty",
      candidates: [decode("a", { draining: true }), decode("b", { kvBlocksUsed: 99, runningRequests: 30 })],
      chosen: "b",
    },
    {
      name: "ties break on fewer running requests, then id",
      candidates: [decode("b", { kvBlocksUsed: 60, runningRequests: 2 }), decode("a", { kvBlocksUsed: 60, runningRequests: 2 })],
      chosen: "a",
    },
    {
      name: "prefill instances by fewest outstanding prompt tokens",
      candidates: [prefill("a", { outstandingPromptTokens: 4000, kvBlocksUsed: 0 }), prefill("b", { outstandingPromptTokens: 1000, kvBlocksUsed: 90, runningRequests: 5 })],
      chosen: "b",
    },
    { name: "all draining: nothing", candidates: [decode("a", { draining: true })], chosen: undefined },
    { name: "no candidates: nothing", candidates: [], chosen: undefined },
  ])("$name", ({ candidates, chosen }) => {
    it("chooses", () => {
      expect(new FreenessPolicy().choose(candidates)?.id).toBe(chosen);
    });
  });
});

describe("RoundRobinPolicy", () => {
  it("cycles in id order regardless of load and skips draining instances", () => {
    const policy = new RoundRobinPolicy();
    const pool = [decode("c"), decode("a", { kvBlocksUsed: 99, runningRequests: 50 }), decode("b", { draining: true })];
    expect([1, 2, 3, 4].map(() => policy.choose(pool)?.id)).toEqual(["a", "c", "a", "c"]);
  });
});

describe("dispatchBatch", () => {
  it("spreads a burst over equal instances because each choice is reserved before the next", () => {
    const assignments = dispatchBatch(new FreenessPolicy(), [decode("a"), decode("b")], ["1", "2", "3", "4"].map((id) => request(id)));
    const counts = new Map<string, number>();
    for (const a of assignments) counts.set(a.instanceId!, (counts.get(a.instanceId!) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ a: 2, b: 2 });
  });

  it("dispatches high priority first, then arrival order", () => {
    const assignments = dispatchBatch(new FreenessPolicy(), [decode("a"), decode("b", { kvBlocksUsed: 30, runningRequests: 1 })], [request("n1"), request("h1", "high"), request("n2"), request("h2", "high")]);
    expect(assignments.map((a) => a.requestId)).toEqual(["h1", "h2", "n1", "n2"]);
    expect(assignments[0]!.instanceId).toBe("a"); // the emptiest instance goes to the first high-priority request
  });

  it("reports requests no instance can take", () => {
    expect(dispatchBatch(new FreenessPolicy(), [decode("a", { draining: true })], [request("1")])).toEqual([{ requestId: "1", instanceId: undefined }]);
  });
});
