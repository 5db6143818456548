import { describe, expect, it } from "vitest";
import { MigrationEventDigest } from "./event-digest.js";

const ok = (n: number, downtimeMs?: number) => ({
  requestId: `r${n}`,
  source: "a",
  destination: "b",
  ok: true,
  downtimeMs,
});
const failed = (n: number, reason: string) => ({
  requestId: `r${n}`,
  source: "a",
  destination: "b",
  ok: false,
  reason,
});

describe("MigrationEventDigest", () => {
  it("gives the first outcomes of a window an Event each, naming request, source, destination and downtime or reason", () => {
    const digest = new MigrationEventDigest({ windowMs: 10_000, burst: 2 });
    expect(digest.add("ns/sd", ok(1, 12.34), 0)).toEqual({
      type: "Normal",
      reason: "MigrationCompleted",
      message: "migrated request r1 from a to b, downtime 12.3 ms",
    });
    expect(digest.add("ns/sd", failed(2, "destination out of memory"), 1)).toEqual({
      type: "Warning",
      reason: "MigrationFailed",
      message: "migrating request r2 from a to b failed: destination out of memory; the request stays on its source",
    });
    expect(digest.add("ns/sd", ok(3), 2)).toBeUndefined();
  });

  it("sums the rest of a window into one summary Event when the window closes, per deployment", () => {
    const digest = new MigrationEventDigest({ windowMs: 10_000, burst: 1 });
    digest.add("ns/a", ok(0), 0);
    for (let i = 1; i <= 1000; i++)
      digest.add("ns/a", i % 100 === 0 ? failed(i, i % 200 === 0 ? "source finished" : "timeout") : ok(i, i % 10), i);
    digest.add("ns/b", ok(1), 5_000);
    expect(digest.flush(9_999)).toEqual([]);
    const flushed = digest.flush(10_000);
    expect(flushed).toHaveLength(1);
    expect(flushed[0]).toEqual({
      key: "ns/a",
      event: {
        type: "Warning",
        reason: "MigrationsSummarized",
        message:
          "990 more migrations completed (downtime mean 4.5 ms, max 9 ms), 10 more failed (5× timeout; 5× source finished) in the 10 s after the first 1 migration events",
      },
    });
    // ns/b's window closes later and had nothing beyond its burst: no summary.
    expect(digest.flush(20_000)).toEqual([]);
    // A new window starts with a fresh burst.
    expect(digest.add("ns/a", ok(5), 20_001)?.reason).toBe("MigrationCompleted");
  });
});
