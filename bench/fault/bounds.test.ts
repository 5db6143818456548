import { describe, expect, it } from "vitest";
import { wilsonLower95 } from "../fault.js";

describe("wilsonLower95", () => {
  it("needs about 300 clean runs before 0.99 can be claimed", () => {
    expect(wilsonLower95(300, 300)).toBeGreaterThan(0.99);
    expect(wilsonLower95(100, 100)).toBeLessThan(0.99);
    expect(wilsonLower95(60, 60)).toBeGreaterThan(0.95);
    expect(wilsonLower95(40, 40)).toBeLessThan(0.95);
  });

  it("stays below the observed proportion and is 0 with no successes or no runs", () => {
    expect(wilsonLower95(95, 100)).toBeLessThan(0.95);
    expect(wilsonLower95(95, 100)).toBeGreaterThan(0.89);
    expect(wilsonLower95(0, 10)).toBe(0);
    expect(wilsonLower95(0, 0)).toBe(0);
  });
});
