import { describe, expect, it } from "vitest";
import { idleLoad, type InstanceLoad } from "../../../common/src/scheduler/freeness.js";
import type { InstanceReport } from "../instances/source.js";
import { InstanceView } from "../instances/view.js";
import { GatewayMetrics } from "../metrics.js";
import { GatewayError } from "../openai/errors.js";
import { Dispatcher, type DispatcherConfig } from "./dispatcher.js";

const viewConfig = { instanceStaleMs: 5_000, modelForgetMs: 60_000, suspectMs: 5_000, reservationMaxAgeMs: 10_000 };
const report = (id: string, at: number, load: Partial<InstanceLoad> = {}): InstanceReport => ({
  id,
  model: "m",
  role: "colocated",
  engine: "reference",
  engineUrl: `http://${id}:1`,
  servingDeployment: "ns/sd",
  podNamespace: "ns",
  podName: id,
  load: { ...idleLoad(1_000), ...load },
  reportedUnixMs: at,
});
const request = (id: string, priority: "high" | "normal" = "normal") => ({
  requestId: id,
  model: "m",
  priority,
  promptTokens: 1_600,
});

function setup(policy: DispatcherConfig["dispatchPolicy"], reports: InstanceReport[]) {
  const view = new InstanceView(viewConfig);
  for (const r of reports) view.apply(r, r.reportedUnixMs);
  const metrics = new GatewayMetrics();
  const dispatcher = new Dispatcher({
    view,
    metrics,
    config: {
      dispatchPolicy: policy,
      freeness: { highPriorityHeadroomFraction: 0.1 },
      maxQueuedPerInstance: 2,
      retryAfterS: 1,
    },
  });
  return { view, metrics, dispatcher };
}

describe("Dispatcher", () => {
  it("spreads a burst between two reports: each choice is reserved before the next", () => {
    const { dispatcher } = setup("freeness", [report("a", 0), report("b", 0)]);
    const chosen = ["1", "2", "3", "4"].map((id) => dispatcher.choose(request(id), "colocated", new Set(), 10)?.id);
    expect(chosen).toEqual(["a", "b", "a", "b"]);
  });

  it("spreads a burst over instances whose reports show a queue (each reservation counts in full)", () => {
    // F(a) = (1000 - 300 - 100) / 3 = 200, F(b) = F(c) = 133. Counted as waiting behind the head, a's reservations
    // left F(a) at 200 and the burst went to a until admission (queue limit 4 for high priority) turned it away.
    const queued = (kvBlocksUsed: number) => ({
      kvBlocksUsed,
      runningRequests: 3,
      queuedRequests: 1,
      headOfLineDemandBlocks: 100,
    });
    const { dispatcher } = setup("freeness", [
      report("a", 0, queued(300)),
      report("b", 0, queued(500)),
      report("c", 0, queued(500)),
    ]);
    const chosen = ["1", "2", "3", "4", "5", "6"].map(
      (id) => dispatcher.choose(request(id, "high"), "colocated", new Set(), 10)?.id,
    );
    // Each reservation here adds 100 blocks, one request to B and a high-priority headroom of 100 blocks:
    // F(a) 200 -> 100 -> 40, F(b) and F(c) 133 -> 50 -> 0.
    expect(chosen).toEqual(["a", "b", "c", "a", "b", "c"]);
  });

  it("a report generated after the dispatches supersedes their reservations", () => {
    const { view, dispatcher } = setup("freeness", [
      report("a", 0),
      report("b", 0, { kvBlocksUsed: 300, runningRequests: 1 }),
    ]);
    expect(dispatcher.choose(request("1"), "colocated", new Set(), 10)?.id).toBe("a"); // F(a) = 1000, F(b) = 700
    expect(dispatcher.choose(request("2"), "colocated", new Set(), 11)?.id).toBe("a"); // a with 1's 100 blocks: F = 900
    view.apply(report("a", 20, { kvBlocksUsed: 800, runningRequests: 2 }), 25); // counts 1 and 2 itself
    expect(view.ledger.size).toBe(0);
    expect(dispatcher.choose(request("3"), "colocated", new Set(), 30)?.id).toBe("b");
  });

  it("round-robin ignores load and skips instances already tried", () => {
    const { dispatcher } = setup("round-robin", [
      report("a", 0, { kvBlocksUsed: 500, runningRequests: 40 }),
      report("b", 0),
      report("c", 0),
    ]);
    expect(["1", "2", "3", "4"].map((id) => dispatcher.choose(request(id), "colocated", new Set(), 10)?.id)).toEqual([
      "a",
      "b",
      "c",
      "a",
    ]);
    expect(dispatcher.choose(request("5"), "colocated", new Set(["b", "c"]), 10)?.id).toBe("a");
    expect(dispatcher.choose(request("6"), "colocated", new Set(["a", "b", "c"]), 10)).toBeUndefined();
  });

  it("answers 429 once every instance has maxQueuedPerInstance waiting; high priority may queue twice as deep", () => {
    const { dispatcher } = setup("freeness", [
      report("a", 0, { queuedRequests: 2 }),
      report("b", 0, { queuedRequests: 3 }),
    ]);
    const overloaded = (() => {
      try {
        dispatcher.choose(request("1"), "colocated", new Set(), 10);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(overloaded).toBeInstanceOf(GatewayError);
    expect(overloaded).toMatchObject({ status: 429, code: "overloaded" });
    expect(dispatcher.choose(request("2", "high"), "colocated", new Set(), 10)?.id).toBe("a");
  });

  it("counts each decision by policy and role, and release ends the reservation", async () => {
    const { view, metrics, dispatcher } = setup("round-robin", [report("a", 0)]);
    dispatcher.choose(request("1"), "colocated", new Set(), 10);
    expect(view.ledger.size).toBe(1);
    dispatcher.release("1");
    expect(view.ledger.size).toBe(0);
    const values = (await metrics.dispatchDecisionsTotal.get()).values;
    expect(values).toEqual([{ labels: { model: "m", policy: "round-robin", role: "colocated" }, value: 1 }]);
  });
});
