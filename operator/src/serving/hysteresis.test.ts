import { describe, expect, it } from "vitest";
import { decidePlan, type HysteresisInput } from "./hysteresis.js";
import type { StatusPlan } from "./pools.js";

const pool = (tp: number, replicas: number) => ({ tp, pp: 1, replicas, gpus: tp * replicas });
const current: StatusPlan = {
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  affinity: "high",
  prefill: pool(2, 2),
  decode: pool(1, 4),
  totalGpus: 8,
  goodputPerGpu: 2,
};
const reshaped = (over: Partial<StatusPlan>): StatusPlan => ({ ...current, decode: pool(1, 3), totalGpus: 7, ...over });

const base: HysteresisInput = {
  current,
  specChanged: false,
  candidate: current,
  currentFits: true,
  arrivalRatePerSec: 10,
  bandPercent: 10,
};

describe("decidePlan", () => {
  it.each<[string, Partial<HysteresisInput>, { plan?: StatusPlan; changed: boolean; reason: string }]>([
    ["first plan", { current: undefined, candidate: current }, { plan: current, changed: true, reason: "Initial" }],
    [
      "no plan and none found",
      { current: undefined, candidate: undefined },
      { plan: undefined, changed: true, reason: "Initial" },
    ],
    [
      "the same shape with new predictions keeps the status stable",
      { candidate: { ...current, goodputPerGpu: 2.5 } },
      { plan: current, changed: false, reason: "Same" },
    ],
    [
      "a spec change re-plans even within the band",
      { specChanged: true, candidate: reshaped({ goodputPerGpu: 2.01, totalGpus: 8 }) },
      { plan: reshaped({ goodputPerGpu: 2.01, totalGpus: 8 }), changed: true, reason: "SpecChanged" },
    ],
    [
      "a spec change with no plan found drops the plan",
      { specChanged: true, candidate: undefined },
      { plan: undefined, changed: true, reason: "SpecChanged" },
    ],
    [
      "9% more goodput per GPU is within the band",
      { candidate: reshaped({ goodputPerGpu: 2.18, totalGpus: 8 }) },
      { plan: current, changed: false, reason: "WithinBand" },
    ],
    [
      "11% more goodput per GPU is better",
      { candidate: reshaped({ goodputPerGpu: 2.22, totalGpus: 8 }) },
      { plan: reshaped({ goodputPerGpu: 2.22, totalGpus: 8 }), changed: true, reason: "Better" },
    ],
    [
      "one GPU fewer of eight (12.5%) is better",
      { candidate: reshaped({ totalGpus: 7 }) },
      { plan: reshaped({ totalGpus: 7 }), changed: true, reason: "Better" },
    ],
    [
      "worse candidate while the current fits",
      { candidate: reshaped({ goodputPerGpu: 1.5, totalGpus: 9 }) },
      { plan: current, changed: false, reason: "WithinBand" },
    ],
    [
      "the current no longer fits: take the candidate even if worse",
      { currentFits: false, candidate: reshaped({ goodputPerGpu: 1.5, totalGpus: 9 }) },
      { plan: reshaped({ goodputPerGpu: 1.5, totalGpus: 9 }), changed: true, reason: "CurrentDoesNotFit" },
    ],
    [
      "the current carries less than the rate (2 × 8 < 20)",
      { arrivalRatePerSec: 20, candidate: reshaped({ goodputPerGpu: 2.05, totalGpus: 10 }) },
      { plan: reshaped({ goodputPerGpu: 2.05, totalGpus: 10 }), changed: true, reason: "CurrentMissesTarget" },
    ],
    [
      "the planner failed: keep what runs, even if it does not fit",
      { currentFits: false, candidate: undefined },
      { plan: current, changed: false, reason: "CandidateFailed" },
    ],
  ])("%s", (_name, over, expected) => {
    expect(decidePlan({ ...base, ...over })).toEqual(expected);
  });

  it("with a zero band follows every strictly better candidate", () => {
    expect(
      decidePlan({ ...base, bandPercent: 0, candidate: reshaped({ goodputPerGpu: 2.001, totalGpus: 8 }) }).reason,
    ).toBe("Better");
  });
});
