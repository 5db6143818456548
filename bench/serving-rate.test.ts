import { describe, expect, it } from "vitest";
import { RATE_FRACTIONS, rateGrid, ratiosVsColocated } from "./serving-rate.js";

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
