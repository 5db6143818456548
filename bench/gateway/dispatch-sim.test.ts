import { describe, expect, it } from "vitest";
import { prefillBatch } from "../../common/src/models/latency.js";
import {
  backlogThroughputPerSec,
  benchEngineConfig,
  percentile,
  simulateDispatch,
  type SimRequest,
  type SimSetup,
} from "./dispatch-sim.js";

const engine = benchEngineConfig();
const setup = (requests: SimRequest[], over: Partial<SimSetup> = {}): SimSetup => ({
  policy: "freeness",
  instances: 2,
  requests,
  engine,
  reportIntervalMs: 1_000,
  flushIntervalMs: 250,
  seed: 7,
  ...over,
});
const at = (arrivalMs: number, promptTokens = 512, outputTokens = 16): SimRequest => ({
  arrivalMs,
  promptTokens,
  outputTokens,
});

describe("simulateDispatch (the benchmark's discrete-event run of the gateway's Dispatcher and the agent's engines)", () => {
  it("a lone request's TTFT is exactly the modelled prefill step; its TPOT one decode step at batch 1", () => {
    const result = simulateDispatch(setup([at(0)]));
    expect(result.completed).toBe(1);
    expect(result.ttft.p50Ms).toBeCloseTo(engine.latency.forward(prefillBatch([512])).totalMs, 9);
    expect(result.tpot.p50Ms).toBeGreaterThan(0);
  });

  it("accounts for every request: completed, or refused by the instance when it exceeds the model's context", () => {
    const result = simulateDispatch(setup([at(0), at(5, 8_000, 500), at(10)]));
    expect(result).toMatchObject({ requests: 3, completed: 2, refusedByInstance: 1, rejectedOverloaded: 0 });
  });

  it.each(["freeness", "round-robin"] as const)(
    "%s spreads a burst that arrives between two reports (reservations)",
    (policy) => {
      const result = simulateDispatch(setup([at(0), at(0), at(0), at(0)], { policy }));
      expect(result.completedPerInstance).toEqual([2, 2]);
      expect(result.dispatchRuns.max).toBe(1);
    },
  );

  it("replays exactly from its seed", () => {
    const requests = Array.from({ length: 200 }, (_, i) => at(i * 7, 300 + ((i * 37) % 900), 20 + ((i * 11) % 80)));
    expect(simulateDispatch(setup(requests))).toEqual(simulateDispatch(setup(requests)));
  });
});

describe("helpers", () => {
  it("nearest-rank percentile", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([1, 2, 3, 4], 99)).toBe(4);
    expect(percentile([], 50)).toBeNaN();
  });

  it("backlog throughput: a backlog of equal requests completes at batch speed, faster than one at a time", () => {
    const one = simulateDispatch(setup([at(0)], { instances: 1 }));
    const backlog = backlogThroughputPerSec(
      engine,
      Array.from({ length: 64 }, () => at(0)),
    );
    expect(backlog).toBeGreaterThan(1000 / one.makespanMs);
  });
});
