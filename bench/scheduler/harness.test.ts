import { describe, expect, it } from "vitest";
import { seededRandom } from "../../common/src/random.js";
import { simulateDispatch, type SimRequest, type SimSetup } from "../gateway/dispatch-sim.js";
import { policySetup, schedEngineConfig } from "./policies.js";
import { arrivalTimes, LENGTH_CAP_TOKENS, withArrivals, zipfLengths, zipfWorkload } from "./workload.js";

const engine = schedEngineConfig();
const bounds = { initialInstances: 4, minInstances: 1, maxInstances: 4 };
const common = (requests: SimRequest[], instances = 2): Omit<SimSetup, "policy"> => ({
  instances,
  requests,
  engine,
  reportIntervalMs: 1_000,
  flushIntervalMs: 250,
  seed: 3,
});

/**
 * Round-robin puts every even request on instance-00: three 4,800-token prompts fill its 933 blocks, a fourth
 * waits behind them and their decodes preempt; the odd ones leave instance-01 nearly empty.
 */
const lopsided = (): SimRequest[] =>
  Array.from({ length: 8 }, (_, i) =>
    i % 2 === 0
      ? { arrivalMs: i, promptTokens: 4_800, outputTokens: 400 }
      : { arrivalMs: i, promptTokens: 16, outputTokens: 400 },
  );

describe("scheduler benchmark harness (dispatch-sim with the production migration and scaling policies)", () => {
  it("live migration relieves the full instance: requests move, none is lost, the waiting prompt starts sooner", () => {
    const without = simulateDispatch({ ...policySetup("round-robin", common(lopsided()), bounds) });
    const withMigration = simulateDispatch({
      ...policySetup("gpufleet", common(lopsided()), bounds),
      policy: "round-robin",
    });
    expect(without.migrations.committed).toBe(0);
    expect(withMigration.migrations.committed).toBeGreaterThanOrEqual(1);
    expect(withMigration.migrations.downtime.meanMs).toBeGreaterThan(0);
    for (const r of [without, withMigration])
      expect(r).toMatchObject({ completed: 8, requestsLost: 0, rejectedOverloaded: 0 });
    expect(withMigration.ttft.p99Ms).toBeLessThan(without.ttft.p99Ms);
    expect(withMigration.preemptionLoss!.totalMs).toBeLessThan(without.preemptionLoss!.totalMs);
    expect(withMigration.migrations.byReason).toEqual({ defragmentation: withMigration.migrations.planned });
  });

  it("preemption loss is measured where the engine preempted, and is zero where it did not", () => {
    const r = simulateDispatch(policySetup("round-robin", common(lopsided()), bounds));
    expect(r.preemptions).toBeGreaterThan(0);
    expect(r.preemptionLoss!.requestsPreempted).toBeGreaterThan(0);
    expect(r.preemptionLoss!.totalMs).toBeGreaterThan(0);
    const light = simulateDispatch(
      policySetup("least-load", common([{ arrivalMs: 0, promptTokens: 100, outputTokens: 50 }]), bounds),
    );
    expect(light.preemptionLoss).toEqual({ totalMs: 0, meanPerRequestMs: 0, requestsPreempted: 0 });
  });

  it("autoscaling scales a lightly loaded pool in, draining instances before deleting them: every request completes", () => {
    const requests = Array.from({ length: 200 }, (_, i) => ({
      arrivalMs: i * 400,
      promptTokens: 200,
      outputTokens: 100,
    }));
    const r = simulateDispatch(policySetup("gpufleet-autoscale", common(requests, 4), bounds));
    expect(r.scaling.downs).toBeGreaterThanOrEqual(1);
    expect(r.scaling.deleted).toBeGreaterThanOrEqual(1);
    expect(r).toMatchObject({ completed: 200, requestsLost: 0, rejectedOverloaded: 0, rejectedNoInstance: 0 });
    expect(r.instanceSeconds).toBeLessThan((4 * r.makespanMs) / 1000);
  });

  it("replays exactly from its seed, migrations and scaling included", () => {
    const requests = withArrivals(zipfWorkload(256, 300, 5), { kind: "gamma", cv: 4 }, 8, 5, 0.1);
    const setup = policySetup("gpufleet-autoscale", common(requests, 4), bounds);
    expect(simulateDispatch(setup)).toEqual(simulateDispatch(setup));
  });
});

describe("the artifact's workload generator", () => {
  it("Zipf lengths: scaled to the mean before the 6,144 cap, long-tailed, never above the cap", () => {
    const lengths = zipfLengths(256, 20_000, seededRandom(1));
    const mean = lengths.reduce((s, x) => s + x, 0) / lengths.length;
    expect(Math.max(...lengths)).toBeLessThanOrEqual(LENGTH_CAP_TOKENS);
    expect(mean).toBeLessThanOrEqual(256 + 1); // ceil adds under a token; the cap only lowers it
    expect(mean).toBeGreaterThan(200);
    const median = [...lengths].sort((a, b) => a - b)[lengths.length / 2]!;
    expect(median).toBeLessThan(mean / 2);
  });

  it("an unknown Zipf mean is an error naming the known ones", () => {
    expect(() => zipfLengths(100, 10, seededRandom(1))).toThrow(/128, 256, 512/);
  });

  it.each([
    { name: "Poisson", arrival: { kind: "poisson" } as const, cv: 1 },
    { name: "Gamma CV 4", arrival: { kind: "gamma", cv: 4 } as const, cv: 4 },
  ])("$name arrivals have the rate's mean gap and the CV asked for", ({ arrival, cv }) => {
    const times = arrivalTimes(arrival, 10, 100_000, seededRandom(2));
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    const mean = gaps.reduce((s, x) => s + x, 0) / gaps.length;
    const sd = Math.sqrt(gaps.reduce((s, x) => s + (x - mean) ** 2, 0) / gaps.length);
    expect(mean).toBeGreaterThan(100 * 0.9);
    expect(mean).toBeLessThan(100 * 1.1);
    expect(sd / mean).toBeGreaterThan(cv * 0.85);
    expect(sd / mean).toBeLessThan(cv * 1.15);
  });
});
