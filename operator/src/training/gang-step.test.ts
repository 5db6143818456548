/**
 * The gang step driven through whole lifecycles against an in-memory cluster (pods as the API server would keep
 * them, a pod cache that can lag), the reconciler's status merge reproduced: place → run → fail → back off →
 * re-place elsewhere from the checkpoint → budget spent.
 */
import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { setCondition, type Condition } from "../../../crds/src/conditions.js";
import { GpuResource } from "../../../crds/src/topology.js";
import type { TrainingJob, TrainingJobSpec } from "../../../crds/src/training-job.js";
import { gpuRequest, type ClusterCapacity, type NodeCapacity } from "../cluster/capacity.js";
import type { TrainingGangOutcome } from "./controller.js";
import { cluster } from "./builders.js";
import { createTrainingGangStep } from "./gang-step.js";
import type { CandidateNode } from "./types.js";

class FakeCluster {
  readonly pods = new Map<string, V1Pod>();
  readonly services: KubernetesObject[] = [];
  readonly log: string[] = [];
  /** When set, the pod cache shows only pods created before this point (a lagging informer). */
  cacheFrozenAt: Set<string> | undefined;
  failCreateOf: string | undefined;
  /** When set, every create waits for it (an API call still in flight while another reconcile runs). */
  createGate: Promise<void> | undefined;
  private uid = 0;

  constructor(public nodes: CandidateNode[]) {}

  readonly applier = {
    apply: async <T extends KubernetesObject>(object: T): Promise<T> => {
      await this.createGate;
      if (object.kind !== "Service") throw new Error(`the gang step applies only its Service, not ${object.kind}`);
      this.services.push(object);
      return object;
    },
    create: async <T extends KubernetesObject>(object: T): Promise<T> => {
      await this.createGate;
      const name = object.metadata!.name!;
      if (this.pods.has(name)) throw new Error(`pods "${name}" already exists`);
      if (name === this.failCreateOf) throw new Error(`admission webhook denied ${name}`);
      const pod = structuredClone(object) as V1Pod;
      pod.metadata!.uid = `uid-${++this.uid}`;
      pod.status = { phase: "Pending" };
      this.pods.set(name, pod);
      this.log.push(`create ${name}@${pod.spec!.nodeName}`);
      return object;
    },
    delete: async (object: KubernetesObject): Promise<void> => {
      this.pods.delete(object.metadata!.name!);
      this.log.push(`delete ${object.metadata!.name}`);
    },
  };

  readonly podCache = {
    list: (): V1Pod[] =>
      [...this.pods.values()].filter(
        (p) => this.cacheFrozenAt === undefined || this.cacheFrozenAt.has(p.metadata!.name!),
      ),
  };

  setPhase(name: string, phase: string): void {
    this.pods.get(name)!.status = { phase };
  }

  runAll(): void {
    for (const p of this.pods.values()) p.status = { phase: "Running" };
  }

  capacity(): ClusterCapacity {
    const used = new Map<string, number>();
    for (const p of this.podCache.list()) {
      if (p.status?.phase === "Failed" || p.status?.phase === "Succeeded") continue;
      used.set(p.spec!.nodeName!, (used.get(p.spec!.nodeName!) ?? 0) + gpuRequest(p));
    }
    const nodes: NodeCapacity[] = this.nodes.map((n) => ({
      ...n,
      gpusAllocatable: n.gpuCount,
      gpusFree: Math.min(n.gpusFree, n.gpuCount - (used.get(n.nodeName) ?? 0)),
    }));
    return { nodes, invalidNodes: [] };
  }

  podNames(): string[] {
    return [...this.pods.keys()].sort();
  }

  nodesOf(): string[] {
    return [...this.pods.values()].map((p) => p.spec!.nodeName!).sort();
  }
}

function makeJob(name: string, change: Partial<TrainingJobSpec> = {}): TrainingJob {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "TrainingJob",
    metadata: { name, namespace: "ml", uid: `job-${name}`, generation: 1 },
    spec: {
      image: "trainer:1",
      command: ["torchrun", "train.py"],
      args: [],
      env: [{ name: "NCCL_DEBUG", value: "INFO" }],
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
      checkpoint: { path: "/ckpt/llm", intervalSteps: 100 },
      faultPolicy: { maxRestarts: 2, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 10 },
      placement: { nicAware: true },
      ...change,
    },
  };
}

