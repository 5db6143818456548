import { describe, expect, it } from "vitest";
import { binomialAtLeast, median, robustSpread, signCusum } from "./stats.js";

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

describe("binomialAtLeast", () => {
  it("matches exact sums", () => {
    expect(binomialAtLeast(4, 0.5, 2)).toBeCloseTo(11 / 16, 12);
    expect(binomialAtLeast(10, 0.1, 0)).toBe(1);
    expect(binomialAtLeast(10, 0.1, 11)).toBe(0);
    expect(binomialAtLeast(10, 0, 1)).toBe(0);
    // 128 trials at 1e-4: four or more is C(128, 4) p^4 (1-p)^124 to within 0.1 % (the next term is ~3e-3 of it).
    const leading = 10_668_000 * 1e-16 * Math.pow(1 - 1e-4, 124);
    expect(binomialAtLeast(128, 1e-4, 4) / leading).toBeCloseTo(1, 2);
  });
});
