import { describe, expect, it } from "vitest";
import { idleLoad, type InstanceLoad } from "./freeness.js";
import {
  DEFAULT_AUTOSCALE_CONFIG,
  decideScaling,
  fewestRunning,
  freenessWithout,
  InvalidScalingInputError,
  poolFreeness,
  type ScalingInput,
  type ScalingInstance,
  type ScalingPool,
} from "./autoscale-policy.js";

// M = 100 blocks per instance.
const si = (
  id: string,
  used: number,
  running: number,
  over: Partial<InstanceLoad> & { waitingBlocks?: number } = {},
): ScalingInstance => {
  const { waitingBlocks = 0, ...load } = over;
  return {
    id,
    load: { ...idleLoad(100), kvBlocksUsed: used, runningRequests: running, ...load },
    waitingDemandBlocks: waitingBlocks,
  };
};
const pool = (instances: ScalingInstance[], over: Partial<ScalingPool> = {}): ScalingPool => ({
  role: "colocated",
  instances,
  startingInstances: 0,
  minInstances: 1,
  maxInstances: 16,
  capacityInstances: 8,
  ...over,
});
const input = (pools: ScalingPool[], over: Partial<ScalingInput> = {}): ScalingInput => ({
  nowMs: 100_000,
  pools,
  ...over,
});
const times = (n: number, make: (i: number) => ScalingInstance) => Array.from({ length: n }, (_, i) => make(i));

/** Four busy instances: 40 free blocks over 12 requests, F = 3.33 (< 10). */
const busyPool = () => pool(times(4, (i) => si(`i${i}`, 90, 3)));
/** Four half-full instances: F = 200 / 8 = 25; without one, (150 − 50) / 8 = 12.5 (< 60). */
const steadyPool = () => pool(times(4, (i) => si(`i${i}`, 50, 2)));
/** Eight instances, one idle, seven with one small request: F without the idle one = 665 / 7 = 95 (> 60). */
const idlePool = () => pool(times(8, (i) => (i === 5 ? si("i5", 0, 0) : si(`i${i}`, 5, 1))));

describe("cluster freeness (the artifact's avg_load)", () => {
  it("aggregates free blocks less waiting demand over running plus waiting requests", () => {
    expect(poolFreeness([si("a", 90, 3), si("b", 50, 1, { queuedRequests: 1, waitingBlocks: 20 })])).toBe(
      (10 + 50 - 20) / 5,
    );
  });

  it("is +∞ for a pool with nothing running or waiting, and ignores draining instances", () => {
    expect(poolFreeness([si("a", 0, 0)])).toBe(Infinity);
    expect(poolFreeness([si("a", 50, 2), si("b", 99, 9, { draining: true })])).toBe(25);
  });

  it("as if one instance were gone: its blocks leave, its requests and used blocks stay", () => {
    const pool = [si("a", 50, 2), si("b", 20, 1), si("c", 10, 1)];
    expect(freenessWithout(pool, pool[2]!)).toBe((50 + 80 - 10) / 4);
  });

  it("the instance to drain has the fewest running requests, then the fewest used blocks", () => {
    expect(fewestRunning([si("a", 10, 2), si("b", 30, 1), si("c", 20, 1)])?.id).toBe("c");
  });
});

describe("decideScaling: the paper's thresholds", () => {
  it("scales up when the pool's F is below 10", () => {
    expect(decideScaling(input([busyPool()]))).toMatchObject({
      kind: "up",
      role: "colocated",
      reason: "cluster freeness 3.33 < 10",
    });
  });

  it("holds when F is at least 10 and F without one instance is at most 60", () => {
    expect(decideScaling(input([steadyPool()]))).toMatchObject({ kind: "hold" });
  });

  it("scales down when F as if one instance were gone exceeds 60, draining the one with fewest running requests", () => {
    expect(decideScaling(input([idlePool()]))).toEqual({
      kind: "down",
      role: "colocated",
      reason: "freeness without i5 95 > 60",
      drainInstanceId: "i5",
    });
  });

  it("thresholds are configurable", () => {
    expect(decideScaling(input([steadyPool()]), { ...DEFAULT_AUTOSCALE_CONFIG, scaleUpFreeness: 30 }).kind).toBe("up");
    expect(decideScaling(input([steadyPool()]), { ...DEFAULT_AUTOSCALE_CONFIG, scaleDownFreeness: 12 }).kind).toBe(
      "down",
    );
  });
});