/** Runs the step and merges its outcome into the job the way TrainingJobReconciler does. */
function harness(c: FakeCluster, opts: { nowMs?: number } = {}) {
  let nowMs = opts.nowMs ?? Date.parse("2026-01-01T00:00:00Z");
  const step = createTrainingGangStep({
    applier: c.applier,
    pods: c.podCache,
    clock: { now: () => nowMs },
    concurrency: 4,
  });
  const events: { job: string; type: string; reason: string; message: string }[] = [];
  return {
    events,
    advance(ms: number) {
      nowMs += ms;
    },
    async step(job: TrainingJob): Promise<TrainingGangOutcome> {
      const capacity = c.capacity();
      const outcome = await step(job, capacity, capacity.nodes);
      let conditions: Condition[] = job.status?.conditions ?? [];
      for (const x of outcome.conditions) conditions = setCondition(conditions, x, 1, new Date(nowMs));
      job.status = JSON.parse(
        JSON.stringify({ ...job.status, ...outcome.status, conditions }),
      ) as TrainingJob["status"];
      for (const e of outcome.events) events.push({ job: job.metadata.name!, ...e });
      return outcome;
    },
  };
}

/** A 2-node job placed and Running on an InfiniBand island of `nodes` nodes. */
async function runningGang(nodes: number) {
  const c = new FakeCluster(cluster().island("ib", "infiniband", nodes).build());
  const h = harness(c);
  const job = makeJob("llm");
  await h.step(job);
  c.runAll();
  await h.step(job);
  return { c, h, job };
}

const cond = (job: TrainingJob, type: string) => job.status?.conditions?.find((c) => c.type === type);
const envOf = (pod: V1Pod) => Object.fromEntries((pod.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value]));

