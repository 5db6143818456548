import { describe, expect, it } from "vitest";
import { backoffDelayMs } from "./backoff.js";

const policy = { baseMs: 100, maxMs: 1000 };

describe("backoffDelayMs", () => {
  it.each([
    { retry: 0, random: 0.5, expected: 50 },
    { retry: 1, random: 0.5, expected: 100 },
    { retry: 2, random: 0.999, expected: 399 },
    { retry: 3, random: 1 - 1e-9, expected: 799 },
    { retry: 4, random: 0.5, expected: 500 }, // capped at maxMs
    { retry: 30, random: 0.5, expected: 500 },
    { retry: 2, random: 0, expected: 0 }, // full jitter reaches down to no wait
  ])("retry $retry with random $random waits $expected ms", ({ retry, random, expected }) => {
    expect(backoffDelayMs(retry, policy, () => random)).toBe(expected);
  });

  it("spreads retries of the same number over the whole window", () => {
    let seed = 1;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const delays = Array.from({ length: 1000 }, () => backoffDelayMs(3, policy, random));
    expect(Math.min(...delays)).toBeLessThan(80);
    expect(Math.max(...delays)).toBeGreaterThan(720);
    expect(Math.max(...delays)).toBeLessThan(800);
  });
});
