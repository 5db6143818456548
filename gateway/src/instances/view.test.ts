import { describe, expect, it } from "vitest";
import { idleLoad } from "../../../common/src/scheduler/freeness.js";
import { reportFromLoadEntry } from "./nats-source.js";
import type { InstanceReport } from "./source.js";
import { InstanceView } from "./view.js";

const config = { instanceStaleMs: 1_000, modelForgetMs: 10_000, suspectMs: 2_000, reservationMaxAgeMs: 5_000 };
const report = (id: string, role: InstanceReport["role"], at: number, model = "m"): InstanceReport => ({
  id,
  model,
  role,
  engine: "reference",
  engineUrl: `http://${id}:1`,
  servingDeployment: "ns/sd",
  podNamespace: "ns",
  podName: id,
  load: idleLoad(100),
  reportedUnixMs: at,
});

describe("InstanceView", () => {
  it("routes by model and role, dropping stale and suspect instances from dispatch", () => {
    const view = new InstanceView(config);
    view.apply(report("a", "decode", 0), 0);
    view.apply(report("b", "decode", 900), 900);
    view.apply(report("p", "prefill", 900), 900);
    expect(view.candidates("m", "decode", 1_500).map((c) => c.id)).toEqual(["b"]); // a is stale
    view.markSuspect("b", 1_500);
    view.apply(report("b", "decode", 1_600), 1_600); // a new report does not clear a suspicion
    expect(view.candidates("m", "decode", 1_700)).toEqual([]);
    view.apply(report("b", "decode", 3_500), 3_500);
    expect(view.candidates("m", "decode", 3_600).map((c) => c.id)).toEqual(["b"]); // suspicion over
    expect(view.route("m", 1_500)).toMatchObject({
      mode: "disaggregated",
      instances: { decode: 1, prefill: 1, colocated: 0 },
    });
  });

  it("offers only instances of the asked engine (both halves of a request speak one hand-off)", () => {
    const view = new InstanceView(config);
    view.apply(report("r", "decode", 0), 0);
    view.apply({ ...report("v", "decode", 0), engine: "vllm" }, 0);
    expect(view.candidates("m", "decode", 10).map((c) => c.id)).toEqual(["r", "v"]);
    expect(view.candidates("m", "decode", 10, new Set(), "vllm").map((c) => c.id)).toEqual(["v"]);
    expect(view.candidates("m", "decode", 10, new Set(), "reference").map((c) => c.id)).toEqual(["r"]);
  });

  it("keeps a route whose instances all went silent until modelForgetMs (503, not 404), then forgets it", () => {
    const view = new InstanceView(config);
    view.apply(report("a", "colocated", 0), 0);
    expect(view.route("m", 5_000)).toMatchObject({ mode: "colocated", instances: { colocated: 0 } });
    expect(view.route("m", 10_001)).toBeUndefined();
  });

  it("adds its own reservations to the reported load until a newer report supersedes them", () => {
    const view = new InstanceView(config);
    view.apply(report("a", "colocated", 0), 0);
    view.reserve("r1", "a", { promptTokens: 160, highPriority: false }, 10);
    expect(view.candidates("m", "colocated", 20)[0]!.load).toMatchObject({ runningRequests: 1, kvBlocksUsed: 10 });
    view.apply(report("a", "colocated", 30), 30);
    expect(view.candidates("m", "colocated", 40)[0]!.load).toMatchObject({ runningRequests: 0, kvBlocksUsed: 0 });
  });

  it("ignores an out-of-order older report", () => {
    const view = new InstanceView(config);
    view.apply({ ...report("a", "colocated", 100), load: { ...idleLoad(100), runningRequests: 3 } }, 100);
    view.apply(report("a", "colocated", 50), 110);
    expect(view.candidates("m", "colocated", 120)[0]!.load.runningRequests).toBe(3);
  });
});

