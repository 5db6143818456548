import { describe, expect, it } from "vitest";
import { decideScaling, DEFAULT_AUTOSCALE_CONFIG } from "../../../../common/src/scheduler/autoscale-policy.js";
import { coloc, disagg, instance } from "./fixtures.test-support.js";
import { actionFor, capacityInstances, scalingInput, type PoolsInput } from "./scaling.js";

const base = (over: Partial<PoolsInput> = {}): PoolsInput => ({
  plan: coloc(2),
  desired: { colocated: 2 },
  bounds: { minInstances: 1 },
  instances: [instance("colocated", 0), instance("colocated", 1)],
  drainingPods: new Set(),
  drainingPerRole: {},
  free: [{ nodeName: "n1", gpusFree: 3 }],
  sdName: "sd",
  hash: "h1",
  usedIndices: { colocated: [0, 1] },
  podsPerRole: { colocated: 2 },
  slo: () => undefined,
  nowMs: 100_000,
  lastScaledAtMs: undefined,
  ...over,
});

describe("capacityInstances", () => {
  it.each([
    ["as many TP1 instances as GPUs are free", base(), 3],
    [
      "TP2 instances never split across nodes",
      base({
        plan: coloc(2, 2),
        free: [
          { nodeName: "n1", gpusFree: 3 },
          { nodeName: "n2", gpusFree: 1 },
        ],
      }),
      1,
    ],
    ["within scaling.maxGpus", base({ bounds: { minInstances: 1, maxGpus: 3 } }), 1],
    [
      "a draining instance's GPUs count against maxGpus until its pod goes",
      base({ bounds: { minInstances: 1, maxGpus: 3 }, desired: { colocated: 1 }, drainingPerRole: { colocated: 1 } }),
      1,
    ],
    ["instances wanted but not created yet take their GPUs first", base({ desired: { colocated: 4 } }), 1],
    ["none when even the wanted ones do not fit", base({ desired: { colocated: 6 } }), 0],
    ["none without free GPUs", base({ free: [{ nodeName: "n1", gpusFree: 0 }] }), 0],
  ] as const)("%s", (_name, input, expected) => {
    expect(capacityInstances(input, "colocated")).toBe(expected);
  });
});

describe("scalingInput", () => {
  it("marks instances this operator drains as draining before they report it, and counts instances not reporting yet as starting", () => {
    const input = scalingInput(
      base({
        desired: { colocated: 2 },
        instances: [instance("colocated", 0), instance("colocated", 1)],
        drainingPods: new Set(["sd-h1-c1"]),
        drainingPerRole: { colocated: 1 },
      }),
    );
    const pool = input.pools[0]!;
    expect(pool.instances.map((i) => i.load.draining)).toEqual([false, true]);
    expect(pool.startingInstances).toBe(1);
    expect(pool.maxInstances).toBe(Number.MAX_SAFE_INTEGER);
  });

  it("passes the plan's replicas for the P:D bound of disaggregated plans", () => {
    const input = scalingInput(
      base({
        plan: disagg(1, 2),
        desired: { prefill: 1, decode: 2 },
        instances: [instance("prefill", 0), instance("decode", 0), instance("decode", 1)],
        usedIndices: { prefill: [0], decode: [0, 1] },
        podsPerRole: { prefill: 1, decode: 2 },
      }),
    );
    expect(input.planReplicas).toEqual({ prefill: 1, decode: 2 });
    expect(input.pools.map((p) => p.role)).toEqual(["prefill", "decode"]);
  });

  it("lets the real policy scale an idle pool in, and a saturated one out, within the capacity given", () => {
    const idle = scalingInput(
      base({
        instances: [
          instance("colocated", 0, { runningRequests: 1, kvBlocksUsed: 10 }),
          instance("colocated", 1, { runningRequests: 2, kvBlocksUsed: 10 }),
        ],
      }),
    );
    const down = decideScaling(idle, DEFAULT_AUTOSCALE_CONFIG);
    expect(down).toMatchObject({ kind: "down", role: "colocated", drainInstanceId: "uid-c0/0" });
    const busy = (free: number) =>
      scalingInput(
        base({
          free: [{ nodeName: "n1", gpusFree: free }],
          instances: [
            instance("colocated", 0, { runningRequests: 100, kvBlocksUsed: 900 }),
            instance("colocated", 1, { runningRequests: 100, kvBlocksUsed: 900 }),
          ],
        }),
      );
    expect(decideScaling(busy(1), DEFAULT_AUTOSCALE_CONFIG)).toMatchObject({ kind: "up", role: "colocated" });
    expect(decideScaling(busy(0), DEFAULT_AUTOSCALE_CONFIG)).toMatchObject({
      kind: "hold",
      reason: expect.stringMatching(/cannot place another instance/),
    });
  });
});

describe("actionFor", () => {
  const instances = [instance("colocated", 0), instance("colocated", 1)];
  it.each([
    [
      "up adds one to the role",
      { kind: "up", role: "colocated", reason: "F 2 < 10" },
      { kind: "up", desired: { colocated: 3 } },
    ],
    [
      "down removes one and names the instance to drain",
      { kind: "down", role: "colocated", reason: "F 90 > 60", drainInstanceId: "uid-c1/0" },
      { kind: "down", desired: { colocated: 1 }, drain: instances[1] },
    ],
    [
      "down of an instance that does not report holds",
      { kind: "down", role: "colocated", reason: "F 90 > 60", drainInstanceId: "gone/0" },
      { kind: "hold", reason: expect.stringMatching(/does not report load/) },
    ],
    [
      "a role the plan lacks holds",
      { kind: "up", role: "decode", reason: "F 2 < 10" },
      { kind: "hold", reason: expect.stringMatching(/no decode pool/) },
    ],
  ] as const)("%s", (_name, decision, expected) => {
    expect(actionFor({ ...decision }, coloc(2), { colocated: 2 }, instances)).toMatchObject(expected);
  });

  it("does not scale low node-affinity plans", () => {
    expect(
      actionFor({ kind: "up", role: "decode", reason: "F 2 < 10" }, disagg(2, 2, "low"), { prefill: 2, decode: 2 }, []),
    ).toMatchObject({ kind: "hold", reason: expect.stringMatching(/low node-affinity/) });
  });
});
