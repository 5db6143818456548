import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { SendWorkerCommandResponse__Output } from "../../../../agent/src/grpc/generated/gpufleet/agent/v1/SendWorkerCommandResponse.js";
import type { WorkerCommand } from "../../../../agent/src/grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { DEFAULT_AUTOSCALE_CONFIG, type ScalingDecision } from "../../../../common/src/scheduler/autoscale-policy.js";
import { DEFAULT_MIGRATION_POLICY, type PlannedMigration } from "../../../../common/src/scheduler/migration-policy.js";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import { OperatorMetrics } from "../../metrics.js";
import type { InstanceLoad } from "../../telemetry/read-model.js";
import { planHash } from "../pools.js";
import { observePod } from "../rollout.js";
import { coloc } from "./fixtures.test-support.js";
import { ServingScheduler } from "./scheduler.js";
import { ScalingMemory } from "./state.js";

const PLAN = coloc(3);
const ENGINE = { image: "vllm", args: [], port: 8000, env: [] };
const HASH = planHash(PLAN, ENGINE);

function deployment(autoscale = true): ServingDeployment {
  return {
    apiVersion: "gpufleet.io/v1alpha1",
    kind: "ServingDeployment",
    metadata: { name: "chat", namespace: "llm", uid: "sd-uid", generation: 1 },
    spec: {
      model: {
        name: "llama",
        layers: 32,
        hiddenSize: 4096,
        heads: 32,
        vocabSize: 128256,
        dtype: "bf16",
        paramsBillions: 8,
      },
      slo: { ttftMs: 250, tpotMs: 100, attainmentPercent: 90 },
      workload: { arrivalRatePerSec: 10, preset: "chatbot" },
      gpu: { model: "H100-80GB" },
      mode: "colocated",
      engine: ENGINE,
      scaling: { minInstances: 1, autoscale },
    },
    status: { observedGeneration: 1, phase: "Available", plan: PLAN },
  };
}

function pod(index: number): V1Pod {
  return {
    metadata: {
      name: `chat-${HASH}-c${index}`,
      namespace: "llm",
      uid: `pod-${index}`,
      ownerReferences: [{ apiVersion: "gpufleet.io/v1alpha1", kind: "ServingDeployment", name: "chat", uid: "sd-uid" }],
      labels: {
        "gpufleet.io/serving-deployment": "chat",
        "gpufleet.io/role": "colocated",
        "gpufleet.io/instance": String(index),
        "gpufleet.io/plan-hash": HASH,
        "gpufleet.io/worker": "0",
      },
    },
    spec: { nodeName: "n1", containers: [{ name: "engine", resources: { requests: { "nvidia.com/gpu": "1" } } }] },
    status: { phase: "Running", conditions: [{ type: "Ready", status: "True" }] },
  };
}

