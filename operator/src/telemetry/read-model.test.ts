import { describe, expect, it } from "vitest";
import type { CollectiveRecord } from "../../../common/src/telemetry/records.js";
import type { DecodedCollectives, LoadEntry } from "../../../common/src/telemetry/subjects.js";
import { DEFAULT_READ_MODEL_LIMITS, TelemetryReadModel } from "./read-model.js";

const record = (communicator: string, rank: number, sequence: number): CollectiveRecord => ({
  communicator,
  rank,
  nRanks: 2,
  collective: "AllReduce",
  sequence,
  bytes: 8,
  startUnixUs: 1,
  endUnixUs: 2,
  peers: [],
});
const message = (records: CollectiveRecord[], droppedSincePrevious = 0): DecodedCollectives => ({
  node: "n",
  sentUnixMs: 1,
  droppedSincePrevious,
  source: undefined,
  records,
});
const load = (podName: string, unixMs: number, queueLength: number): LoadEntry => ({
  workerId: `w-${podName}`,
  podNamespace: "ns",
  podName,
  unixMs,
  queueLength,
  runningRequests: 0,
  kvCacheUsedFraction: 0,
  kvCacheUsedBytes: 0,
  ttftMs: 0,
  tpotMs: 0,
  tokensPerSecond: 0,
});

describe("collectives", () => {
  it("keys records by communicator, sequence and rank, and never counts a redelivery twice", () => {
    const model = new TelemetryReadModel();
    const batch = message([record("c", 0, 1), record("c", 1, 1), record("c", 0, 2)], 3);
    expect(model.applyCollectives(batch, "ns/job", 10)).toMatchObject({ accepted: 3, duplicates: 0 });
    expect(model.applyCollectives(batch, "ns/job", 11)).toMatchObject({ accepted: 0, duplicates: 3 });
    const view = model.communicator("c")!;
    expect([...view.sequences.keys()]).toEqual([1, 2]);
    expect([...view.sequences.get(1)!.keys()]).toEqual([0, 1]);
    expect(view).toMatchObject({ job: "ns/job", recordsAccepted: 3, updatedUnixMs: 11 });
    expect(model.communicatorsOf("ns/job").map((c) => c.communicator)).toEqual(["c"]);
    expect(model.counters()).toMatchObject({ recordsAccepted: 3, recordsDuplicate: 3, recordsDroppedAtAgents: 6 });
  });

  it("keeps a bounded window of sequences; an evicted sequence redelivered is stale, not re-added", () => {
    const model = new TelemetryReadModel({ ...DEFAULT_READ_MODEL_LIMITS, maxSequencesPerCommunicator: 3 });
    const first = message([0, 1, 2, 3, 4].map((s) => record("c", 0, s)));
    expect(model.applyCollectives(first, undefined, 1)).toMatchObject({ accepted: 5, evictedSequences: 2 });
    expect([...model.communicator("c")!.sequences.keys()]).toEqual([2, 3, 4]);
    expect(model.communicator("c")!.evictedThrough).toBe(1);
    expect(model.applyCollectives(first, undefined, 2)).toMatchObject({ accepted: 0, duplicates: 3, stale: 2 });
    expect(model.communicator("c")!.recordsAccepted).toBe(5);
  });

  it("evicts the least recently updated communicator beyond the limit", () => {
    const model = new TelemetryReadModel({ ...DEFAULT_READ_MODEL_LIMITS, maxCommunicators: 2 });
    for (const [c, t] of [
      ["a", 1],
      ["b", 2],
      ["a", 3],
      ["c", 4],
    ] as const)
      model.applyCollectives(message([record(c, 0, t)]), undefined, t);
    expect(model.communicators().map((c) => c.communicator)).toEqual(["a", "c"]);
    expect(model.counters().evictedCommunicators).toBe(1);
  });
});

describe("load", () => {
  it("keeps the latest report per instance, grouped per deployment, and ignores an older one", () => {
    const model = new TelemetryReadModel();
    const deploymentOf = (_ns: string, pod: string) => (pod.startsWith("chat-") ? "ns/chat" : undefined);
    expect(
      model.applyLoad("n", [load("chat-0", 10, 4), load("chat-1", 10, 1), load("other", 10, 9)], deploymentOf, 100),
    ).toBe(3);
    expect(model.applyLoad("n", [load("chat-0", 5, 99), load("chat-0", 20, 7)], deploymentOf, 200)).toBe(1);
    expect(model.loadOf("ns/chat").map((l) => [l.podName, l.queueLength, l.receivedUnixMs])).toEqual([
      ["chat-1", 1, 100],
      ["chat-0", 7, 200],
    ]);
    expect(model.counters().loadReportsStale).toBe(1);
  });

  it("evicts the stalest instance beyond the limit", () => {
    const model = new TelemetryReadModel({ ...DEFAULT_READ_MODEL_LIMITS, maxLoadInstances: 2 });
    model.applyLoad("n", [load("a", 1, 0), load("b", 2, 0), load("c", 3, 0)], () => "ns/d", 1);
    expect(model.loadOf("ns/d").map((l) => l.podName)).toEqual(["b", "c"]);
    expect(model.counters().evictedLoadInstances).toBe(1);
  });
});

describe("checkpoints", () => {
  it.each([
    ["raises to a higher step", [100, 200], 200, [true, true]],
    ["never lowers", [300, 200], 300, [true, false]],
    ["a redelivery is a no-op", [300, 300], 300, [true, false]],
  ] as const)("%s", (_name, steps, final, raised) => {
    const model = new TelemetryReadModel();
    const results = steps.map((step) =>
      model.applyCheckpoint("ns/job", {
        kind: "checkpoint",
        workerId: "w",
        podNamespace: "ns",
        podName: "job-0",
        rank: 0,
        step,
        unixMs: step,
        path: `/ckpt/${step}`,
      }),
    );
    expect(results).toEqual(raised);
    expect(model.lastCheckpoint("ns/job")?.step).toBe(final);
  });
});
