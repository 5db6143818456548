import { describe, expect, it } from "vitest";
import {
  type PlanKind,
  RATE_FRACTIONS,
  findings,
  firstRateBelow,
  rateGrid,
  ratiosVsColocated,
} from "./serving-rate.js";

describe("rateGrid", () => {
  it("scales the fractions by the top rate, from light load to past it", () => {
    const grid = rateGrid(20);
    expect(grid).toHaveLength(RATE_FRACTIONS.length);
    expect(grid[0]).toBe(2);
    expect(grid.at(-1)).toBe(40);
    expect(grid).toContain(20);
    expect([...grid].sort((a, b) => a - b)).toEqual(grid);
  });
  it("rounds to 4 significant digits", () => {
    expect(rateGrid(1 / 3, [1, 0.1])).toEqual([0.3333, 0.03333]);
  });
  it("refuses a top rate that is not a positive number", () => {
    expect(() => rateGrid(0)).toThrow(/positive top rate per GPU, got 0/);
    expect(() => rateGrid(Number.NaN)).toThrow(/got NaN/);
  });
});

describe("ratiosVsColocated", () => {
  it("divides every kind by the better colocated kind", () => {
    const { colocatedRatePerGpu, ratio } = ratiosVsColocated({ disaggregated: 3, vllm: 2, chunked: 2.5 });
    expect(colocatedRatePerGpu).toBe(2.5);
    expect(ratio).toEqual({ disaggregated: 1.2, vllm: 0.8, chunked: 1 });
  });
  it("gives null where a kind is missing or no colocated plan met the SLO", () => {
    expect(ratiosVsColocated({ disaggregated: 3, vllm: 2 }).ratio).toEqual({
      disaggregated: 1.5,
      vllm: 1,
      chunked: null,
    });
    expect(ratiosVsColocated({ disaggregated: 3, vllm: 0, chunked: 0 }).ratio.disaggregated).toBeNull();
  });
});

describe("firstRateBelow", () => {
  const curve = [
    { ratePerGpu: 3, attainmentPercent: 40 },
    { ratePerGpu: 1, attainmentPercent: 99 },
    { ratePerGpu: 2, attainmentPercent: 85 },
  ];
  it("finds the lowest swept rate under the percent, whatever the row order", () => {
    expect(firstRateBelow(curve, 90)).toBe(2);
    expect(firstRateBelow(curve, 50)).toBe(3);
  });
  it("is null when every rate meets it", () => {
    expect(firstRateBelow(curve, 30)).toBeNull();
  });
});

describe("findings", () => {
  const plan = (planKind: PlanKind, sustainedRatePerGpu: number, ratioVsColocated: number) => ({
    planKind,
    shape: "s",
    unitGpus: 8,
    sustainedRatePerGpu,
    plannerGoodputPerGpu: sustainedRatePerGpu,
    capacityRatePerGpu: 10,
    ratioVsColocated,
  });
  const scenario = {
    scenario: "S",
    why: "",
    model: "OPT-13B",
    gpu: "A100-80GB",
    gpus: 8,
    slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
    colocatedRatePerGpu: 2,
    plans: [plan("disaggregated", 3, 1.5), plan("vllm", 2, 1)],
  };
  const row = (planKind: PlanKind, ratePerGpu: number, attainmentPercent: number) => ({
    scenario: "S",
    planKind,
    shape: "s",
    ratePerGpu,
    attainmentPercent,
    aboveCapacityBound: false,
  });
  it("states the ratio at the target and where each swept curve falls", () => {
    const [line] = findings(
      [scenario],
      [row("disaggregated", 1, 99), row("disaggregated", 4, 60), row("vllm", 1, 95), row("vllm", 4, 20)],
    );
    expect(line).toBe(
      "- S: disaggregated sustains 3.000 req/s/GPU at 90% vs colocated 2.000 (×1.50); highest: disaggregated. " +
        "Swept: disaggregated under 90% from 4, under 50% from none swept; vllm under 90% from 4, under 50% from 4.",
    );
  });
  it("says when there was no plan", () => {
    expect(findings([{ ...scenario, plans: [], note: "no plan met the SLO" }], [])).toEqual([
      "- S: no plan (no plan met the SLO).",
    ]);
  });
});