class World {
  nowMs = 100_000;
  sd = deployment();
  pods = [0, 1, 2].map(pod);
  loads = new Map<string, InstanceLoad>();
  commands: {
    node: string;
    workerId: string;
    command: WorkerCommand;
    timeoutMs?: number;
    answer(ack: Partial<SendWorkerCommandResponse__Output>): void;
    fail(err: Error): void;
  }[] = [];
  events: { type: string; reason: string; message: string }[] = [];
  enqueued: string[] = [];
  planned: PlannedMigration[] = [];
  migrationInputs: string[][] = [];
  decision: ScalingDecision = { kind: "hold", role: "", reason: "every pool within its freeness band and SLO" };
  memory = new ScalingMemory();
  metrics = new OperatorMetrics({ defaultMetrics: false });
  scheduler = new ServingScheduler({
    servingDeployments: { list: () => [this.sd] },
    pods: { list: () => this.pods },
    nodes: {
      list: () => [
        {
          metadata: { name: "n1", labels: { "gpufleet.io/gpu-model": "H100-80GB", "gpufleet.io/gpu-count": "8" } },
          status: { allocatable: { "nvidia.com/gpu": "8" } },
        },
      ],
    },
    telemetry: { loadOf: (key) => (key === "llm/chat" ? [...this.loads.values()] : []) },
    agents: {
      sendWorkerCommand: (node, workerId, command, timeoutMs) =>
        new Promise<SendWorkerCommandResponse__Output>((resolve, reject) => {
          this.commands.push({
            node,
            workerId,
            command,
            timeoutMs,
            answer: (ack) =>
              resolve({
                commandId: command.commandId!,
                outcome: "applied",
                reason: "",
                acknowledgedUnixMs: this.nowMs,
                ...ack,
              }),
            fail: reject,
          });
        }),
    },
    events: { record: async (_object, type, reason, message) => void this.events.push({ type, reason, message }) },
    metrics: this.metrics,
    clock: { now: () => this.nowMs, setTimeout: () => 0, clearTimeout: () => {} },
    logger: { info: () => {}, warn: () => {}, debug: () => {} },
    memory: this.memory,
    enqueue: (key) => this.enqueued.push(key),
    policies: {
      planMigrations: (instances) => {
        this.migrationInputs.push(instances.map((i) => i.id));
        return this.planned.filter((m) => !instances.find((i) => i.id === m.sourceId)?.migrating);
      },
      decideScaling: () => this.decision,
      migrationConfig: DEFAULT_MIGRATION_POLICY,
      autoscaleConfig: DEFAULT_AUTOSCALE_CONFIG,
    },
    config: { drainDeadlineMs: 60_000, digest: { windowMs: 60_000, burst: 10 } },
  });

  constructor() {
    const observed = this.pods.map((p) => observePod(p)!);
    this.memory.resolve(this.sd, PLAN, HASH, observed);
    for (const i of [0, 1, 2]) this.report(i, {});
  }

  report(index: number, over: Partial<InstanceLoad>): void {
    this.loads.set(`c${index}`, {
      workerId: `pod-${index}/0`,
      podNamespace: "llm",
      podName: `chat-${HASH}-c${index}`,
      node: "n1",
      unixMs: this.nowMs,
      receivedUnixMs: this.nowMs,
      queueLength: 0,
      runningRequests: 0,
      kvCacheUsedFraction: 0,
      kvCacheUsedBytes: 0,
      ttftMs: 0,
      tpotMs: 0,
      tokensPerSecond: 0,
      kvBlocksTotal: 1000,
      kvBlocksUsed: 0,
      blockSizeTokens: 16,
      engineUrl: `http://127.0.0.1:9/instances/pod-${index}`,
      role: "colocated",
      ...over,
    });
  }

  async settle(): Promise<void> {
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }

  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await this.metrics.registry.getSingleMetric(name)!.get();
    return m.values
      .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
      .reduce((s, v) => s + v.value, 0);
  }
}

const move = (requestId: string, from: number, to: number): PlannedMigration => ({
  requestId,
  sourceId: `pod-${from}/0`,
  destinationId: `pod-${to}/0`,
  blocks: 4,
  reason: "load-balance",
});