describe("decideScaling: bounds and pacing", () => {
  it("cooldown: no scale-down within cooldownMs of the last decision", () => {
    const d = decideScaling(input([idlePool()], { lastScaledAtMs: 95_000 }));
    expect(d).toMatchObject({ kind: "hold" });
    expect(d.reason).toMatch(/cooldown/);
    expect(decideScaling(input([idlePool()], { lastScaledAtMs: 90_000 })).kind).toBe("down");
  });

  it("freeness-driven scale-up is paced by counting starting instances as empty, not by the cooldown", () => {
    // Four busy instances (40 free blocks, 12 requests): one empty instance more gives F = 140/12 = 11.7 >= 10.
    expect(decideScaling(input([busyPool()], { lastScaledAtMs: 99_000 })).kind).toBe("up");
    expect(decideScaling(input([{ ...busyPool(), startingInstances: 1 }], { lastScaledAtMs: 99_000 })).kind).toBe(
      "hold",
    );
    expect(poolFreeness(busyPool().instances, 1)).toBeCloseTo(140 / 12, 9);
  });

  it("never above maxInstances (starting instances count)", () => {
    expect(decideScaling(input([{ ...busyPool(), maxInstances: 4 }])).reason).toMatch(/at maxInstances 4/);
    const packed = pool(
      times(4, (i) => si(`i${i}`, 99, 10)),
      { maxInstances: 5, startingInstances: 1 },
    ); // F with the starting one: 104/40
    expect(decideScaling(input([packed])).reason).toMatch(/at maxInstances 5/);
  });

  it("never asks for an instance the cluster cannot place", () => {
    const d = decideScaling(input([{ ...busyPool(), capacityInstances: 0 }]));
    expect(d).toMatchObject({ kind: "hold" });
    expect(d.reason).toMatch(/cannot place/);
  });

  it("never below minInstances", () => {
    expect(decideScaling(input([{ ...idlePool(), minInstances: 8 }]))).toMatchObject({ kind: "hold" });
  });

  it("one scale-in at a time: no scale-down while an instance drains or starts", () => {
    const draining = pool([...idlePool().instances, si("old", 5, 1, { draining: true })]);
    expect(decideScaling(input([draining])).reason).toMatch(/already draining/);
    expect(decideScaling(input([{ ...idlePool(), startingInstances: 1 }])).reason).toMatch(/still starting/);
  });

  it("restores minInstances at once, cooldown or not; drains down to maxInstances after a spec change", () => {
    expect(decideScaling(input([{ ...steadyPool(), minInstances: 6 }], { lastScaledAtMs: 99_999 }))).toMatchObject({
      kind: "up",
    });
    expect(decideScaling(input([{ ...steadyPool(), maxInstances: 3 }], { lastScaledAtMs: 99_999 }))).toMatchObject({
      kind: "down",
      drainInstanceId: "i0",
    });
  });
});

