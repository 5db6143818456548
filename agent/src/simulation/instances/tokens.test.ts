import { describe, expect, it } from "vitest";
import { PLACEHOLDER_WORDS, placeholderText, placeholderToken } from "./tokens.js";

describe("placeholder tokens", () => {
  it("token i is word i mod 32 and a space", () => {
    expect(PLACEHOLDER_WORDS).toHaveLength(32);
    expect([0, 1, 2, 31, 32, 33].map(placeholderToken)).toEqual(["the ", "quick ", "brown ", "fun ", "the ", "quick "]);
  });

  it("the prefill's first token and the decode's tokens 2.. join into the colocated text", () => {
    expect(placeholderText(0, 1) + placeholderText(1, 40)).toBe(placeholderText(0, 40));
    expect(placeholderText(0, 5)).toBe("the quick brown fox jumps ");
    expect(placeholderText(3, 3)).toBe("");
  });

  it("refuses a negative or fractional index", () => {
    expect(() => placeholderToken(-1)).toThrow(RangeError);
    expect(() => placeholderToken(1.5)).toThrow(RangeError);
  });
});
