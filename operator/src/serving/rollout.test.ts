import { describe, expect, it } from "vitest";
import { planGroups, placeGroups, type Role, type StatusPlan } from "./pools.js";
import {
  observePod,
  planRollout,
  runningPlanFits,
  UNSCHEDULABLE_GRACE_MS,
  type ObservedPod,
  type RolloutStep,
} from "./rollout.js";

const pool = (tp: number, pp: number, replicas: number) => ({ tp, pp, replicas, gpus: tp * pp * replicas });
const plan = (over: Partial<StatusPlan>): StatusPlan => ({
  mode: "disaggregated",
  gpuModel: "H100-80GB",
  totalGpus: 0,
  goodputPerGpu: 1,
  ...over,
});
const coloc = (tp: number, pp: number, replicas: number) =>
  plan({ mode: "colocated", colocated: pool(tp, pp, replicas) });
const disagg = (p: [number, number, number], d: [number, number, number], affinity: "high" | "low" = "high") =>
  plan({ affinity, prefill: pool(...p), decode: pool(...d) });

/**
 * A tiny cluster the rollout is replayed on: pods created in one step are bound at once and Ready at the next;
 * deleted pods linger one step as terminating (still holding their GPUs), then are gone.
 */
class World {
  pods: (ObservedPod & { age: number; gone?: number })[] = [];
  readonly trace: string[] = [];

  constructor(
    readonly capacity: Record<string, number>,
    readonly lost = new Set<string>(),
  ) {}

  install(p: StatusPlan, hash: string): void {
    const { placed, blocked } = placeGroups("sd", hash, planGroups(p), this.free());
    if (blocked.length > 0) throw new Error(`fixture does not fit: ${blocked.map((g) => g.key).join(",")}`);
    for (const g of placed) for (const pod of g.pods) this.pods.push({ ...observed(pod, hash), ready: true, age: 1 });
  }

  free(): { nodeName: string; gpusFree: number }[] {
    return Object.entries(this.capacity).map(([nodeName, gpus]) => ({
      nodeName,
      gpusFree: gpus - this.pods.filter((p) => p.nodeName === nodeName && p.counted).reduce((s, p) => s + p.gpus, 0),
    }));
  }

  step(target: StatusPlan, hash: string, maxUnavailable = 1): RolloutStep {
    this.pods = this.pods.filter((p) => p.gone === undefined || p.gone > 0);
    for (const p of this.pods) {
      if (p.gone !== undefined) p.gone -= 1;
      else if (!p.failed && !this.lost.has(p.nodeName)) p.ready = true;
      p.age += 1;
    }
    const free = this.free();
    for (const n of free) if (n.gpusFree < 0) throw new Error(`node ${n.nodeName} overcommitted`);
    const step = planRollout({
      sdName: "sd",
      targetHash: hash,
      groups: planGroups(target),
      pods: this.pods,
      free,
      lostNodes: this.lost,
      maxUnavailable,
    });
    for (const name of step.delete) {
      const pod = this.pods.find((p) => p.name === name)!;
      pod.deleting = true;
      pod.ready = false;
      pod.gone = 1;
    }
    for (const g of step.create) for (const pod of g.pods) this.pods.push({ ...observed(pod, hash), age: 0 });
    const short = (name: string) => name.replace(/^sd-/, "");
    this.trace.push(
      [
        ...step.create.flatMap((g) => g.pods.map((p) => `+${short(p.name)}`)),
        ...step.delete.map((n) => `-${short(n)}`),
      ].join(" ") || (step.complete ? "done" : "wait"),
    );
    return step;
  }

  /** Ready, not terminating instances of a role (all plans). */
  readyInstances(role: Role): number {
    const keys = new Set<string>();
    const byInstance = new Map<string, ObservedPod[]>();
    for (const p of this.pods) {
      const key = `${p.hash}/${p.role}/${p.index}`;
      if (p.role !== role) continue;
      byInstance.set(key, [...(byInstance.get(key) ?? []), p]);
    }
    for (const [key, pods] of byInstance)
      if (pods.length === pods[0]!.instancePods && pods.every((p) => p.ready && !p.deleting)) keys.add(key);
    return keys.size;
  }
}

function observed(
  pod: {
    name: string;
    role: Role;
    index: number;
    worker: number;
    groupKey: string;
    groupPods: number;
    instancePods: number;
    nodeName: string;
    gpus: number;
  },
  hash: string,
): ObservedPod {
  const { name, role, index, worker, groupKey, groupPods, instancePods, nodeName, gpus } = pod;
  return {
    name,
    hash,
    role,
    index,
    worker,
    groupKey,
    groupPods,
    instancePods,
    nodeName,
    gpus,
    ready: false,
    failed: false,
    deleting: false,
    unschedulable: false,
    counted: true,
  };
}

/**
 * Steps until complete (or `limit`), checking after every step that each role served before still has a Ready instance.
 */
