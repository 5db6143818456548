import { describe, expect, it } from "vitest";
import { median, robustSpread, signCusum } from "./stats.js";

describe("robust statistics", () => {
  it("median and scaled MAD ignore one outlier", () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const v = Float64Array.from([10, 11, 9, 10, 1000]);
    const s = robustSpread(v, 5, new Float64Array(5));
    expect(s.median).toBe(10);
    expect(s.sigma).toBeCloseTo(1.4826, 6);
  });
});

describe("signCusum", () => {
  it.each([
    { name: "nothing slow", hits: [], length: 10, expected: undefined },
    { name: "slow from index 6 to the end", hits: [6, 7, 8, 9], length: 10, expected: { onset: 6, excess: 4 } },
    {
      name: "an early blip does not move the onset",
      hits: [1, 6, 7, 8, 9],
      length: 10,
      expected: { onset: 6, excess: 4 },
    },
    {
      name: "a slow run with one normal sample inside",
      hits: [4, 5, 7, 8, 9],
      length: 10,
      expected: { onset: 4, excess: 4 },
    },
    { name: "a slowdown that ended long ago", hits: [0, 1, 2], length: 10, expected: { onset: 0, excess: -4 } },
  ])("$name", ({ hits, length, expected }) => {
    expect(signCusum(hits, length)).toEqual(expected);
  });
});
