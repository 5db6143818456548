import { describe, expect, it } from "vitest";
import { MAX_FAULT_RECORDS, type FaultRecord } from "../../../../crds/src/training-job.js";
import type { C4dAmbiguity, C4dReport, C4dVerdict } from "../c4d/index.js";
import {
  EMPTY_PLAN,
  faultId,
  faultRestartNodes,
  mergeFaultRecords,
  planFaultActions,
  settledConditions,
  summarize,
  type FaultPlanInput,
} from "./plan.js";

const T0 = Date.parse("2026-12-02T08:00:00.000Z");
const GANG = new Set(["n0", "n1", "n2", "n3"]);

function verdict(over: Partial<C4dVerdict> & { node?: string; nic?: string } = {}): C4dVerdict {
  const { node = "n1", nic, ...rest } = over;
  return {
    faultClass: "hang",
    action: "isolate-node",
    blame: { node, ranks: [8], ...(nic ? { nic } : {}) },
    evidence: {
      communicator: "ns-job-abc",
      sequence: 41,
      collective: "AllReduce",
      ranks: [0, 1, 2, 3, 4, 5, 6, 7],
      detail: "rank 8 never entered AllReduce #41 while 15 ranks waited 2100 ms",
      timesMs: { waitedMs: 2100, timeoutMs: 1000 },
    },
    firstAffectedUnixMs: T0,
    detectedUnixMs: T0 + 2100,
    ...rest,
  };
}

function ambiguity(over: Partial<C4dAmbiguity> = {}): C4dAmbiguity {
  return {
    suspected: "slow-link",
    communicator: "ns-job-abc",
    sequence: 90,
    ranks: [7, 8],
    nodes: ["n0", "n1"],
    detail: "one slow cell between n0 and n1; either end or the path",
    timesMs: { cellMs: 40, baselineMs: 10 },
    ...over,
  };
}

function input(report: Partial<C4dReport>, over: Partial<FaultPlanInput> = {}): FaultPlanInput {
  return {
    job: "ns/job",
    attempt: 0,
    report: { verdicts: [], ambiguous: [], ...report },
    recorded: [],
    remembered: [],
    gangNodes: GANG,
    isolatedNodes: new Set(),
    nowMs: T0 + 2500,
    ...over,
  };
}