function replay(world: World, target: StatusPlan, hash: string, roles: Role[], limit = 20): RolloutStep[] {
  const steps: RolloutStep[] = [];
  for (let i = 0; i < limit; i++) {
    const step = world.step(target, hash);
    steps.push(step);
    for (const role of roles)
      expect(
        world.readyInstances(role),
        `${role} Ready after step ${i + 1} (${world.trace.join(" | ")})`,
      ).toBeGreaterThanOrEqual(1);
    if (step.complete) break;
  }
  return steps;
}

describe("planRollout replays", () => {
  it("surges when there is room: new pods first, old drained one per role per step as new ones turn Ready", () => {
    const world = new World({ n0: 8, n1: 8 });
    world.install(disagg([2, 1, 2], [1, 1, 2]), "old");
    const steps = replay(world, disagg([4, 1, 1], [1, 1, 3]), "new", ["prefill", "decode"]);
    expect(world.trace).toEqual([
      // n0 holds the old pods (6 GPUs): the TP4 prefill goes to n1 (8 free), decodes fill n0's two and n1.
      "+new-d0 +new-d1 +new-d2 +new-p0",
      // All new Ready: no old instance has to stay, but only one per role may be in flight.
      "-old-d1 -old-p1",
      "wait", // those two terminating
      "-old-d0 -old-p0",
      "wait",
      "done",
    ]);
    expect(steps.at(-1)).toMatchObject({
      complete: true,
      readyInstances: 4,
      desiredInstances: 4,
      delete: [],
      create: [],
    });
    expect(world.pods.every((p) => p.hash === "new")).toBe(true);
  });

  it("makes room one old instance at a time when the cluster cannot surge, never dropping the role to zero", () => {
    const world = new World({ n0: 4 });
    world.install(coloc(1, 1, 4), "old");
    const steps = replay(world, coloc(2, 1, 2), "new", ["colocated"]);
    expect(world.trace).toEqual([
      "-old-c3", // blocked: TP2 needs 2 free GPUs; removing c3 and c2 frees them, c3 first
      "wait",
      "-old-c2",
      "wait",
      "+new-c0",
      "-old-c1", // new c0 Ready: desired 2 − 1 ready = keep 1 old
      "wait",
      "-old-c0", // c1 still fits nowhere (1 GPU free); new c0 now serves, so the last old instance may go
      "wait",
      "+new-c1",
      "done",
    ]);
    expect(steps.at(-1)?.complete).toBe(true);
  });

  it("keeps a dropped role until the whole new plan is Ready (colocated → disaggregated)", () => {
    const world = new World({ n0: 8, n1: 8 });
    world.install(coloc(1, 1, 2), "old");
    replay(world, disagg([2, 1, 1], [1, 1, 2]), "new", [], 2);
    expect(world.trace).toEqual(["+new-d0 +new-d1 +new-p0", "-old-c0 -old-c1"]);
    // The colocated pool went only with the whole new plan Ready to take over.
    expect([world.readyInstances("prefill"), world.readyInstances("decode")]).toEqual([1, 2]);
    expect(world.step(disagg([2, 1, 1], [1, 1, 2]), "new").complete).toBe(false); // old pods still terminating
    expect(world.step(disagg([2, 1, 1], [1, 1, 2]), "new")).toMatchObject({ complete: true, readyInstances: 3 });
  });

  it("waits and says why when the only way forward would leave no Ready instance", () => {
    const world = new World({ n0: 2 });
    world.install(coloc(2, 1, 1), "old");
    const step = world.step(coloc(1, 2, 1), "new");
    expect(step).toMatchObject({ create: [], delete: [], complete: false });
    expect(step.waiting).toMatch(
      /1 group\(s\) of the new plan fit nowhere \(colocated-0 needs 2 GPUs\); removing old instances cannot make room/,
    );
    expect(world.readyInstances("colocated")).toBe(1);
  });

  it("honours maxUnavailable: drains at most that many old instances of a role at once", () => {
    const world = new World({ n0: 8, n1: 8 });
    world.install(coloc(1, 1, 4), "old");
    world.step(coloc(1, 1, 6), "new"); // all six new created
    const step = world.step(coloc(1, 1, 6), "new", 2);
    expect(step.delete).toEqual(["sd-old-c2", "sd-old-c3"]);
  });
});

