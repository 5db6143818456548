import type { KubernetesObject, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import type { ClusterCapacity, NodeCapacity } from "../../cluster/capacity.js";
import type { ServingExecutorOutcome } from "../controller.js";
import type { ServingPlanInput, ServingPlanOk, ServingPlanResult } from "../distserve/planner.js";
import { ScalingMemory } from "../scheduler/state.js";
import { createServingExecutor } from "./executor.js";

function node(name: string, gpusFree = 8): NodeCapacity {
  return {
    nodeName: name,
    gpuModel: "H100-80GB",
    gpuCount: 8,
    nicType: "infiniband",
    nicCount: 8,
    nicBandwidthGbps: 400,
    gpusAllocatable: 8,
    gpusFree,
    schedulable: true,
    isolated: false,
  } as NodeCapacity;
}

function sd(status?: ServingDeployment["status"], generation = 1, arrivalRatePerSec = 10): ServingDeployment {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name: "chat", namespace: "llm", uid: "uid-1", generation },
    spec: {
      model: {
        name: "llama",
        layers: 32,
        hiddenSize: 4096,
        heads: 32,
        kvHeads: 8,
        vocabSize: 128256,
        dtype: "bf16",
        paramsBillions: 8,
      },
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
      workload: { arrivalRatePerSec, preset: "chatbot" },
      gpu: { model: "H100-80GB" },
      mode: "disaggregated",
      engine: { image: "vllm", args: [], port: 8000, env: [] },
      scaling: { minInstances: 1 },
    },
    status,
  };
}

/** A planner answer: disaggregated high affinity with `p` prefill (TP pTp) and `d` decode (TP1) instances. */
const answer = (p: number, d: number, goodputPerGpu: number, pTp = 1): ServingPlanResult =>
  ({
    ok: true,
    mode: "disaggregated",
    gpuModel: "H100-80GB",
    affinity: "high",
    prefill: { tp: pTp, pp: 1, replicas: p, gpusPerReplica: pTp, goodputPerInstance: 5 },
    decode: { tp: 1, pp: 1, replicas: d, gpusPerReplica: 1, goodputPerInstance: 5 },
    goodputPerGpu,
    predictedAttainmentPercent: 95,
    totalGpus: p * pTp + d,
    colocated: null,
    disaggregated: null,
    placement: [],
    gpusByNode: [],
    explanation: `P${p} D${d}`,
  }) as unknown as ServingPlanOk;

class Fake {
  pods: V1Pod[] = [];
  applied: KubernetesObject[] = [];
  deleted: string[] = [];
  failApplyOf?: string;
  inputs: ServingPlanInput[] = [];
  next: ServingPlanResult = answer(1, 2, 5);

  readonly step: ReturnType<typeof createServingExecutor>;
  constructor(scaling?: ScalingMemory) {
    this.step = this.executor(scaling);
  }
  private executor = (scaling?: ScalingMemory) =>
    createServingExecutor({
      applier: {
        apply: async <T extends KubernetesObject>(object: T): Promise<T> => {
          if (object.metadata?.name === this.failApplyOf) throw new Error("admission webhook said no");
          this.applied.push(object);
          return object;
        },
        delete: async (object: KubernetesObject) => {
          this.deleted.push(`${object.kind}/${object.metadata?.name}`);
        },
      },
      pods: { list: () => this.pods },
      readConfigMap: async () => undefined,
      listServices: async () => [],
      clock: { now: () => 1_000 },
      plan: (input) => {
        this.inputs.push(input);
        return this.next;
      },
      scaling,
    });

  appliedPods(): V1Pod[] {
    return this.applied.filter((o): o is V1Pod => o.kind === "Pod");
  }

  /** The pod cache catches up: every applied pod bound to its pinned node and Ready. */
  catchUp(): void {
    this.pods = this.appliedPods().map((p) => ({
      ...p,
      metadata: { ...p.metadata, uid: `uid-${p.metadata?.name}` },
      spec: { ...p.spec!, nodeName: p.metadata?.annotations?.["gpufleet.io/node"] },
      status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
    }));
  }
}

const capacity = (nodes: NodeCapacity[]): ClusterCapacity => ({ nodes, invalidNodes: [] });
const withStatus = (outcome: ServingExecutorOutcome, generation = 1): ServingDeployment["status"] => ({
  ...outcome.status,
  observedGeneration: generation,
  conditions: outcome.conditions.map((c) => ({ ...c, lastTransitionTime: "2026-01-01T00:00:00Z" })),
});

