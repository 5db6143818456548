/**
 * The fault monitor driven tick by tick over a real read model and the real detector, with the API writes and
 * Events recorded: it acts once on a hang (taint, status, Events in that order), never again in the same attempt or
 * after a leader change, and ignores the previous attempt's telemetry.
 */
import type { KubernetesObject, V1Node, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { setCondition, type ConditionUpdate } from "../../../../crds/src/conditions.js";
import type { FaultRecord, TrainingJob } from "../../../../crds/src/training-job.js";
import type { CollectiveRecord } from "../../../../common/src/telemetry/records.js";
import { OperatorMetrics } from "../../metrics.js";
import { TelemetryReadModel } from "../../telemetry/read-model.js";
import type { FaultWriter, TaintResult } from "./apply.js";
import { mergeFaultRecords } from "./plan.js";
import { FaultMonitor } from "./monitor.js";

const NODES = ["node-a", "node-b"];
const START_MS = Date.parse("2026-12-02T08:00:00Z");
const PERIOD_US = 60_000;

class Fake implements FaultWriter {
  readonly calls: string[] = [];
  readonly tainted = new Set<string>();
  constructor(readonly job: TrainingJob) {}
  async taintNode(node: string, value: string): Promise<TaintResult> {
    this.calls.push(`taint ${node}=${value}`);
    if (this.tainted.has(node)) return "already-isolated";
    this.tainted.add(node);
    return "tainted";
  }
  async markNic(node: string, nic: string): Promise<boolean> {
    this.calls.push(`nic ${node}/${nic}`);
    return true;
  }
  async writeJobFaults(
    _ns: string,
    _name: string,
    records: readonly FaultRecord[],
    conditions: readonly ConditionUpdate[],
    nowMs: number,
  ): Promise<TrainingJob> {
    this.calls.push(
      `status ${records.map((r) => r.id).join(",")} ${conditions.map((c) => `${c.type}=${c.status}`).join(",")}`,
    );
    const status = this.job.status!;
    status.faults = mergeFaultRecords(status.faults, records);
    for (const c of conditions) status.conditions = setCondition(status.conditions, c, 1, new Date(nowMs));
    return this.job;
  }
}

function runningJob(attempt: number): TrainingJob {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "TrainingJob",
    metadata: { name: "llm", namespace: "ml", uid: "job-uid", generation: 1 },
    spec: {
      image: "i",
      command: ["c"],
      args: [],
      env: [],
      nodes: 2,
      gpusPerNode: 8,
      parallelism: { tp: 8, pp: 1, dp: 2 },
      model: {
        paramsBillions: 7.5,
        layers: 36,
        hiddenSize: 4096,
        seqLength: 2048,
        globalBatchSequences: 512,
        microBatchSequences: 1,
      },
      checkpoint: { path: "/c", intervalSteps: 10 },
      faultPolicy: { maxRestarts: 3, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 1 },
      placement: { nicAware: true },
    },
    status: {
      phase: "Running",
      restarts: attempt,
      placement: {
        islands: ["ib"],
        ranksPerIsland: { ib: 16 },
        layersPerStage: [36],
        nodes: NODES,
        predictedStepMs: 240,
      },
      conditions: [],
    },
  };
}

function gangPods(attempt: number, createdMs: number): V1Pod[] {
  return NODES.map((node, i) => ({
    metadata: {
      name: `llm-${i}`,
      namespace: "ml",
      uid: `pod-${attempt}-${i}`,
      creationTimestamp: new Date(createdMs),
      labels: { "gpufleet.io/training-job": "llm" },
      annotations: { "gpufleet.io/attempt": String(attempt) },
      ownerReferences: [{ apiVersion: "gpufleet.io/v1alpha1", kind: "TrainingJob", name: "llm", uid: "job-uid" }],
    },
    spec: { nodeName: node, containers: [] },
    status: { phase: "Running" },
  }));
}

/** `count` healthy ring all-reduces from `fromUs`, then (hungRank set) one that rank never enters. */
function collectives(communicator: string, fromUs: number, count: number, hungRank?: number): CollectiveRecord[] {
  const out: CollectiveRecord[] = [];
  for (let s = 0; s <= count; s++) {
    const hung = s === count;
    if (hung && hungRank === undefined) break;
    const start = fromUs + s * PERIOD_US;
    for (let rank = 0; rank < 16; rank++) {
      if (hung && rank === hungRank) continue;
      const end = hung ? 0 : start + 10_000;
      out.push({
        communicator,
        rank,
        nRanks: 16,
        collective: "AllReduce",
        sequence: s,
        bytes: 1 << 28,
        startUnixUs: start,
        endUnixUs: end,
        peers: [{ peerRank: (rank + 1) % 16, bytes: 1 << 28, startUnixUs: start, endUnixUs: hung ? 0 : start + 9_000 }],
      });
    }
  }
  return out;
}