describe("planFaultActions", () => {
  it("isolates the node a hang verdict blames, records the evidence and restarts the gang", () => {
    const plan = planFaultActions(input({ verdicts: [verdict()] }));
    expect(plan.restart).toBe(true);
    expect(plan.taints).toEqual([
      {
        node: "n1",
        value: "c4d-hang",
        reason: expect.stringContaining("ns/job attempt 0: C4D hang: node n1 ranks 8 in AllReduce #41"),
      },
    ]);
    expect(plan.nicMarks).toEqual([]);
    expect(plan.records).toEqual([
      expect.objectContaining({
        id: "0-hang-n1",
        attempt: 0,
        faultClass: "hang",
        action: "isolate-node",
        node: "n1",
        ranks: [8],
        communicator: "ns-job-abc",
        collective: "AllReduce",
        sequence: 41,
        timesMs: { waitedMs: 2100, timeoutMs: 1000 },
        firstAffectedTime: "2026-12-02T08:00:00.000Z",
        detectedTime: "2026-12-02T08:00:02.100Z",
        actedTime: "2026-12-02T08:00:02.500Z",
      }),
    ]);
    expect(plan.conditions).toEqual([
      {
        type: "FaultDetected",
        status: "True",
        reason: "CommunicationHang",
        message: expect.stringContaining("node n1 isolated"),
      },
    ]);
    expect(plan.jobEvents).toEqual([
      {
        type: "Warning",
        reason: "CommunicationHang",
        message: expect.stringMatching(
          /rank 8 never entered AllReduce #41.*waitedMs=2100ms.*acted 2\.5s later; node n1 isolated/,
        ),
      },
    ]);
    expect(plan.nodeEvents).toEqual([
      {
        node: "n1",
        event: {
          type: "Warning",
          reason: "NodeIsolated",
          message: expect.stringContaining("tainted gpufleet.io/isolated:NoSchedule; TrainingJob ns/job"),
        },
      },
    ]);
  });

  it.each([
    ["recorded in status", { recorded: [{ id: "0-straggler-n2", attempt: 0, action: "isolate-node" }] }],
    [
      "remembered by this process (status not yet cached)",
      { remembered: [{ id: "0-hang-n1", attempt: 0, action: "isolate-node" }] },
    ],
    ["acted on as restart-only", { recorded: [{ id: "0-job-hang-", attempt: 0, action: "restart-only" }] }],
  ])("does nothing once a fault of the same attempt was acted on (%s)", (_name, over) => {
    const known = over as { recorded?: Partial<FaultRecord>[]; remembered?: Partial<FaultRecord>[] };
    const plan = planFaultActions(
      input(
        { verdicts: [verdict()] },
        { recorded: (known.recorded ?? []).map(record), remembered: (known.remembered ?? []).map(record) },
      ),
    );
    expect(plan).toEqual(EMPTY_PLAN);
  });

  it("acts again in a later attempt: the same node blamed after a restart is a new fault", () => {
    const plan = planFaultActions(
      input(
        { verdicts: [verdict({ node: "n2" })] },
        { attempt: 1, recorded: [record({ id: "0-hang-n1", attempt: 0, action: "isolate-node" })] },
      ),
    );
    expect(plan.records.map((r) => r.id)).toEqual(["1-hang-n2"]);
    expect(plan.taints.map((t) => t.node)).toEqual(["n2"]);
  });

  it("does not taint a node that is already isolated (keeps the admin's taint) but still records and restarts", () => {
    const plan = planFaultActions(input({ verdicts: [verdict()] }, { isolatedNodes: new Set(["n1"]) }));
    expect(plan.taints).toEqual([]);
    expect(plan.restart).toBe(true);
    expect(plan.nodeEvents[0]?.event.message).toMatch(/^already isolated; /);
  });

  it("marks only the NIC when C4D blames a NIC, and restarts", () => {
    const plan = planFaultActions(
      input({ verdicts: [verdict({ faultClass: "slow-sender", action: "mark-nic", nic: "mlx5_3" })] }),
    );
    expect(plan.taints).toEqual([]);
    expect(plan.nicMarks).toEqual([
      { node: "n1", nic: "mlx5_3", message: expect.stringContaining("C4D slow-sender: node n1 NIC mlx5_3") },
    ]);
    expect(plan.records[0]).toMatchObject({ id: "0-slow-sender-n1-mlx5_3", action: "mark-nic", nic: "mlx5_3" });
    expect(plan.nodeEvents[0]?.event.reason).toBe("NicDegraded");
    expect(plan.conditions[0]).toMatchObject({
      reason: "SlowSender",
      message: expect.stringContaining("NIC mlx5_3 of node n1 marked degraded"),
    });
    expect(plan.restart).toBe(true);
  });

  it("isolates the node when a NIC verdict names no NIC (nothing smaller can be marked)", () => {
    const plan = planFaultActions(input({ verdicts: [verdict({ faultClass: "slow-sender", action: "mark-nic" })] }));
    expect(plan.records[0]?.action).toBe("isolate-node");
    expect(plan.taints.map((t) => t.node)).toEqual(["n1"]);
  });

  it("restarts without tainting anything for a restart-only verdict, also one that names no node (job hang)", () => {
    const plan = planFaultActions(
      input({ verdicts: [verdict({ faultClass: "job-hang", action: "restart-only", node: "" })] }),
    );
    expect(plan.taints).toEqual([]);
    expect(plan.nicMarks).toEqual([]);
    expect(plan.nodeEvents).toEqual([]);
    expect(plan.restart).toBe(true);
    expect(plan.records[0]).toMatchObject({ id: "0-job-hang-", action: "restart-only" });
    expect(plan.records[0]).not.toHaveProperty("node");
    expect(plan.conditions[0]).toMatchObject({
      reason: "JobHang",
      message: expect.stringContaining("nothing isolated"),
    });
  });

  it("acts once on a fault reported by several communicators, with the earliest first-affected time", () => {
    const plan = planFaultActions(
      input({
        verdicts: [
          verdict({ firstAffectedUnixMs: T0 + 500 }),
          verdict({ evidence: { ...verdict().evidence, communicator: "other" } }),
        ],
      }),
    );
    expect(plan.records).toHaveLength(1);
    expect(plan.records[0]?.communicator).toBe("other");
    expect(plan.taints).toHaveLength(1);
  });

  it.each([
    ["a node outside the gang", { verdicts: [verdict({ node: "stranger" })] }, /runs no rank of the current gang/],
    [
      "three nodes at once",
      { verdicts: [verdict({ node: "n0" }), verdict({ node: "n1" }), verdict({ node: "n2" })] },
      /blamed 3 nodes at once \(n0, n1, n2\)/,
    ],
    ["evidence C4D itself calls ambiguous", { ambiguous: [ambiguity()] }, /either end or the path/],
  ])("never taints on ambiguous evidence: %s", (_name, report, why) => {
    const plan = planFaultActions(input(report));
    expect(plan.taints).toEqual([]);
    expect(plan.nicMarks).toEqual([]);
    expect(plan.restart).toBe(false);
    expect(plan.records.length).toBeGreaterThan(0);
    for (const r of plan.records) expect(r).toMatchObject({ faultClass: "ambiguous", action: "none" });
    expect(plan.conditions).toEqual([
      { type: "FaultSuspected", status: "True", reason: "AmbiguousEvidence", message: expect.stringMatching(why) },
    ]);
    expect(plan.jobEvents[0]).toMatchObject({
      type: "Warning",
      reason: "AmbiguousEvidence",
      message: expect.stringContaining("nothing tainted"),
    });
  });

  it("reports the same kind of ambiguity once per attempt", () => {
    const first = planFaultActions(input({ ambiguous: [ambiguity()] }));
    expect(first.records.map((r) => r.id)).toEqual(["0-ambiguous-slow-link"]);
    expect(planFaultActions(input({ ambiguous: [ambiguity({ sequence: 95 })] }, { recorded: first.records }))).toEqual(
      EMPTY_PLAN,
    );
  });

  it("acts on a conclusive verdict after ambiguity was reported in the same attempt", () => {
    const first = planFaultActions(input({ ambiguous: [ambiguity()] }));
    const plan = planFaultActions(input({ verdicts: [verdict()] }, { recorded: first.records }));
    expect(plan.taints.map((t) => t.node)).toEqual(["n1"]);
  });

  it("prefers a conclusive verdict over ambiguity reported with it", () => {
    const plan = planFaultActions(input({ verdicts: [verdict()], ambiguous: [ambiguity()] }));
    expect(plan.records.map((r) => r.faultClass)).toEqual(["hang"]);
  });
});