describe("reportFromLoadEntry", () => {
  const entry = {
    workerId: "w",
    podNamespace: "ns",
    podName: "p",
    unixMs: 5,
    queueLength: 2,
    runningRequests: 3,
    kvCacheUsedFraction: 0.1,
    kvCacheUsedBytes: 1,
    ttftMs: 0,
    tpotMs: 0,
    tokensPerSecond: 0,
  };

  it("skips reports without the serving fields (training workers)", () => {
    expect(reportFromLoadEntry(entry)).toBeUndefined();
  });

  it("names what is wrong with a partial serving report", () => {
    expect(reportFromLoadEntry({ ...entry, role: "decode" } as typeof entry)).toEqual({
      invalid: expect.stringContaining("engineUrl"),
    });
  });

  it("maps a serving report to the dispatch load", () => {
    const full = {
      ...entry,
      engineUrl: "http://10.0.0.1:8000",
      model: "m",
      role: "decode",
      servingDeployment: "ns/sd",
      kvBlocksTotal: 100,
      kvBlocksUsed: 20,
      blockSizeTokens: 16,
      headOfLineDemandBlocks: 4,
      draining: true,
    };
    expect(reportFromLoadEntry(full as typeof entry)).toMatchObject({
      id: "w",
      role: "decode",
      reportedUnixMs: 5,
      load: {
        kvBlocksUsed: 20,
        runningRequests: 3,
        queuedRequests: 2,
        headOfLineDemandBlocks: 4,
        draining: true,
        highPriorityRunning: 0,
      },
    });
  });

  it("reads the engine and SGLang's bootstrap port; a report without them is the reference engine", () => {
    const serving = {
      ...entry,
      engineUrl: "http://10.0.0.1:8000",
      model: "m",
      role: "prefill",
      servingDeployment: "ns/sd",
      kvBlocksTotal: 100,
      kvBlocksUsed: 0,
      blockSizeTokens: 1,
    };
    expect(reportFromLoadEntry(serving as typeof entry)).toMatchObject({ engine: "reference" });
    expect(reportFromLoadEntry(serving as typeof entry)).not.toHaveProperty("disaggregationBootstrapPort");
    expect(
      reportFromLoadEntry({ ...serving, engine: "sglang", disaggregationBootstrapPort: 8998 } as typeof entry),
    ).toMatchObject({ engine: "sglang", disaggregationBootstrapPort: 8998 });
    expect(reportFromLoadEntry({ ...serving, engine: "tgi" } as typeof entry)).toEqual({
      invalid: expect.stringContaining("engine"),
    });
  });

  describe("through a source outage", () => {
    const held = { ...config, sourceOutageHoldMs: 30_000 };

    it("keeps routing from the last view while the source is down, within the bound", () => {
      const view = new InstanceView(held);
      view.apply(report("a", "colocated", 0), 0);
      view.sourceDown(500);
      expect(view.candidates("m", "colocated", 20_000).map((c) => c.id)).toEqual(["a"]);
      expect(view.route("m", 20_000)).toMatchObject({ instances: { colocated: 1 } });
      expect(view.heldForMs(20_000)).toBe(19_500);
      // Past the bound reports age again: 500 ms old at the outage, stale 500 ms after the hold ran out.
      expect(view.candidates("m", "colocated", 30_900).map((c) => c.id)).toEqual(["a"]);
      expect(view.candidates("m", "colocated", 31_001)).toEqual([]);
    });

    it("without a bound configured, does not hold", () => {
      const view = new InstanceView(config);
      view.apply(report("a", "colocated", 0), 0);
      view.sourceDown(500);
      expect(view.candidates("m", "colocated", 1_500)).toEqual([]);
    });

    it("credits the held time when reports arrive again, so no instance goes stale before its next report", () => {
      const view = new InstanceView(held);
      view.apply(report("a", "colocated", 0), 0);
      view.apply(report("b", "colocated", 0), 0);
      view.sourceDown(500);
      view.apply(report("a", "colocated", 10_000), 10_000); // the source delivers again: the hold ends
      expect(view.heldForMs(10_000)).toBe(0);
      // b was 500 ms old when the outage began: live until 500 ms of ageing remain, at 10,000 + 500.
      expect(view.candidates("m", "colocated", 10_400).map((c) => c.id)).toEqual(["a", "b"]);
      expect(view.candidates("m", "colocated", 10_600).map((c) => c.id)).toEqual(["a"]);
    });

    it("ends the hold at delivery time even when the first report after it is a replayed, older one", () => {
      const view = new InstanceView(held);
      view.apply(report("a", "colocated", 0), 0);
      view.sourceDown(500);
      // Stored at 400 (before the outage), delivered at 20,000: a gets the 19,500 ms held as credit.
      view.apply(report("b", "colocated", 400), 400, 20_000);
      expect(view.candidates("m", "colocated", 20_400).map((c) => c.id)).toEqual(["a"]);
    });

    it("still skips an instance that failed a call while the view is held", () => {
      const view = new InstanceView(held);
      view.apply(report("a", "colocated", 0), 0);
      view.sourceDown(100);
      view.markSuspect("a", 5_000);
      expect(view.candidates("m", "colocated", 6_000)).toEqual([]);
    });
  });
});
