import { describe, expect, it } from "vitest";
import { validateCheckpoint } from "./worker-service.js";
import { InvalidArgumentError } from "./status.js";

describe("ReportCheckpoint validation", () => {
  it("accepts a durable checkpoint", () => {
    expect(validateCheckpoint({ step: 1200, unixMs: 1_700_000_000_000, path: "/ckpt/1200" })).toEqual({
      step: 1200,
      unixMs: 1_700_000_000_000,
      path: "/ckpt/1200",
    });
  });

  it.each([
    ["a negative step", { step: -1, unixMs: 1, path: "/c" }, /step must be a non-negative integer/],
    ["a fractional step", { step: 1.5, unixMs: 1, path: "/c" }, /step must be a non-negative integer/],
    ["no time", { step: 1, unixMs: 0, path: "/c" }, /unix_ms must be a positive integer/],
    ["no path", { step: 1, unixMs: 1, path: "  " }, /path must name where/],
  ])("rejects %s", (_name, req, message) => {
    expect(() => validateCheckpoint(req)).toThrow(InvalidArgumentError);
    expect(() => validateCheckpoint(req)).toThrow(message);
  });
});
