import { describe, expect, it } from "vitest";
import { freeness, idleLoad } from "./freeness.js";
import { ReservationLedger, withDemand, withDemands } from "./reservations.js";

const normal = (promptTokens: number) => ({ promptTokens, highPriority: false });

describe("withDemand", () => {
  it("admits a request whose blocks are free: it runs and holds its prompt's blocks", () => {
    const next = withDemand(idleLoad(100, 16), normal(160));
    expect(next).toMatchObject({
      kvBlocksUsed: 10,
      runningRequests: 1,
      queuedRequests: 0,
      outstandingPromptTokens: 160,
    });
  });

  it("counts a reservation in full on an instance that reports a queue: its blocks, one more in B, one more waiting", () => {
    // The old head-of-line treatment left F at (100 - 40 - 10) / 4 here: the reservation changed nothing.
    const queued = {
      ...idleLoad(100, 16),
      kvBlocksUsed: 40,
      runningRequests: 4,
      queuedRequests: 1,
      headOfLineDemandBlocks: 10,
    };
    const next = withDemand(queued, normal(160));
    expect(next).toMatchObject({
      kvBlocksUsed: 50,
      runningRequests: 5,
      queuedRequests: 2,
      headOfLineDemandBlocks: 10,
      outstandingPromptTokens: 160,
    });
    expect(freeness(next)).toBe((100 - 50 - 10) / 5);
    expect(freeness(next)).toBeLessThan(freeness(queued));
  });

  it("counts one that does not fit as waiting too, and its blocks in full", () => {
    const full = { ...idleLoad(100, 16), kvBlocksUsed: 95, runningRequests: 5 };
    const next = withDemands(full, [normal(160), normal(1600)]);
    expect(next).toMatchObject({ queuedRequests: 2, kvBlocksUsed: 95 + 10 + 100, runningRequests: 7 });
    expect(freeness(next)).toBe((100 - 205) / 7);
  });

  it("counts a high-priority request's headroom", () => {
    expect(withDemand(idleLoad(100), { promptTokens: 16, highPriority: true }).highPriorityRunning).toBe(1);
  });
});

describe("ReservationLedger", () => {
  it("keeps reservations until a report generated after them supersedes them", () => {
    const ledger = new ReservationLedger(10_000);
    ledger.reserve("r1", "a", normal(10), 1_000);
    ledger.reserve("r2", "a", normal(20), 2_000);
    ledger.reserve("r3", "b", normal(30), 1_000);
    ledger.supersede("a", 1_500);
    expect(ledger.pending("a")).toEqual([normal(20)]);
    expect(ledger.pending("b")).toEqual([normal(30)]);
  });

  it("releases on completion and expires when no report comes", () => {
    const ledger = new ReservationLedger(5_000);
    ledger.reserve("r1", "a", normal(10), 1_000);
    ledger.reserve("r2", "a", normal(10), 4_000);
    ledger.release("r2");
    expect(ledger.size).toBe(1);
    ledger.expire(6_001);
    expect(ledger.size).toBe(0);
  });
});