describe("ServingScheduler: migrations", () => {
  it("sends each planned move as MigrateOut to the source's worker on its node, at most one per instance in flight, and records the outcome", async () => {
    const w = new World();
    w.planned = [move("r1", 0, 1), move("r2", 0, 2), move("r3", 2, 1)];
    w.scheduler.tick();
    // r2 shares the source and r3 the destination with r1: only r1 goes now.
    expect(w.commands).toHaveLength(1);
    expect(w.commands[0]).toMatchObject({
      node: "n1",
      workerId: "pod-0/0",
      timeoutMs: 30_000,
      command: {
        migrateOut: {
          requestId: "r1",
          targetWorkerId: "pod-1/0",
          targetPod: `llm/chat-${HASH}-c1`,
          targetUrl: "http://127.0.0.1:9/instances/pod-1",
        },
      },
    });
    expect(await w.metric("gpufleet_operator_serving_migrations_in_flight")).toBe(1);
    w.scheduler.tick();
    expect(w.commands).toHaveLength(1);
    w.commands[0]!.answer({ outcome: "applied", reason: "committed after 3 stages; downtime 7.5 ms" });
    await w.settle();
    expect(await w.metric("gpufleet_operator_serving_migrations_total", { outcome: "completed" })).toBe(1);
    expect(await w.metric("gpufleet_operator_serving_migrations_in_flight")).toBe(0);
    expect(
      await w.metrics.registry.getSingleMetricAsString("gpufleet_operator_serving_migration_downtime_seconds"),
    ).toMatch(/_sum 0\.0075\n[^]*_count 1$/);
    expect(w.events).toEqual([
      {
        type: "Normal",
        reason: "MigrationCompleted",
        message: `migrated request r1 from chat-${HASH}-c0 to chat-${HASH}-c1, downtime 7.5 ms`,
      },
    ]);
    // Both ends are free again: the next period sends the next move.
    w.planned = [move("r2", 0, 2)];
    w.scheduler.tick();
    expect(w.commands.map((c) => c.command.migrateOut?.requestId)).toEqual(["r1", "r2"]);
  });

  it.each([
    [
      "failed by the worker",
      (c: World["commands"][number]) => c.answer({ outcome: "failed", reason: "destination out of memory" }),
      "failed",
      "destination out of memory",
    ],
    [
      "rejected by the worker",
      (c: World["commands"][number]) => c.answer({ outcome: "rejected", reason: "request r1 is not running here" }),
      "rejected",
      "request r1 is not running here",
    ],
    [
      "not delivered",
      (c: World["commands"][number]) => c.fail(new Error("14 UNAVAILABLE: connection refused")),
      "unreachable",
      "the command did not reach pod-0/0's worker: 14 UNAVAILABLE: connection refused",
    ],
  ])("counts a migration %s and says the request stays on its source", async (_name, finish, outcome, reason) => {
    const w = new World();
    w.planned = [move("r1", 0, 1)];
    w.scheduler.tick();
    finish(w.commands[0]!);
    await w.settle();
    expect(await w.metric("gpufleet_operator_serving_migrations_total", { outcome })).toBe(1);
    expect(w.events).toEqual([
      {
        type: "Warning",
        reason: "MigrationFailed",
        message: `migrating request r1 from chat-${HASH}-c0 to chat-${HASH}-c1 failed: ${reason}; the request stays on its source`,
      },
    ]);
  });

  it("plans only over instances with a fresh report whose pod is not being deleted", () => {
    const w = new World();
    w.scheduler.tick();
    expect(w.migrationInputs).toEqual([["pod-0/0", "pod-1/0", "pod-2/0"]]);
    w.loads.set("c1", { ...w.loads.get("c1")!, receivedUnixMs: w.nowMs - 60_000 });
    w.pods[2]!.metadata!.deletionTimestamp = new Date();
    w.scheduler.tick();
    expect(w.migrationInputs).toHaveLength(1); // one instance left: no pool to balance
  });
});

