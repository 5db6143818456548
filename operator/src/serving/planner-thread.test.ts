import { afterAll, describe, expect, it } from "vitest";
import { MODEL_SHAPES } from "../../../common/src/models/model-shapes.js";
import { planServing, type ServingPlanInput } from "./distserve/planner.js";
import { PlannerThread } from "./planner-thread.js";

const input: ServingPlanInput = {
  model: MODEL_SHAPES["OPT-13B"],
  slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
  workload: { arrivalRatePerSec: 4, lengths: "code-completion" },
  mode: "auto",
  options: { requestsPerInstance: 100 },
  nodes: Array.from({ length: 2 }, (_, i) => ({
    nodeName: `n${i}`,
    gpuModel: "A100-80GB",
    gpuCount: 8,
    gpusFree: 8,
    nicType: "infiniband" as const,
    nicBandwidthGbps: 200,
    nicCount: 8,
  })),
};

const planner = new PlannerThread();
afterAll(() => planner.close());

// Plans are real simulations and the worker starts by compiling TypeScript: give them room on a busy machine.
describe("PlannerThread", { timeout: 60_000 }, () => {
  it("returns what planServing returns on this thread", async () => {
    expect(await planner.plan(input)).toEqual(planServing(input));
  });

  it("keeps the event loop turning while it plans", async () => {
    let ticks = 0;
    const timer = setInterval(() => (ticks += 1), 5);
    const started = performance.now();
    await planner.plan({ ...input, workload: { arrivalRatePerSec: 5, lengths: "summarization" } });
    const elapsedMs = performance.now() - started;
    clearInterval(timer);
    // On this thread a plan of this size blocks for its whole duration, so no tick could fire; here they do.
    expect(elapsedMs).toBeGreaterThan(50);
    expect(ticks).toBeGreaterThan(2);
  });

  it("reports invalid input the way planServing does, as a result rather than a crash", async () => {
    const result = await planner.plan({ ...input, slo: { ...input.slo, ttftMs: -1 } });
    expect(result).toMatchObject({ ok: false, reason: "InvalidInput" });
  });
});