describe("settledConditions", () => {
  const detectedTrue = [{ type: "FaultDetected", status: "True" }];
  it("flips FaultDetected to False once a later attempt runs, recalling the last fault", () => {
    const faults = [record({ id: "0-hang-n1", attempt: 0, action: "isolate-node" })];
    expect(settledConditions(1, faults, detectedTrue)).toEqual([
      {
        type: "FaultDetected",
        status: "False",
        reason: "NoFault",
        message: expect.stringMatching(/^no fault in attempt 1; last fault \(attempt 0\): C4D hang/),
      },
    ]);
  });
  it("keeps it while the faulty attempt still runs, and writes nothing when nothing is True", () => {
    const faults = [record({ id: "1-hang-n1", attempt: 1, action: "isolate-node" })];
    expect(settledConditions(1, faults, detectedTrue)).toEqual([]);
    expect(settledConditions(2, faults, [{ type: "FaultDetected", status: "False" }])).toEqual([]);
    expect(settledConditions(0, [], undefined)).toEqual([]);
  });
  it("clears FaultSuspected in a new attempt", () => {
    const faults = [record({ id: "0-ambiguous-slow-link", attempt: 0, action: "none", faultClass: "ambiguous" })];
    expect(settledConditions(1, faults, [{ type: "FaultSuspected", status: "True" }])).toEqual([
      expect.objectContaining({ type: "FaultSuspected", status: "False" }),
    ]);
    expect(settledConditions(0, faults, [{ type: "FaultSuspected", status: "True" }])).toEqual([]);
  });
});

