import { describe, expect, it } from "vitest";
import { drainProgress } from "./drain.js";
import { instance } from "./fixtures.test-support.js";

const entry = { startedMs: 10_000, deadlineMs: 70_000 };
const draining = (running: number, queued: number, over: Parameters<typeof instance>[3] = {}) =>
  instance(
    "colocated",
    0,
    { draining: true, runningRequests: running, queuedRequests: queued },
    { reportedUnixMs: 11_000, ...over },
  );

describe("drainProgress", () => {
  it.each([
    ["empty, draining, after the drain began", draining(0, 0), true, 20_000, { kind: "empty" }],
    ["requests still running", draining(2, 1), true, 20_000, { kind: "wait", requestsLeft: 3 }],
    [
      "a migration still in progress",
      draining(0, 0, { migrating: "out" }),
      true,
      20_000,
      { kind: "wait", requestsLeft: 0 },
    ],
    [
      "an empty report from before the drain",
      draining(0, 0, { reportedUnixMs: 9_000 }),
      true,
      20_000,
      { kind: "wait", requestsLeft: undefined },
    ],
    [
      "empty but not yet draining (the command has not landed)",
      instance("colocated", 0, {}, { reportedUnixMs: 11_000 }),
      true,
      20_000,
      { kind: "wait", requestsLeft: 0 },
    ],
    [
      "past the deadline with requests left",
      draining(2, 1),
      true,
      70_000,
      { kind: "deadline", requestsLeft: 3, running: 2, queued: 1 },
    ],
    [
      "past the deadline without a report",
      undefined,
      true,
      80_000,
      { kind: "deadline", requestsLeft: undefined, running: undefined, queued: undefined },
    ],
    ["its pod is gone", draining(2, 0), false, 20_000, { kind: "gone" }],
  ] as const)("%s", (_name, live, podExists, nowMs, expected) => {
    expect(drainProgress(entry, live, podExists, nowMs)).toEqual(expected);
  });
});
