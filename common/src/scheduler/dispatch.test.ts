import { describe, expect, it } from "vitest";
import {
  createPolicy,
  dispatchBatch,
  FreenessPolicy,
  RoundRobinPolicy,
  type Candidate,
  type DispatchRequest,
} from "./dispatch.js";
import { idleLoad, type InstanceLoad } from "./freeness.js";

const decode = (id: string, over: Partial<InstanceLoad> = {}): Candidate => ({
  id,
  role: "decode",
  load: { ...idleLoad(100), ...over },
});
const prefill = (id: string, over: Partial<InstanceLoad> = {}): Candidate => ({
  id,
  role: "prefill",
  load: { ...idleLoad(100), ...over },
});
const request = (id: string, priority: "high" | "normal" = "normal", promptTokens = 160): DispatchRequest => ({
  id,
  priority,
  promptTokens,
});

describe("FreenessPolicy.choose", () => {
  describe.each([
    {
      name: "highest F wins, not fewest blocks used: a big batch drains free blocks faster",
      candidates: [
        decode("a", { kvBlocksUsed: 50, runningRequests: 1 }),
        decode("b", { kvBlocksUsed: 20, runningRequests: 8 }),
      ],
      chosen: "a", // F(a) = 50, F(b) = 10
    },
    {
      name: "a head-of-line waiting request makes its instance look loaded before its memory is",
      candidates: [
        decode("a", { kvBlocksUsed: 10, runningRequests: 1, queuedRequests: 2, headOfLineDemandBlocks: 80 }),
        decode("b", { kvBlocksUsed: 50, runningRequests: 1 }),
      ],
      chosen: "b", // F(a) = 10, F(b) = 50
    },
    {
      name: "high-priority headroom steers new requests away",
      candidates: [
        decode("a", { kvBlocksUsed: 20, runningRequests: 2, highPriorityRunning: 2 }),
        decode("b", { kvBlocksUsed: 30, runningRequests: 2 }),
      ],
      chosen: "b", // F(a) = (100-20-20)/2 = 30, F(b) = 35
    },
    {
      name: "a draining instance is never chosen, even empty",
      candidates: [decode("a", { draining: true }), decode("b", { kvBlocksUsed: 99, runningRequests: 30 })],
      chosen: "b",
    },
    {
      name: "ties break on fewer running requests, then (nothing chosen yet) id",
      candidates: [
        decode("b", { kvBlocksUsed: 60, runningRequests: 2 }),
        decode("a", { kvBlocksUsed: 60, runningRequests: 2 }),
      ],
      chosen: "a",
    },
    {
      name: "prefill instances by fewest outstanding prompt tokens",
      candidates: [
        prefill("a", { outstandingPromptTokens: 4000, kvBlocksUsed: 0 }),
        prefill("b", { outstandingPromptTokens: 1000, kvBlocksUsed: 90, runningRequests: 5 }),
      ],
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

describe("FreenessPolicy ties", () => {
  it("go to the instance chosen least recently, not always to the first id", () => {
    const policy = new FreenessPolicy();
    const pool = [decode("c"), decode("a"), decode("b")]; // the same loads every time, as between two reports
    expect([1, 2, 3, 4].map(() => policy.choose(pool)?.id)).toEqual(["a", "b", "c", "a"]);
  });

  it("do not override a higher F", () => {
    const policy = new FreenessPolicy();
    const pool = [decode("a"), decode("b", { kvBlocksUsed: 1, runningRequests: 1 })];
    expect([1, 2].map(() => policy.choose(pool)?.id)).toEqual(["a", "a"]);
  });
});

describe("the waiting-prompt-tokens option", () => {
  it("sends a colocated request to the fewest outstanding prompt tokens, where freeness picks the highest F", () => {
    const pool = [
      decode("a", { kvBlocksUsed: 10, runningRequests: 1, queuedRequests: 3, outstandingPromptTokens: 9_000 }),
      decode("b", { kvBlocksUsed: 60, runningRequests: 4 }),
    ];
    expect(createPolicy("waiting-prompt-tokens").choose(pool, request("1"))?.id).toBe("b");
    expect(createPolicy("waiting-prompt-tokens").name).toBe("waiting-prompt-tokens");
    expect(createPolicy("freeness").choose(pool, request("1"))?.id).toBe("a"); // F(a) = 90 - its head-of-line 0 = 90, F(b) = 10
  });

  it("spreads a burst through the reservations' prompt tokens", () => {
    const assignments = dispatchBatch(
      createPolicy("waiting-prompt-tokens"),
      [decode("a"), decode("b"), decode("c")],
      ["1", "2", "3", "4", "5", "6"].map((id) => request(id)),
    );
    expect(assignments.map((a) => a.instanceId)).toEqual(["a", "b", "c", "a", "b", "c"]);
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
    const assignments = dispatchBatch(
      new FreenessPolicy(),
      [decode("a"), decode("b")],
      ["1", "2", "3", "4"].map((id) => request(id)),
    );
    const counts = new Map<string, number>();
    for (const a of assignments) counts.set(a.instanceId!, (counts.get(a.instanceId!) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ a: 2, b: 2 });
  });

  const spread = (assignments: readonly { instanceId: string | undefined }[]): number[] => {
    const counts = new Map<string, number>();
    for (const a of assignments) counts.set(a.instanceId!, (counts.get(a.instanceId!) ?? 0) + 1);
    return [...counts.values()].sort((x, y) => x - y);
  };
  const pool = (n: number, over: Partial<InstanceLoad>) =>
    Array.from({ length: n }, (_, i) => decode(`i${String(i).padStart(2, "0")}`, { ...idleLoad(28_683), ...over }));

  describe.each([
    { name: "idle instances", instances: 4, burst: 16, load: {} },
    {
      name: "instances that report a waiting request with free memory (the herding case)",
      instances: 4,
      burst: 16,
      load: { kvBlocksUsed: 2_000, runningRequests: 20, queuedRequests: 1, headOfLineDemandBlocks: 85 },
    },
    {
      name: "sixteen busy instances, each with a queue",
      instances: 16,
      burst: 64,
      load: { kvBlocksUsed: 10_000, runningRequests: 100, queuedRequests: 5, headOfLineDemandBlocks: 200 },
    },
    {
      name: "instances whose waiting demand exceeds free memory",
      instances: 3,
      burst: 9,
      load: { kvBlocksUsed: 28_600, runningRequests: 50, queuedRequests: 2, headOfLineDemandBlocks: 300 },
    },
  ])("a burst of N between two reports over equal $name", ({ instances, burst, load }) => {
    it("lands N / instances on each", () => {
      const assignments = dispatchBatch(
        new FreenessPolicy(),
        pool(instances, load),
        Array.from({ length: burst }, (_, i) => request(`r${i}`, "normal", 1_360)),
      );
      expect(spread(assignments)).toEqual(Array.from({ length: instances }, () => burst / instances));
    });
  });

  it("dispatches high priority first, then arrival order", () => {
    const assignments = dispatchBatch(
      new FreenessPolicy(),
      [decode("a"), decode("b", { kvBlocksUsed: 30, runningRequests: 1 })],
      [request("n1"), request("h1", "high"), request("n2"), request("h2", "high")],
    );
    expect(assignments.map((a) => a.requestId)).toEqual(["h1", "h2", "n1", "n2"]);
    expect(assignments[0]!.instanceId).toBe("a"); // the emptiest instance goes to the first high-priority request
  });

  it("reports requests no instance can take", () => {
    expect(dispatchBatch(new FreenessPolicy(), [decode("a", { draining: true })], [request("1")])).toEqual([
      { requestId: "1", instanceId: undefined },
    ]);
  });
});
