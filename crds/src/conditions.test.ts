import { describe, expect, it } from "vitest";
import { setCondition, type Condition } from "./conditions.js";

const t0 = new Date("2026-01-01T00:00:00.000Z");
const t1 = new Date("2026-01-01T00:05:00.000Z");

describe("setCondition", () => {
  const planned = { type: "Planned", status: "True", reason: "PlanReady", message: "ok" } as const;

  it("adds a condition with the generation and time", () => {
    expect(setCondition([], planned, 3, t0)).toEqual([
      { ...planned, observedGeneration: 3, lastTransitionTime: "2026-01-01T00:00:00Z" },
    ]);
  });

  it("keeps lastTransitionTime when the status does not flip, even if reason and message change", () => {
    const first = setCondition(undefined, planned, 1, t0);
    const second = setCondition(first, { ...planned, reason: "PlanChanged", message: "new plan" }, 2, t1);
    expect(second[0]).toMatchObject({
      reason: "PlanChanged",
      observedGeneration: 2,
      lastTransitionTime: "2026-01-01T00:00:00Z",
    });
  });

  it("moves lastTransitionTime on a flip", () => {
    const first = setCondition(undefined, planned, 1, t0);
    const flipped = setCondition(first, { ...planned, status: "False", reason: "InsufficientCapacity" }, 1, t1);
    expect(flipped[0]?.lastTransitionTime).toBe("2026-01-01T00:05:00Z");
  });

  it("is idempotent and keeps a stable order", () => {
    let conditions: Condition[] = [];
    for (const type of ["Progressing", "Available", "Planned"])
      conditions = setCondition(conditions, { ...planned, type }, 1, t0);
    expect(conditions.map((c) => c.type)).toEqual(["Available", "Planned", "Progressing"]);
    expect(setCondition(conditions, { ...planned, type: "Available" }, 1, t1)).toEqual(conditions);
  });
});