describe("ServingScheduler: autoscaling", () => {
  it("scales up by raising the role's desired count, with an Event and a reconcile", () => {
    const w = new World();
    w.decision = { kind: "up", role: "colocated", reason: "cluster freeness 4 < 10" };
    w.scheduler.tick();
    expect(w.memory.get(w.sd)).toMatchObject({
      desired: { colocated: 4 },
      lastDecision: { kind: "up", role: "colocated", reason: "cluster freeness 4 < 10" },
    });
    expect(w.events).toEqual([
      { type: "Normal", reason: "ScaledUp", message: "colocated 3 → 4: cluster freeness 4 < 10" },
    ]);
    expect(w.enqueued).toEqual(["llm/chat"]);
  });

  it("does nothing for a deployment that has not opted in", () => {
    const w = new World();
    w.sd = deployment(false);
    w.decision = { kind: "up", role: "colocated", reason: "cluster freeness 4 < 10" };
    w.scheduler.tick();
    expect(w.memory.get(w.sd)?.desired).toEqual({ colocated: 3 });
    expect(w.enqueued).toEqual([]);
  });

  it("scales in by draining the instance: Drain with no worker deadline, Draining until a report after the drain shows it empty, then Drained", async () => {
    const w = new World();
    w.report(1, { runningRequests: 2 });
    w.decision = {
      kind: "down",
      role: "colocated",
      reason: "freeness without pod-1/0 90 > 60",
      drainInstanceId: "pod-1/0",
    };
    w.scheduler.tick();
    expect(w.commands.map((c) => [c.workerId, c.command.drain])).toEqual([["pod-1/0", { deadlineMs: 0 }]]);
    expect(w.memory.get(w.sd)).toMatchObject({
      desired: { colocated: 2 },
      draining: [{ pod: `chat-${HASH}-c1`, role: "colocated", index: 1, state: "Draining", requestsLeft: 2 }],
    });
    expect(w.events.at(-1)).toMatchObject({
      reason: "ScalingDown",
      message: expect.stringMatching(
        /colocated 3 → 2: .*draining pod-1\/0 .*2 running and 0 queued requests to move out/,
      ),
    });
    w.commands[0]!.answer({ outcome: "applied", reason: "draining" });
    await w.settle();

    // Requests are moving out: still Draining; the report carries what is left.
    w.decision = { kind: "down", role: "colocated", reason: "again", drainInstanceId: "pod-0/0" };
    w.nowMs += 1_000;
    w.report(1, { runningRequests: 1, draining: true });
    w.scheduler.tick();
    expect(w.memory.get(w.sd)?.draining).toMatchObject([{ state: "Draining", requestsLeft: 1 }]);
    expect(w.commands).toHaveLength(1); // no second drain while one is in progress: the policy sees it draining
    w.nowMs += 1_000;
    w.report(1, { runningRequests: 0, draining: true, migrating: "out" } as Partial<InstanceLoad>);
    w.scheduler.tick();
    expect(w.memory.get(w.sd)?.draining).toMatchObject([{ state: "Draining", requestsLeft: 0 }]);
    w.nowMs += 1_000;
    w.report(1, { runningRequests: 0, draining: true });
    w.enqueued = [];
    w.scheduler.tick();
    expect(w.memory.get(w.sd)?.draining).toMatchObject([{ state: "Drained", requestsLeft: 0 }]);
    expect(w.enqueued).toContain("llm/chat");
    expect(w.events.at(-1)).toEqual({
      type: "Normal",
      reason: "InstanceDrained",
      message: `instance pod-1/0 (pod chat-${HASH}-c1) is drained: no running or queued request and no migration left; deleting its pods`,
    });
  });

  it("resends Drain to an instance that does not report draining, and after the deadline lets the pod go with an Event counting what was left", async () => {
    const w = new World();
    w.report(1, { runningRequests: 3, queueLength: 1 });
    w.decision = { kind: "down", role: "colocated", reason: "idle", drainInstanceId: "pod-1/0" };
    w.scheduler.tick();
    w.commands[0]!.fail(new Error("14 UNAVAILABLE"));
    await w.settle();
    w.decision = { kind: "hold", role: "", reason: "" };
    w.nowMs += 1_000;
    w.report(1, { runningRequests: 3, queueLength: 1 });
    w.scheduler.tick();
    expect(w.commands.map((c) => c.command.drain?.deadlineMs)).toEqual([0, 0]);
    w.nowMs += 60_000;
    w.report(1, { runningRequests: 2, queueLength: 0, draining: true });
    w.scheduler.tick();
    expect(w.memory.get(w.sd)?.draining).toMatchObject([{ state: "Drained", requestsLeft: 2 }]);
    expect(w.events.at(-1)).toEqual({
      type: "Warning",
      reason: "DrainDeadlinePassed",
      message: `instance pod-1/0 (pod chat-${HASH}-c1) still held 2 requests (2 running, 0 queued) after the drain deadline of 60 s; deleting its pods ends them`,
    });
  });

  it("records a hold that a bound imposed once per reason, and plain holds not at all", () => {
    const w = new World();
    w.decision = {
      kind: "hold",
      role: "colocated",
      reason: "colocated: cluster freeness 2 < 10, but the cluster cannot place another instance",
    };
    w.scheduler.tick();
    w.nowMs += 1_000;
    w.scheduler.tick();
    expect(w.events.filter((e) => e.reason === "ScaleBlocked")).toHaveLength(1);
    expect(w.memory.get(w.sd)?.lastDecision).toMatchObject({ kind: "hold", reason: w.decision.reason });
    w.decision = { kind: "hold", role: "", reason: "every pool within its freeness band and SLO" };
    w.scheduler.tick();
    expect(w.memory.get(w.sd)?.lastDecision?.reason).toMatch(/cannot place/);
  });
});

