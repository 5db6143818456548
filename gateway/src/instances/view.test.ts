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
});