describe("decideScaling: SLO attainment", () => {
  const slo = (ttft: number, tpot: number, samples = 50) => ({ ttft, tpot, samples, target: 0.9 });

  it("scales up on a missed SLO even when freeness is high, but not within the cooldown (attainment lags)", () => {
    expect(decideScaling(input([{ ...steadyPool(), slo: slo(0.8, 0.95) }]))).toMatchObject({
      kind: "up",
      reason: "TTFT attainment 80% below the SLO's 90%",
    });
    expect(decideScaling(input([{ ...steadyPool(), slo: slo(0.8, 0.95) }], { lastScaledAtMs: 95_000 })).kind).toBe(
      "hold",
    );
  });

  it("a missed SLO turns an idle pool's scale-down into a scale-up", () => {
    expect(decideScaling(input([{ ...idlePool(), slo: slo(0.99, 0.5) }]))).toMatchObject({
      kind: "up",
      reason: "TPOT attainment 50% below the SLO's 90%",
    });
  });

  it("with fewer samples than minSloSamples the SLO is ignored both ways", () => {
    expect(decideScaling(input([{ ...idlePool(), slo: slo(0.5, 0.5, 3) }])).kind).toBe("down");
    expect(decideScaling(input([{ ...steadyPool(), slo: slo(0.5, 0.5, 3) }])).kind).toBe("hold");
  });

  it("a met SLO does not block a scale-down", () => {
    expect(decideScaling(input([{ ...idlePool(), slo: slo(0.99, 0.99) }])).kind).toBe("down");
  });
});

describe("decideScaling: disaggregated pools keep the plan's P:D ratio within a factor of 2", () => {
  const prefill = (n: number, over: Partial<ScalingPool> = {}) =>
    pool(
      times(n, (i) => si(`p${i}`, 90, 3)),
      { role: "prefill", ...over },
    );
  const decode = (n: number, make = (i: number) => si(`d${i}`, 50, 2), over: Partial<ScalingPool> = {}) =>
    pool(times(n, make), { role: "decode", ...over });
  const plan = { prefill: 1, decode: 2 }; // r = 0.5: P:D may range over [0.25, 1]

  it("scales the pressured role: prefill 2 -> 3 beside 4 decode (0.75, inside the band)", () => {
    expect(decideScaling(input([prefill(2), decode(4)], { planReplicas: plan }))).toMatchObject({
      kind: "up",
      role: "prefill",
    });
  });

  it("holds a role the bound forbids: prefill 4 -> 5 beside 4 decode (1.25 > 1)", () => {
    const d = decideScaling(input([prefill(4), decode(4)], { planReplicas: plan }));
    expect(d).toMatchObject({ kind: "hold", role: "prefill" });
    expect(d.reason).toMatch(/P:D would be 5:4, outside \[0.25, 1\]/);
  });

  it("a change toward the plan's ratio is allowed from outside the band (1:8 -> 2:8)", () => {
    expect(decideScaling(input([prefill(1), decode(8)], { planReplicas: plan }))).toMatchObject({
      kind: "up",
      role: "prefill",
    });
  });

  it("a scale-down that would leave the band is held; the same pool scales down when the band allows", () => {
    const idleDecode = (n: number) => decode(n, (i) => si(`d${i}`, i === 0 ? 0 : 5, i === 0 ? 0 : 1));
    const idlePrefill = (n: number) =>
      pool(
        times(n, (i) => si(`p${i}`, 5, 1)),
        { role: "prefill" },
      );
    expect(decideScaling(input([idlePrefill(2), idleDecode(8)], { planReplicas: plan }))).toMatchObject({
      kind: "down",
      role: "decode",
      drainInstanceId: "d0",
    });
    const held = decideScaling(input([idlePrefill(2), idleDecode(2)], { planReplicas: plan }));
    expect(held).toMatchObject({ kind: "hold", role: "decode" });
    expect(held.reason).toMatch(/P:D would be 2:1/);
  });
});

describe("decideScaling: input errors", () => {
  it("names what is wrong", () => {
    expect(() => decideScaling(input([busyPool(), busyPool()]))).toThrow(InvalidScalingInputError);
    expect(() => decideScaling(input([{ ...busyPool(), minInstances: 5, maxInstances: 2 }]))).toThrow(
      /minInstances <= maxInstances/,
    );
    expect(() => decideScaling(input([busyPool()], { planReplicas: { prefill: 0, decode: 1 } }))).toThrow(
      /planReplicas/,
    );
    expect(() => decideScaling(input([busyPool()]), { ...DEFAULT_AUTOSCALE_CONFIG, cooldownMs: Number.NaN })).toThrow(
      /cooldownMs/,
    );
  });
});