describe("ServingScheduler: SLO attainment gauges", () => {
  it("measures every deployment's attainment per role, autoscaled or not, and drops the series once the pool is idle", async () => {
    const w = new World();
    w.sd = deployment(false);
    w.report(0, { runningRequests: 2, ttftMs: 120, tpotMs: 80 });
    w.report(1, { runningRequests: 1, ttftMs: 300, tpotMs: 90 });
    w.scheduler.tick();
    const labels = { namespace: "llm", name: "chat", role: "colocated" };
    expect(await w.metric("gpufleet_operator_serving_slo_attainment_ratio", { ...labels, slo: "ttft" })).toBe(0.5);
    expect(await w.metric("gpufleet_operator_serving_slo_attainment_ratio", { ...labels, slo: "tpot" })).toBe(1);
    expect(await w.metric("gpufleet_operator_serving_slo_target_ratio", { namespace: "llm", name: "chat" })).toBe(0.9);

    w.nowMs += 61_000; // past the 60 s window, and the new reports are idle
    for (const i of [0, 1, 2]) w.report(i, {});
    w.scheduler.tick();
    const series = (await w.metrics.registry.getSingleMetric("gpufleet_operator_serving_slo_attainment_ratio")!.get())
      .values;
    expect(series).toEqual([]);
  });
});

describe("ServingScheduler: lifecycle", () => {
  it("stop() waits for the commands in flight", async () => {
    const w = new World();
    w.planned = [move("r1", 0, 1)];
    w.scheduler.tick();
    let stopped = false;
    const stopping = w.scheduler.stop().then(() => (stopped = true));
    await w.settle();
    expect(stopped).toBe(false);
    w.commands[0]!.answer({});
    await stopping;
    expect(stopped).toBe(true);
  });
});

describe("ServingScheduler: load gauges and engines", () => {
  it("exports queued and running requests and the measured SLO attainment per role", async () => {
    const w = new World();
    w.report(0, { queueLength: 2, runningRequests: 5, ttftMs: 100, tpotMs: 50 });
    w.report(1, { runningRequests: 3, ttftMs: 400, tpotMs: 50 });
    w.scheduler.tick();
    expect(
      await w.metric("gpufleet_operator_serving_queued_requests", {
        namespace: "llm",
        name: "chat",
        role: "colocated",
      }),
    ).toBe(2);
    expect(await w.metric("gpufleet_operator_serving_running_requests", { role: "colocated" })).toBe(8);
    // Two busy reports (the idle instance says nothing about latency): one within the TTFT target, both within TPOT.
    expect(await w.metric("gpufleet_operator_serving_slo_attainment_ratio", { role: "colocated", slo: "ttft" })).toBe(
      0.5,
    );
    expect(await w.metric("gpufleet_operator_serving_slo_attainment_ratio", { role: "colocated", slo: "tpot" })).toBe(
      1,
    );
    w.sd = { ...w.sd, metadata: { ...w.sd.metadata, name: "gone" } };
    w.scheduler.tick();
    expect(await w.metric("gpufleet_operator_serving_queued_requests", { name: "chat" })).toBe(0);
  });

  it("never asks a vLLM or SGLang deployment's instances to migrate", () => {
    for (const kind of ["vllm", "sglang"] as const) {
      const w = new World();
      w.sd = { ...w.sd, spec: { ...w.sd.spec, engine: { ...ENGINE, kind } } };
      const hash = planHash(PLAN, w.sd.spec.engine);
      for (const p of w.pods) p.metadata!.labels!["gpufleet.io/plan-hash"] = hash;
      w.memory.resolve(
        w.sd,
        PLAN,
        hash,
        w.pods.map((p) => observePod(p)!),
      );
      w.planned = [move("r1", 0, 1)];
      w.scheduler.tick();
      expect(w.migrationInputs).toEqual([]);
      expect(w.commands).toEqual([]);
    }
  });
});