describe("status.faults helpers", () => {
  it("keeps the newest MAX_FAULT_RECORDS records, replacing one with the same id", () => {
    const old = Array.from({ length: MAX_FAULT_RECORDS }, (_, i) => record({ id: `${i}-hang-n1`, attempt: i }));
    const merged = mergeFaultRecords(old, [
      record({ id: "3-hang-n1", attempt: 3, detail: "new" }),
      record({ id: "99-hang-n1", attempt: 99 }),
    ]);
    expect(merged).toHaveLength(MAX_FAULT_RECORDS);
    expect(merged.at(-1)?.id).toBe("99-hang-n1");
    expect(merged.at(-2)).toMatchObject({ id: "3-hang-n1", detail: "new" });
    expect(merged.filter((r) => r.id === "3-hang-n1")).toHaveLength(1);
    expect(merged.map((r) => r.id)).not.toContain("0-hang-n1");
  });

  it("tells the gang step which nodes a restart of this attempt avoids, ignoring other attempts and ambiguity", () => {
    const faults = [
      record({ id: "0-hang-n1", attempt: 0, action: "isolate-node", node: "n1" }),
      record({
        id: "1-slow-sender-n2-mlx5_0",
        attempt: 1,
        action: "mark-nic",
        node: "n2",
        nic: "mlx5_0",
        faultClass: "slow-sender",
      }),
      record({ id: "1-ambiguous-x", attempt: 1, action: "none", node: "n3", faultClass: "ambiguous" }),
    ];
    expect(faultRestartNodes(faults, 1)).toEqual({
      nodes: ["n2"],
      faults: [{ node: "n2", summary: "slow-sender on node n2 (NIC mlx5_0)" }],
    });
    expect(faultRestartNodes(faults, 2)).toEqual({ nodes: [], faults: [] });
    const link = [
      record({
        id: "3-slow-link-n1",
        attempt: 3,
        action: "restart-only",
        faultClass: "slow-link",
        node: "n1",
        peerNode: "n0",
      }),
    ];
    expect(faultRestartNodes(link, 3)).toEqual({
      nodes: ["n0", "n1"],
      faults: [{ node: "n1", summary: "slow-link on node n1 (link to n0)" }],
    });
    expect(faultRestartNodes(undefined, 0)).toEqual({ nodes: [], faults: [] });
  });

  it("ids name attempt, class, node and NIC, within a Kubernetes name's length", () => {
    expect(faultId(2, "slow-link", "n1")).toBe("2-slow-link-n1");
    expect(faultId(0, "slow-sender", "n1", "mlx5_0")).toBe("0-slow-sender-n1-mlx5_0");
    expect(faultId(0, "hang", "x".repeat(400)).length).toBe(253);
  });

  it("summarizes a record with collective, ranks and times", () => {
    expect(summarize(record({ id: "0-hang-n1", attempt: 0 }))).toBe(
      "C4D hang: node n1 ranks 8 in AllReduce #41 of c (evidence ranks 0,1): rank 8 never entered [waitedMs=2100ms]; first affected 2026-12-02T08:00:00.000Z, acted 2.5s later",
    );
  });
});

function record(over: Partial<FaultRecord>): FaultRecord {
  return {
    id: "0-hang-n1",
    attempt: 0,
    faultClass: "hang",
    action: "isolate-node",
    node: "n1",
    ranks: [8],
    communicator: "c",
    collective: "AllReduce",
    sequence: 41,
    evidenceRanks: [0, 1],
    detail: "rank 8 never entered",
    timesMs: { waitedMs: 2100 },
    firstAffectedTime: "2026-12-02T08:00:00.000Z",
    detectedTime: "2026-12-02T08:00:02.100Z",
    actedTime: "2026-12-02T08:00:02.500Z",
    ...over,
  };
}