describe("training gang step", () => {
  it("binds the whole gang to its planned nodes, then reports Running", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 2).island("eth", "ethernet", 2).build());
    const h = harness(c);
    const job = makeJob("llm");
    await h.step(job);

    expect(c.podNames()).toEqual(["llm-0", "llm-1"]);
    expect(c.nodesOf()).toEqual(["ib-n000", "ib-n001"]);
    expect(c.services.map((s) => s.metadata?.name)).toEqual(["llm"]);
    const pod = c.pods.get("llm-1")!;
    expect(pod.spec).toMatchObject({ hostname: "llm-1", subdomain: "llm", restartPolicy: "Never" });
    expect(pod.spec!.containers[0]!.resources).toEqual({
      requests: { [GpuResource]: "8" },
      limits: { [GpuResource]: "8" },
    });
    expect(pod.metadata!.ownerReferences).toEqual([
      {
        apiVersion: "gpufleet.io/v1alpha1",
        kind: "TrainingJob",
        name: "llm",
        uid: "job-llm",
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(envOf(pod)).toMatchObject({
      MASTER_ADDR: "llm-0.llm.ml.svc",
      WORLD_SIZE: "16",
      NODE_RANK: "1",
      GPUFLEET_RESUME_STEP: "0",
      GPUFLEET_CHECKPOINT_PATH: "/ckpt/llm",
      NCCL_DEBUG: "INFO",
    });
    expect(job.status).toMatchObject({
      phase: "Placed",
      restarts: 0,
      ready: "0/2",
      placement: { nodes: ["ib-n000", "ib-n001"], islands: ["ib"] },
    });
    expect(cond(job, "Placed")).toMatchObject({ status: "True", reason: "PlanReady" });
    expect(cond(job, "Unschedulable")?.status).toBe("False");
    expect(h.events.map((e) => e.reason)).toEqual(["Placed"]);

    c.runAll();
    await h.step(job);
    expect(job.status).toMatchObject({ phase: "Running", ready: "2/2" });
    expect(cond(job, "Running")).toMatchObject({ status: "True", reason: "PodsReady" });
    await h.step(job);
    expect(h.events.map((e) => e.reason)).toEqual(["Placed", "PodsReady"]);
    expect(c.log.filter((l) => l.startsWith("create"))).toHaveLength(2);
  });

  it("re-emits an Event whose status write was lost, and never repeats one whose write landed", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 2).build());
    const h = harness(c);
    const job = makeJob("llm");
    await h.step(job);
    c.runAll();
    // This reconcile's status write loses a race (409): its outcome, PodsReady included, never reaches the API.
    const lost = structuredClone(job);
    await h.step(lost);
    expect(h.events.map((e) => e.reason)).toEqual(["Placed", "PodsReady"]);
    h.events.length = 0;
    // The retry reads the status the API server still holds (phase Placed) and says it again.
    await h.step(job);
    expect(h.events.map((e) => e.reason)).toEqual(["PodsReady"]);
    await h.step(job);
    expect(h.events.map((e) => e.reason)).toEqual(["PodsReady"]);
  });

  it("binds nothing when the whole gang does not fit, and says what is missing", async () => {
    const nodes = cluster().island("ib", "infiniband", 3).gpusFree(4, "ib-n001").isolate("ib-n002").build();
    const c = new FakeCluster(nodes);
    const h = harness(c);
    const job = makeJob("big");
    const outcome = await h.step(job);
    expect(c.pods.size).toBe(0);
    expect(c.services).toHaveLength(0);
    expect(job.status?.phase).toBe("Pending");
    expect(cond(job, "Unschedulable")).toMatchObject({ status: "True", reason: "InsufficientCapacity" });
    expect(cond(job, "Unschedulable")?.message).toMatch(
      /^needs 2 nodes with 8 free GPUs; 1 usable, 1 isolated, 1 with fewer than 8 free GPUs \(short by 1\)/,
    );
    expect(outcome.requeueAfterMs).toBeGreaterThan(0);
    await h.step(job);
    expect(h.events.map((e) => e.reason)).toEqual(["InsufficientCapacity"]);
  });

  it("restarts the whole gang after a member fails: backoff, other nodes, resume from the checkpoint", async () => {
    const { c, h, job } = await runningGang(4);
    const firstNodes = c.nodesOf();
    job.status = { ...job.status, lastCheckpointStep: 1200 };

    c.setPhase("llm-1", "Failed");
    const restart = await h.step(job);
    expect(c.pods.size).toBe(0);
    expect(job.status).toMatchObject({ phase: "Restarting", restarts: 1, ready: "0/2" });
    expect(job.status?.placement).toBeUndefined();
    expect(Date.parse(job.status!.nextRestartTime!)).toBe(Date.parse("2026-01-01T00:00:10Z"));
    expect(restart.requeueAfterMs).toBe(10_000);
    expect(cond(job, "Restarting")).toMatchObject({ status: "True", reason: "GangMemberFailed" });
    expect(cond(job, "Restarting")?.message).toMatch(
      /^pod llm-1 \(node ib-n001\) failed; restarting the whole gang \(restart 1 of 2\) from step 1200 after 10s/,
    );
    expect(h.events.at(-1)).toMatchObject({ type: "Warning", reason: "GangMemberFailed" });

    h.advance(4_000);
    const waiting = await h.step(job);
    expect(c.pods.size).toBe(0);
    expect(waiting.requeueAfterMs).toBe(6_000);

    h.advance(6_000);
    await h.step(job);
    expect(c.podNames()).toEqual(["llm-0", "llm-1"]);
    expect(c.nodesOf()).not.toContain("ib-n001");
    expect(c.nodesOf()).not.toEqual(firstNodes);
    for (const pod of c.pods.values()) {
      expect(envOf(pod).GPUFLEET_RESUME_STEP).toBe("1200");
      expect(pod.metadata!.annotations!["gpufleet.io/attempt"]).toBe("1");
    }
    expect(job.status).toMatchObject({ phase: "Placed", restarts: 1 });
    expect(job.status?.nextRestartTime).toBeUndefined();
    expect(cond(job, "Restarting")?.status).toBe("False");
  });

  it("keeps the nodes to avoid in status, so a restarted operator (fresh memory) still avoids them", async () => {
    const { c, h, job } = await runningGang(4);
    c.setPhase("llm-1", "Failed");
    await h.step(job);
    expect(job.status).toMatchObject({ phase: "Restarting", avoidNodes: ["ib-n001"] });

    // A new leader: nothing in memory, only the job's status as the API server holds it.
    const restarted = harness(c, { nowMs: Date.parse("2026-01-01T00:00:11Z") });
    await restarted.step(job);
    expect(c.podNames()).toEqual(["llm-0", "llm-1"]);
    expect(c.nodesOf()).not.toContain("ib-n001");
    expect(job.status).toMatchObject({ phase: "Placed", restarts: 1 });
    expect(job.status?.avoidNodes).toBeUndefined();
  });

  it("restarts when a member's node is isolated, re-placing without it", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 3).build());
    const h = harness(c);
    const job = makeJob("llm", {
      faultPolicy: { maxRestarts: 3, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 0 },
    });
    await h.step(job);
    c.runAll();
    await h.step(job);
    const victim = c.pods.get("llm-0")!.spec!.nodeName!;
    c.nodes = c.nodes.map((n) => (n.nodeName === victim ? { ...n, isolated: true, schedulable: false } : n));
    await h.step(job);
    expect(cond(job, "Restarting")?.message).toContain(`node ${victim} isolated`);
    await h.step(job);
    expect(c.pods.size).toBe(2);
    expect(c.nodesOf()).not.toContain(victim);
  });

  it("restarts once for a fault C4D recorded that tainted nothing (a NIC), avoiding its node, and not again in the next attempt", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 3).build());
    const h = harness(c);
    const job = makeJob("llm", {
      faultPolicy: { maxRestarts: 3, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 0 },
    });
    await h.step(job);
    c.runAll();
    await h.step(job);
    job.status!.lastCheckpointStep = 300;
    const victim = c.pods.get("llm-1")!.spec!.nodeName!;
    const fault = {
      id: `0-slow-sender-${victim}-mlx5_0`,
      attempt: 0,
      faultClass: "slow-sender" as const,
      action: "mark-nic" as const,
      node: victim,
      nic: "mlx5_0",
      ranks: [8],
      communicator: "c",
      collective: "AllReduce",
      sequence: 9,
      evidenceRanks: [8],
      detail: "slow row",
      timesMs: {},
      firstAffectedTime: "2026-01-01T00:00:00Z",
      detectedTime: "2026-01-01T00:00:05Z",
      actedTime: "2026-01-01T00:00:05Z",
    };
    job.status!.faults = [fault];
    await h.step(job);
    expect(job.status).toMatchObject({ phase: "Restarting", restarts: 1, avoidNodes: [victim] });
    expect(cond(job, "Restarting")?.message).toBe(
      `fault detection found slow-sender on node ${victim} (NIC mlx5_0); restarting the whole gang (restart 1 of 3) from step 300 after 0s`,
    );
    expect(c.pods.size).toBe(0);
    await h.step(job);
    expect(c.nodesOf()).not.toContain(victim);
    expect(envOf(c.pods.get("llm-0")!).GPUFLEET_RESUME_STEP).toBe("300");
    c.runAll();
    await h.step(job);
    // The record names attempt 0; the gang now runs attempt 1, which it does not restart.
    expect(job.status).toMatchObject({ phase: "Running", restarts: 1, faults: [fault] });
  });

  it("restarts for a recorded fault of this attempt even when an admin already removed the node's taint", async () => {
    const { c, h, job } = await runningGang(3);
    const node = c.pods.get("llm-0")!.spec!.nodeName!;
    job.status!.faults = [
      {
        id: `0-hang-${node}`,
        attempt: 0,
        faultClass: "hang",
        action: "isolate-node",
        node,
        ranks: [0],
        communicator: "c",
        collective: "AllReduce",
        sequence: 1,
        evidenceRanks: [1],
        detail: "rank 0 never entered",
        timesMs: {},
        firstAffectedTime: "2026-01-01T00:00:00Z",
        detectedTime: "2026-01-01T00:00:02Z",
        actedTime: "2026-01-01T00:00:02Z",
      },
    ];
    await h.step(job);
    expect(job.status).toMatchObject({ phase: "Restarting", restarts: 1, avoidNodes: [node] });
    expect(cond(job, "Restarting")?.message).toMatch(
      new RegExp(`^fault detection found hang on node ${node}; restarting`),
    );
  });

  it("falls back to a failed member's node when the cluster has no other", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 2).build());
    const h = harness(c);
    const job = makeJob("llm", {
      faultPolicy: { maxRestarts: 3, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 0 },
    });
    await h.step(job);
    c.runAll();
    await h.step(job);
    c.pods.delete("llm-0"); // deleted by a user
    await h.step(job);
    expect(cond(job, "Restarting")?.message).toMatch(/^pod llm-0 \(node ib-n00\d\) failed/);
    await h.step(job);
    expect(c.nodesOf()).toEqual(["ib-n000", "ib-n001"]);
    expect(job.status).toMatchObject({ phase: "Placed", restarts: 1 });
  });

  it("fails the job when the restart budget is spent, deleting the gang, and stays failed", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 4).build());
    const h = harness(c);
    const job = makeJob("llm", {
      faultPolicy: { maxRestarts: 1, slowRankTolerancePercent: 30, hangTimeoutSeconds: 60, restartBackoffSeconds: 0 },
    });
    await h.step(job);
    c.setPhase("llm-0", "Failed");
    await h.step(job);
    await h.step(job);
    expect(job.status).toMatchObject({ phase: "Placed", restarts: 1 });
    c.setPhase("llm-1", "Failed");
    await h.step(job);
    expect(c.pods.size).toBe(0);
    expect(job.status).toMatchObject({ phase: "Failed", restarts: 1 });
    expect(cond(job, "Failed")).toMatchObject({ status: "True", reason: "RestartBudgetExhausted" });
    expect(cond(job, "Failed")?.message).toMatch(
      /^pod llm-1 \(node ib-n00\d\) failed; restart budget spent \(1 of maxRestarts 1 used\)$/,
    );
    expect(h.events.map((e) => e.reason)).toEqual(["Placed", "GangMemberFailed", "Placed", "RestartBudgetExhausted"]);

    // A reconcile on a cache that still shows the old status neither re-places nor counts again.
    const stale = makeJob("llm", { faultPolicy: job.spec.faultPolicy });
    stale.status = { phase: "Placed", restarts: 1 };
    await h.step(stale);
    expect(c.pods.size).toBe(0);
    expect(stale.status).toMatchObject({ phase: "Failed", restarts: 1 });
  });

  it("waits for pods the cache has not shown yet, and keeps their GPUs from the next job", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 3).build());
    const h = harness(c);
    c.cacheFrozenAt = new Set();
    const a = makeJob("a");
    await h.step(a);
    await h.step(a);
    expect(a.status?.phase).toBe("Placed");
    expect(c.log.filter((l) => l.startsWith("create"))).toHaveLength(2);

    const b = makeJob("b");
    await h.step(b);
    expect(c.pods.size).toBe(2);
    expect(cond(b, "Unschedulable")?.status).toBe("True");
    expect(cond(b, "Unschedulable")?.message).toMatch(/1 usable/);
  });

  it("claims a placement's GPUs before its first API call, so a job reconciled meanwhile cannot take them", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 3).build());
    const h = harness(c);
    let release: () => void = () => {};
    c.createGate = new Promise<void>((r) => (release = r));
    const a = makeJob("a");
    const b = makeJob("b");
    const placingA = h.step(a); // waits on its API calls: none of a's pods exists yet
    const placingB = h.step(b); // another worker reconciles b meanwhile
    release();
    await Promise.all([placingA, placingB]);
    expect(c.pods.size).toBe(2);
    expect(new Set(c.nodesOf()).size).toBe(2);
    expect(cond(b, "Unschedulable")?.status).toBe("True");
  });

  it("rolls back a gang whose creation failed part way", async () => {
    const c = new FakeCluster(cluster().island("ib", "infiniband", 4).build());
    const h = harness(c);
    const job = makeJob("llm", { nodes: 4, parallelism: { tp: 8, pp: 1, dp: 4 } });
    c.failCreateOf = "llm-3";
    await expect(h.step(job)).rejects.toThrow(
      /creating the gang of ml\/llm failed after \d of 4 pods; the created ones were deleted again/,
    );
    expect(c.pods.size).toBe(0);
    c.failCreateOf = undefined;
    await h.step(job);
    expect(c.pods.size).toBe(4);
  });

  it("tears the gang down and places it anew when the spec changes, without counting a restart", async () => {
    const { c, h, job } = await runningGang(4);
    job.spec = { ...job.spec, image: "trainer:2" };
    await h.step(job);
    expect(c.pods.size).toBe(0);
    expect(cond(job, "Placed")).toMatchObject({ status: "False", reason: "PlanChanged" });
    await h.step(job);
    expect([...c.pods.values()].map((p) => p.spec!.containers[0]!.image)).toEqual(["trainer:2", "trainer:2"]);
    expect(job.status).toMatchObject({ phase: "Placed", restarts: 0 });
  });
});