describe("serving executor", () => {
  it("creates the planned pods once, reports the plan, and does not create them again while the cache lags", async () => {
    const fake = new Fake();
    const first = await fake.step(sd(), capacity([node("a"), node("b")]), ["H100-80GB"]);
    expect(
      fake
        .appliedPods()
        .map((p) => p.metadata?.name)
        .sort(),
    ).toEqual([
      expect.stringMatching(/^chat-[0-9a-f]{8}-d0$/),
      expect.stringMatching(/-d1$/),
      expect.stringMatching(/-p0$/),
    ]);
    expect(fake.applied.filter((o) => o.kind === "Service").map((o) => o.metadata?.name)).toEqual([
      "chat-decode",
      "chat-prefill",
      "chat-pods",
    ]);
    expect(first.status).toMatchObject({
      phase: "Progressing",
      planSummary: "disagg P1×TP1 D2×TP1 (3 GPU)",
      ready: "0/3",
      readyInstances: 0,
      desiredInstances: 3,
    });
    expect(first.events).toEqual([
      { type: "Normal", reason: "PlanReady", message: "disagg P1×TP1 D2×TP1 (3 GPU): P1 D2" },
    ]);
    expect(first.requeueAfterMs).toBe(2_000);

    // The cache has not seen the pods: nothing is created twice, nothing deleted.
    const before = fake.appliedPods().length;
    await fake.step(sd(withStatus(first)), capacity([node("a"), node("b")]), ["H100-80GB"]);
    expect(fake.appliedPods().length).toBe(before);
    expect(fake.deleted).toEqual([]);

    fake.catchUp();
    const ready = await fake.step(sd(withStatus(first)), capacity([node("a", 5), node("b")]), ["H100-80GB"]);
    expect(ready.status).toMatchObject({ phase: "Available", ready: "3/3" });
    expect(ready.events).toEqual([
      { type: "Normal", reason: "PodsReady", message: "all 3 instances of disagg P1×TP1 D2×TP1 (3 GPU) are ready" },
    ]);
    expect(ready.requeueAfterMs).toBeUndefined();
    // Its own 3 GPUs are given back to the planner: node a is whole again for it.
    expect(fake.inputs.at(-1)?.nodes.find((n) => n.nodeName === "a")?.gpusFree).toBe(8);
  });

  it("keeps the running plan when a new one is better by less than the band, and follows a spec change", async () => {
    const fake = new Fake();
    const first = await fake.step(sd(), capacity([node("a")]), ["H100-80GB"]);
    fake.catchUp();
    fake.next = answer(1, 3, 5.4); // 8% more goodput per GPU
    // A node joins: the planner runs again (its input changed) and finds the slightly better plan.
    const kept = await fake.step(sd(withStatus(first)), capacity([node("a", 5), node("b")]), ["H100-80GB"]);
    expect(fake.inputs).toHaveLength(2);
    expect(kept.status.planSummary).toBe("disagg P1×TP1 D2×TP1 (3 GPU)");
    expect(kept.events.map((e) => e.reason)).toEqual(["PodsReady"]);
    expect(fake.deleted).toEqual([]);

    const changed = await fake.step(sd(withStatus(kept), 2, 12), capacity([node("a", 5), node("b")]), ["H100-80GB"]);
    expect(changed.status.planSummary).toBe("disagg P1×TP1 D3×TP1 (4 GPU)");
    expect(changed.events).toEqual([
      {
        type: "Normal",
        reason: "PlanChanged",
        message: "disagg P1×TP1 D2×TP1 (3 GPU) → disagg P1×TP1 D3×TP1 (4 GPU) (SpecChanged): P1 D3",
      },
    ]);
  });

  it("says what is missing and keeps the old pods serving when a changed spec cannot be planned", async () => {
    const fake = new Fake();
    const first = await fake.step(sd(), capacity([node("a")]), ["H100-80GB"]);
    fake.catchUp();
    fake.next = { ok: false, reason: "InsufficientCapacity", message: "needs 40 H100-80GB GPUs …; missing 32" };
    const short = await fake.step(sd(withStatus(first), 2, 400), capacity([node("a", 5)]), ["H100-80GB"]);
    expect(short.status).toMatchObject({ phase: "Pending", plan: undefined });
    expect(short.conditions).toEqual(
      expect.arrayContaining([
        {
          type: "Planned",
          status: "False",
          reason: "InsufficientCapacity",
          message: "needs 40 H100-80GB GPUs …; missing 32",
        },
        {
          type: "InsufficientCapacity",
          status: "True",
          reason: "InsufficientCapacity",
          message:
            "needs 40 H100-80GB GPUs …; missing 32; 3 pod(s) of the previous plan (disagg P1×TP1 D2×TP1 (3 GPU)) keep serving",
        },
      ]),
    );
    expect(short.events).toEqual([
      { type: "Warning", reason: "InsufficientCapacity", message: "needs 40 H100-80GB GPUs …; missing 32" },
    ]);
    expect(fake.deleted).toEqual([]);

    // Other workloads free a GPU: the message moves with the count, but no second Warning for the same state.
    fake.next = { ok: false, reason: "InsufficientCapacity", message: "needs 40 H100-80GB GPUs …; missing 31" };
    const still = await fake.step(sd(withStatus(short, 2), 2, 400), capacity([node("a", 5), node("b", 1)]), [
      "H100-80GB",
    ]);
    expect(still.conditions.find((c) => c.type === "Planned")?.message).toMatch(/missing 31$/);
    expect(still.events).toEqual([]);
  });

  it("takes back the pods of a group it could not finish creating", async () => {
    const fake = new Fake();
    // One prefill instance of TP1×PP2 split over two 1-GPU nodes: leader and worker.
    fake.next = {
      ...answer(1, 1, 5),
      prefill: { tp: 1, pp: 2, replicas: 1, gpusPerReplica: 2, goodputPerInstance: 5 },
      totalGpus: 3,
    } as ServingPlanOk;
    const nodes = [node("a", 1), node("b", 1), node("c", 1)];
    const probe = await fake.step(sd(), capacity(nodes), ["H100-80GB"]);
    const worker = fake.appliedPods().find((p) => p.metadata?.name?.endsWith("-p0-1"))!.metadata!.name!;
    expect(probe.status.ready).toBe("0/2");

    const failing = new Fake();
    failing.next = fake.next;
    failing.failApplyOf = worker;
    await expect(failing.step(sd(), capacity(nodes), ["H100-80GB"])).rejects.toThrow(/admission webhook said no/);
    expect(failing.deleted).toContain(`Pod/${worker.replace(/-1$/, "")}`);
  });

  it("rolls out the autoscaler's desired counts on the running plan's hash, and deletes a scaled-in instance only once it is Drained", async () => {
    const memory = new ScalingMemory();
    const fake = new Fake(memory);
    const nodes = capacity([node("a"), node("b")]);
    const first = await fake.step(sd(), nodes, ["H100-80GB"]);
    const hash = first.status.scaling!.planHash;
    expect(first.status.scaling).toEqual({ planHash: hash, generation: 1, desired: { prefill: 1, decode: 2 } });
    fake.catchUp();
    let status = withStatus(first);

    // Scale-up: one more decode instance of the same plan, nothing else touched.
    memory.set("uid-1", { ...first.status.scaling!, desired: { prefill: 1, decode: 3 } });
    const up = await fake.step(sd(status), capacity([node("a", 5), node("b")]), ["H100-80GB"]);
    expect(fake.appliedPods().map((p) => p.metadata?.name)).toContain(`chat-${hash}-d2`);
    expect(fake.deleted).toEqual([]);
    expect(up.status).toMatchObject({
      ready: "3/4",
      planSummary: "disagg P1×TP1 D2×TP1 (3 GPU)",
      scaling: { desired: { decode: 3 } },
    });
    fake.catchUp();
    status = withStatus(up);

    // Scale-in of d0: kept while it drains, deleted once Drained.
    const drain = {
      pod: `chat-${hash}-d0`,
      role: "decode" as const,
      index: 0,
      startedTime: "2026-01-01T00:00:00Z",
      deadlineTime: "2026-01-01T00:10:00Z",
    };
    memory.set("uid-1", {
      ...up.status.scaling!,
      desired: { prefill: 1, decode: 2 },
      draining: [{ ...drain, state: "Draining" }],
    });
    await fake.step(sd(status), capacity([node("a", 4), node("b")]), ["H100-80GB"]);
    expect(fake.deleted).toEqual([]);
    memory.set("uid-1", {
      ...up.status.scaling!,
      desired: { prefill: 1, decode: 2 },
      draining: [{ ...drain, state: "Drained" }],
    });
    const down = await fake.step(sd(status), capacity([node("a", 4), node("b")]), ["H100-80GB"]);
    expect(fake.deleted).toEqual([`Pod/chat-${hash}-d0`]);
    expect(down.status.scaling?.draining).toEqual([{ ...drain, state: "Drained" }]);
    // Once the pod is gone from the cache the entry goes too.
    fake.pods = fake.pods.filter((p) => p.metadata?.name !== `chat-${hash}-d0`);
    const after = await fake.step(sd(withStatus(down)), capacity([node("a", 5), node("b")]), ["H100-80GB"]);
    expect(after.status.scaling).toEqual({ planHash: hash, generation: 1, desired: { prefill: 1, decode: 2 } });
    expect(after.status.ready).toBe("3/3");
  });

  it("resets the autoscaler's counts to the planner's when the spec changes", async () => {
    const memory = new ScalingMemory();
    const fake = new Fake(memory);
    const first = await fake.step(sd(), capacity([node("a")]), ["H100-80GB"]);
    fake.catchUp();
    memory.set("uid-1", { ...first.status.scaling!, desired: { prefill: 1, decode: 4 } });
    const changed = await fake.step(sd(withStatus(first), 2), capacity([node("a", 5)]), ["H100-80GB"]);
    expect(changed.status.scaling).toMatchObject({ generation: 2, desired: { prefill: 1, decode: 2 } });
  });
});
