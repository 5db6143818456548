import { describe, expect, it } from "vitest";
import { systemClock } from "./clock.js";
import { settleWithin } from "./deadline.js";
import type { Logger } from "./logger.js";

function recordingLogger() {
  const warnings: unknown[] = [];
  const logger = { warn: (fields: unknown) => warnings.push(fields) } as unknown as Logger;
  return { logger, warnings };
}

describe("settleWithin", () => {
  it("resolves false after the deadline for a step that never settles, logging which step", async () => {
    const { logger, warnings } = recordingLogger();
    await expect(settleWithin(new Promise(() => {}), 30, "controller trainingjob", systemClock, logger)).resolves.toBe(
      false,
    );
    expect(warnings).toEqual([{ step: "controller trainingjob", timeoutMs: 30 }]);
  });

  it("resolves true for a step that finishes in time, and swallows (logs) a failing step", async () => {
    const { logger, warnings } = recordingLogger();
    await expect(settleWithin(Promise.resolve(), 1_000, "a", systemClock, logger)).resolves.toBe(true);
    expect(warnings).toEqual([]);
    await expect(settleWithin(Promise.reject(new Error("boom")), 1_000, "b", systemClock, logger)).resolves.toBe(true);
    expect(warnings).toHaveLength(1);
  });
});