describe("planRollout repairs the target plan", () => {
  const target = disagg([1, 4, 1], [1, 1, 1]);

  function running(capacity: Record<string, number>): World {
    const world = new World(capacity);
    world.install(target, "t");
    return world;
  }

  it("recreates a group whose worker pod is gone: the leader is deleted, then the whole group placed again", () => {
    const world = running({ n0: 2, n1: 3 });
    expect(world.pods.filter((p) => p.role === "prefill").map((p) => p.name)).toEqual(["sd-t-p0", "sd-t-p0-1"]);
    world.pods = world.pods.filter((p) => p.name !== "sd-t-p0-1");
    expect(world.step(target, "t")).toMatchObject({ delete: ["sd-t-p0"], create: [] });
    world.step(target, "t"); // leader terminating
    const again = world.step(target, "t");
    expect(again.create.map((g) => g.pods.map((p) => p.name))).toEqual([["sd-t-p0", "sd-t-p0-1"]]);
  });

  it("replaces a failed pod and the pods on a lost node", () => {
    const world = running({ n0: 8, n1: 8 });
    world.pods.find((p) => p.role === "decode")!.failed = true;
    expect(world.step(target, "t").delete).toEqual(["sd-t-d0"]);

    const lostWorld = new World({ n0: 8, n1: 8 });
    lostWorld.install(target, "t");
    lostWorld.lost.add(lostWorld.pods[0]!.nodeName);
    const step = lostWorld.step(target, "t");
    expect(step.delete.sort()).toEqual(
      lostWorld.pods
        .filter((p) => p.nodeName === lostWorld.pods[0]!.nodeName)
        .map((p) => p.name)
        .sort(),
    );
  });

  it("places a group again elsewhere when the scheduler refuses its pod on the planned node", () => {
    const world = running({ n0: 8, n1: 8 });
    const decode = world.pods.find((p) => p.role === "decode")!;
    decode.unschedulable = true;
    expect(world.step(target, "t").delete).toEqual([decode.name]);
  });

  it("is complete and idle when everything is Ready", () => {
    const world = running({ n0: 8 });
    expect(world.step(target, "t")).toMatchObject({
      create: [],
      delete: [],
      blocked: [],
      complete: true,
      readyInstances: 2,
      desiredInstances: 2,
    });
  });

  it("creates a fresh deployment's groups and reports what does not fit", () => {
    const world = new World({ n0: 4 });
    const step = world.step(disagg([2, 1, 1], [1, 1, 3]), "t");
    expect(step.create.map((g) => g.key)).toEqual(["decode-0", "decode-1", "prefill-0"]);
    expect(step.blocked.map((g) => g.key)).toEqual(["decode-2"]);
    expect(step.waiting).toBe("1 group(s) of the new plan wait for GPUs to free up");
  });
});

describe("runningPlanFits", () => {
  const running = disagg([2, 1, 1], [1, 1, 2]);
  const fitsIn = (world: World) =>
    runningPlanFits({
      sdName: "sd",
      plan: running,
      hash: "r",
      pods: world.pods,
      free: world.free().filter((n) => !world.lost.has(n.nodeName)),
      lostNodes: world.lost,
    });

  it("holds for a complete plan even with no GPU free", () => {
    const world = new World({ n0: 4 });
    world.install(running, "r");
    expect(fitsIn(world)).toBe(true);
  });

  it("holds when a group on a lost node can be placed again elsewhere, and not when it cannot", () => {
    const roomy = new World({ n0: 4, n1: 4 });
    roomy.install(running, "r");
    roomy.lost.add("n0");
    expect(fitsIn(roomy)).toBe(true);
    const tight = new World({ n0: 4, n1: 1 });
    tight.install(running, "r");
    tight.lost.add("n0");
    expect(fitsIn(tight)).toBe(false);
  });

  it("counts GPUs of the deployment's pods of other plans as reusable", () => {
    const world = new World({ n0: 4 });
    world.install(coloc(1, 1, 4), "old");
    expect(fitsIn(world)).toBe(true);
    world.capacity.n0 = 3;
    world.pods.pop();
    expect(fitsIn(world)).toBe(false);
  });
});

describe("observePod", () => {
  const base = (
    conditions: { type: string; status: string; reason?: string; lastTransitionTime?: Date }[],
    nodeName?: string,
  ) => ({
    metadata: {
      name: "sd-t-d0",
      labels: { "gpufleet.io/role": "decode", "gpufleet.io/plan-hash": "t", "gpufleet.io/instance": "0" },
    },
    spec: { nodeName, containers: [] },
    status: { phase: "Pending", conditions },
  });
  const since = new Date("2026-01-01T00:00:00Z");
  const refused = [{ type: "PodScheduled", status: "False", reason: "Unschedulable", lastTransitionTime: since }];

  it.each([
    ["refused past the grace", refused, undefined, since.getTime() + UNSCHEDULABLE_GRACE_MS, true],
    ["refused within the grace", refused, undefined, since.getTime() + UNSCHEDULABLE_GRACE_MS - 1, false],
    [
      "pending for another reason",
      [{ type: "PodScheduled", status: "False", reason: "SchedulerError", lastTransitionTime: since }],
      undefined,
      since.getTime() + 60_000,
      false,
    ],
    ["bound", refused, "n0", since.getTime() + 60_000, false],
  ])("marks a pod unschedulable only when %s", (_name, conditions, nodeName, nowMs, expected) => {
    expect(observePod(base(conditions, nodeName) as never, { nowMs })?.unschedulable).toBe(expected);
  });
});