function setup(attempt: number, podsCreatedMs: number) {
  let nowMs = START_MS;
  const model = new TelemetryReadModel();
  const job = runningJob(attempt);
  const writer = new Fake(job);
  const events: string[] = [];
  const enqueued: string[] = [];
  const nodes: V1Node[] = NODES.map((name) => ({ metadata: { name, uid: `uid-${name}` }, spec: {} }));
  const metrics = new OperatorMetrics({ defaultMetrics: false });
  const make = () =>
    new FaultMonitor({
      trainingJobs: { list: () => [job] },
      nodes: { list: () => nodes },
      pods: { list: () => gangPods(attempt, podsCreatedMs) },
      telemetry: model,
      writer,
      events: {
        record: async (o: KubernetesObject, type: string, reason: string, message: string) =>
          void events.push(`${o.kind}/${o.metadata?.name} ${type} ${reason}: ${message}`),
      },
      clock: { now: () => nowMs, setTimeout: () => undefined, clearTimeout: () => undefined },
      metrics,
      logger: { info: () => {}, warn: () => {}, debug: () => {} },
      enqueue: (k) => enqueued.push(k),
    });
  const add = (records: CollectiveRecord[]) =>
    model.applyCollectives(
      { schema: "gpufleet.collectives/v1", node: "n", sentUnixMs: 0, droppedSincePrevious: 0, records } as never,
      "ml/llm",
      nowMs,
    );
  return { job, writer, events, enqueued, metrics, make, add, at: (ms: number) => (nowMs = ms) };
}

describe("FaultMonitor", () => {
  it("acts on a hung rank once: taint, then status, then Events on the job and the node; never again in that attempt or after a leader change", async () => {
    const t = setup(0, START_MS - 5000);
    t.add(collectives("comm-a", START_MS * 1000, 40, 9));
    const hangStartMs = START_MS + 40 * 60;
    t.at(hangStartMs + 3000);
    const monitor = t.make();
    await monitor.checkAll();
    expect(t.writer.calls).toEqual(["taint node-b=c4d-hang", "status 0-hang-node-b FaultDetected=True"]);
    expect(t.events).toEqual([
      expect.stringMatching(
        /^TrainingJob\/llm Warning CommunicationHang: C4D hang: node node-b ranks 9 in AllReduce #40 of comm-a .*node node-b isolated/,
      ),
      expect.stringMatching(
        /^Node\/node-b Warning NodeIsolated: tainted gpufleet.io\/isolated:NoSchedule; TrainingJob ml\/llm: C4D hang/,
      ),
    ]);
    expect(t.enqueued).toEqual(["ml/llm"]);
    expect(t.job.status!.faults![0]).toMatchObject({
      firstAffectedTime: new Date(hangStartMs).toISOString(),
      actedTime: new Date(hangStartMs + 3000).toISOString(),
    });
    const metrics = await t.metrics.registry.metrics();
    expect(metrics).toMatch(/gpufleet_operator_training_faults_total\{class="hang"\} 1/);
    expect(metrics).toMatch(/gpufleet_operator_training_fault_detection_seconds_sum\{class="hang"\} 3\n/);

    t.at(hangStartMs + 4000);
    await monitor.checkAll();
    // A new leader: fresh memory, the status as the API server holds it.
    await t.make().checkAll();
    expect(t.writer.calls).toHaveLength(2);
    expect(t.events).toHaveLength(2);
  });

  it("judges only the current attempt: the old gang's hung collective is ignored, and the new one's faults count", async () => {
    const restartedMs = START_MS + 10_000;
    const t = setup(1, restartedMs);
    t.add(collectives("comm-old", START_MS * 1000, 40, 9)); // attempt 0, before the new pods existed
    t.add(collectives("comm-new", (restartedMs + 2000) * 1000, 40));
    t.at(restartedMs + 2000 + 40 * 60 + 5000);
    await t.make().checkAll();
    expect(t.writer.calls).toEqual([]);
    const metrics = await t.metrics.registry.metrics();
    // Per-rank latencies of the current attempt only: 16 ranks, 10 ms collectives.
    expect(metrics.match(/^gpufleet_operator_training_rank_collective_seconds\{/gm)).toHaveLength(16);
    expect(metrics).toMatch(
      /gpufleet_operator_training_rank_collective_seconds\{namespace="ml",name="llm",rank="0"\} 0.01\n/,
    );
  });

  it("flips FaultDetected to False once a fresh attempt runs clean", async () => {
    const t = setup(1, START_MS);
    t.job.status!.faults = [
      {
        id: "0-hang-node-b",
        attempt: 0,
        faultClass: "hang",
        action: "isolate-node",
        node: "node-b",
        ranks: [9],
        communicator: "c",
        collective: "AllReduce",
        sequence: 4,
        evidenceRanks: [0],
        detail: "d",
        timesMs: {},
        firstAffectedTime: "2026-12-02T07:59:00.000Z",
        detectedTime: "2026-12-02T07:59:02.000Z",
        actedTime: "2026-12-02T07:59:02.000Z",
      },
    ];
    t.job.status!.conditions = setCondition(
      [],
      { type: "FaultDetected", status: "True", reason: "CommunicationHang", message: "x" },
      1,
      new Date(START_MS),
    );
    t.add(collectives("comm-new", (START_MS + 1000) * 1000, 20));
    t.at(START_MS + 5000);
    await t.make().checkAll();
    expect(t.writer.calls).toEqual(["status  FaultDetected=False"]);
    expect(t.job.status!.conditions!.find((c) => c.type === "FaultDetected")).toMatchObject({
      status: "False",
      reason: "NoFault",
      message: expect.stringContaining("no fault in attempt 1; last fault (attempt 0)"),
    });
  });
});
