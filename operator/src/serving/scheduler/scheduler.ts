/**
 * The serving scheduler loop (issue 11), run by the leader only: the thin executor beside the pure Llumnix
 * policies. Every `periodMs`, per ServingDeployment with a plan:
 *
 *   read     the latest load per instance from the telemetry read model           (instances.ts)
 *   drains   instances leaving by scale-in: Drain (re)sent until the instance reports draining; Drained once a
 *            report shows it empty, or its deadline passed (an Event counts what was left)  (drain.ts)
 *   migrate  planMigrations per pool (colocated, decode); each planned move is a MigrateOut command to the source
 *            pod's worker through its node's agent; at most one migration per instance in flight; outcomes go
 *            to metrics and rate-limited Events                                     (policy.ts, event-digest.ts)
 *   scale    (spec.scaling.autoscale) decideScaling per role, bounded by spec.scaling, the free GPUs and the
 *            P:D ratio; the new desired counts go to the shared ScalingMemory and the deployment is enqueued: its
 *            reconcile rolls the pods and writes status.scaling                      (scaling.ts, state.ts)
 *
 * Commands are answered only by the worker's acknowledgement; the loop never waits for one (a tick only starts
 * them) and stop() waits for those still in flight.
 */
import { randomUUID } from "node:crypto";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { OwnedLabel } from "../../../../crds/src/reasons.js";
import {
  DrainState,
  type ServingDeployment,
  type ServingScalingStatus,
} from "../../../../crds/src/serving-deployment.js";
import type { SendWorkerCommandResponse__Output } from "../../../../agent/src/grpc/generated/gpufleet/agent/v1/SendWorkerCommandResponse.js";
import type { WorkerCommand } from "../../../../agent/src/grpc/generated/gpufleet/worker/v1/WorkerCommand.js";
import { capacityOf } from "../../cluster/capacity.js";
import type { OperatorMetrics } from "../../metrics.js";
import type { Clock } from "../../runtime/clock.js";
import type { EventSink, EventType } from "../../runtime/events.js";
import type { Logger } from "../../runtime/logger.js";
import type { TelemetryViews } from "../../telemetry/read-model.js";
import { placementNodes } from "../planner-bridge.js";
import { planHash, planRoles, type Role, type StatusPlan } from "../pools.js";
import { observePod, type ObservedPod } from "../rollout.js";
import { drainProgress } from "./drain.js";
import {
  DEFAULT_DIGEST_CONFIG,
  MigrationEventDigest,
  type DigestConfig,
  type MigrationOutcome,
} from "./event-digest.js";
import { engineMigrates } from "../engines/capabilities.js";
import { liveInstances, migrationInstances, MIGRATING_ROLES, type LiveInstance } from "./instances.js";
import type { PlannedMigration, SchedulerPolicies } from "./policy.js";
import { actionFor, scalingInput, type ScalingAction } from "./scaling.js";
import { SloWindow } from "./slo.js";
import type { ScalingMemory } from "./state.js";

export interface SchedulerConfig {
  /** How often the loop runs. */
  periodMs: number;
  /** A load report older than this does not count (the instance may be gone or stuck). */
  loadStaleMs: number;
  /** Deadline of one MigrateOut command: the worker acknowledges when the migration committed or aborted. */
  migrationTimeoutMs: number;
  /** Deadline of a Drain command. */
  commandTimeoutMs: number;
  /** Past this, a draining instance's pods go even with requests left (an Event says how many). */
  drainDeadlineMs: number;
  /** SLO attainment is measured over this much recent load reports. */
  sloWindowMs: number;
  digest: DigestConfig;
}

export const DEFAULT_SCHEDULER_CONFIG: SchedulerConfig = {
  periodMs: 1_000,
  loadStaleMs: 5_000,
  migrationTimeoutMs: 30_000,
  commandTimeoutMs: 5_000,
  drainDeadlineMs: 600_000,
  sloWindowMs: 60_000,
  digest: DEFAULT_DIGEST_CONFIG,
};

/** Event reasons of the autoscaler. */
export const ScalingEventReason = {
  ScaledUp: "ScaledUp",
  ScalingDown: "ScalingDown",
  ScaleBlocked: "ScaleBlocked",
  InstanceDrained: "InstanceDrained",
  DrainDeadlinePassed: "DrainDeadlinePassed",
} as const;

export interface SchedulerDeps {
  servingDeployments: { list(): readonly ServingDeployment[] };
  pods: { list(): readonly V1Pod[] };
  nodes: { list(): readonly V1Node[] };
  telemetry: Pick<TelemetryViews, "loadOf">;
  agents: {
    sendWorkerCommand(
      nodeName: string,
      workerId: string,
      command: WorkerCommand,
      timeoutMs?: number,
    ): Promise<SendWorkerCommandResponse__Output>;
  };
  events: EventSink;
  metrics: OperatorMetrics;
  clock: Clock;
  logger: Pick<Logger, "info" | "warn" | "debug">;
  memory: ScalingMemory;
  /** Asks the ServingDeployment controller to reconcile `namespace/name` (a scaling decision or a drain changed). */
  enqueue(key: string): void;
  policies: SchedulerPolicies;
  config?: Partial<SchedulerConfig>;
}

interface InFlight {
  sd: ServingDeployment;
  promise: Promise<void>;
}

export class ServingScheduler {
  private readonly config: SchedulerConfig;
  private readonly digest: MigrationEventDigest;
  /** Instance ids with a command of ours in flight (source and destination of a migration). */
  private readonly busy = new Set<string>();
  private readonly inFlight = new Map<string, InFlight>();
  /** Drain commands in flight, by instance id. */
  private readonly draining = new Set<string>();
  private readonly seen = new Set<string>();
  private readonly slo = new Map<string, SloWindow>();
  private timer: unknown;
  private running = false;

  constructor(private readonly deps: SchedulerDeps) {
    this.config = { ...DEFAULT_SCHEDULER_CONFIG, ...deps.config };
    this.digest = new MigrationEventDigest(this.config.digest);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const loop = () => {
      if (!this.running) return;
      try {
        this.tick();
      } catch (err) {
        this.deps.logger.warn({ err }, "serving scheduler tick failed");
      }
      this.timer = this.deps.clock.setTimeout(loop, this.config.periodMs);
    };
    this.timer = this.deps.clock.setTimeout(loop, this.config.periodMs);
  }

  /** Stops ticking and waits for the commands in flight to be answered (each is bounded by its deadline). */
  async stop(): Promise<void> {
    this.running = false;
    this.deps.clock.clearTimeout(this.timer);
    await Promise.all([...this.inFlight.values()].map((f) => f.promise));
  }

  /** One pass over every deployment (public for tests that drive the loop step by step). */
  tick(): void {
    const nowMs = this.deps.clock.now();
    const sds = this.deps.servingDeployments.list();
    this.deps.memory.retain(new Set(sds.map((sd) => sd.metadata.uid!)));
    let free: ((gpuModel: string, own: readonly ObservedPod[]) => { nodeName: string; gpusFree: number }[]) | undefined;
    const freeNodes = (gpuModel: string, own: readonly ObservedPod[]) => {
      if (!free) {
        const capacity = capacityOf(this.deps.nodes, this.deps.pods);
        free = (model, pods) =>
          placementNodes(capacity.nodes, model, pods).filter(
            (n) => !capacity.nodes.find((c) => c.nodeName === n.nodeName)?.isolated,
          );
      }
      return free(gpuModel, own);
    };
    // Load gauges are set afresh each tick, so a deleted deployment's series go with it.
    for (const gauge of [
      this.deps.metrics.servingQueuedRequests,
      this.deps.metrics.servingRunningRequests,
      this.deps.metrics.servingSloAttainmentRatio,
      this.deps.metrics.servingSloTargetRatio,
    ])
      gauge.reset();
    const byKey = new Map<string, ServingDeployment>();
    for (const sd of sds) {
      const key = `${sd.metadata.namespace}/${sd.metadata.name}`;
      byKey.set(key, sd);
      try {
        this.scheduleDeployment(sd, key, nowMs, freeNodes);
      } catch (err) {
        this.deps.logger.warn({ err, sd: key }, "scheduling a serving deployment failed");
      }
    }
    for (const { key, event } of this.digest.flush(nowMs)) {
      const sd = byKey.get(key);
      if (sd) this.record(sd, event.type, event.reason, event.message);
    }
  }

  private scheduleDeployment(
    sd: ServingDeployment,
    key: string,
    nowMs: number,
    freeNodes: (gpuModel: string, own: readonly ObservedPod[]) => { nodeName: string; gpusFree: number }[],
  ): void {
    const plan = sd.status?.plan;
    if (!plan || sd.metadata.deletionTimestamp) return;
    const hash = planHash(plan, sd.spec.engine);
    const state = this.deps.memory.get(sd);
    // The executor resolves the state for the running plan first; until it has, there is nothing to go by.
    if (!state || state.planHash !== hash) return;
    this.initSeries(sd, key, plan);
    const observed = ownPods(sd, this.deps.pods.list(), nowMs);
    const instances = liveInstances(this.deps.telemetry.loadOf(key), observed, hash, nowMs, this.config.loadStaleMs);
    this.exportLoad(sd, instances);
    const afterDrains = this.progressDrains(sd, key, state, instances, observed, nowMs);
    // vLLM and SGLang cannot hand a running request over (engines/capabilities.ts): never ask them to.
    if (engineMigrates(sd.spec.engine.kind)) this.migrate(sd, instances);
    this.measureSlo(sd, key, plan, instances, nowMs);
    if (sd.spec.scaling.autoscale)
      this.autoscale(sd, key, plan, hash, afterDrains, instances, observed, nowMs, freeNodes);
  }

  /** Queued and running requests per role as gauges (attainment is measureSlo's). */
  private exportLoad(sd: ServingDeployment, instances: readonly LiveInstance[]): void {
    const id = { namespace: sd.metadata.namespace!, name: sd.metadata.name! };
    const byRole = new Map<Role, { queued: number; running: number }>();
    for (const i of instances) {
      const r = byRole.get(i.role) ?? { queued: 0, running: 0 };
      r.queued += i.load.queuedRequests;
      r.running += i.load.runningRequests;
      byRole.set(i.role, r);
    }
    for (const [role, r] of byRole) {
      this.deps.metrics.servingQueuedRequests.set({ ...id, role }, r.queued);
      this.deps.metrics.servingRunningRequests.set({ ...id, role }, r.running);
    }
  }

  /** Counters start at 0 for a deployment's known label values, so dashboards show 0, not "no data". */
  private initSeries(sd: ServingDeployment, key: string, plan: StatusPlan): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    const id = { namespace: sd.metadata.namespace!, name: sd.metadata.name! };
    for (const outcome of ["completed", "failed", "rejected", "unreachable"])
      this.deps.metrics.servingMigrationsTotal.inc({ ...id, outcome }, 0);
    this.deps.metrics.servingMigrationsInFlight.set(id, 0);
    for (const role of planRoles(plan))
      for (const kind of ["up", "down"]) this.deps.metrics.servingScalingDecisionsTotal.inc({ ...id, role, kind }, 0);
  }

  // Drains.

  private progressDrains(
    sd: ServingDeployment,
    key: string,
    state: ServingScalingStatus,
    instances: readonly LiveInstance[],
    observed: readonly ObservedPod[],
    nowMs: number,
  ): ServingScalingStatus {
    const entries = state.draining ?? [];
    if (entries.length === 0) return state;
    let changed = false;
    let drainedNow = false;
    const next = entries.flatMap((entry) => {
      if (entry.state === DrainState.Drained) return [entry];
      const instance = instances.find((i) => i.podName === entry.pod);
      const podExists = observed.some((p) => p.name === entry.pod && !p.deleting);
      const progress = drainProgress(
        { startedMs: Date.parse(entry.startedTime), deadlineMs: Date.parse(entry.deadlineTime) },
        instance,
        podExists,
        nowMs,
      );
      const what = `instance ${instance?.id ?? entry.pod} (pod ${entry.pod})`;
      switch (progress.kind) {
        case "gone":
          changed = true;
          this.deps.logger.info({ sd: key, pod: entry.pod }, "draining instance's pod is gone");
          return [];
        case "empty":
          changed = drainedNow = true;
          this.record(
            sd,
            "Normal",
            ScalingEventReason.InstanceDrained,
            `${what} is drained: no running or queued request and no migration left; deleting its pods`,
          );
          return [{ ...entry, state: DrainState.Drained, requestsLeft: 0 }];
        case "deadline": {
          changed = drainedNow = true;
          const left =
            progress.requestsLeft === undefined
              ? "an unknown number of requests (no report since the drain began)"
              : `${progress.requestsLeft} requests (${progress.running} running, ${progress.queued} queued)`;
          this.record(
            sd,
            "Warning",
            ScalingEventReason.DrainDeadlinePassed,
            `${what} still held ${left} after the drain deadline of ${Math.round(this.config.drainDeadlineMs / 1000)} s; deleting its pods ends them`,
          );
          return [{ ...entry, state: DrainState.Drained, requestsLeft: progress.requestsLeft }];
        }
        case "wait":
          // Level-based: an instance that does not say it is draining has not got the command (or restarted).
          if (instance && !instance.load.draining) this.sendDrain(sd, instance);
          if (progress.requestsLeft !== undefined && progress.requestsLeft !== entry.requestsLeft) {
            changed = true;
            return [{ ...entry, requestsLeft: progress.requestsLeft }];
          }
          return [entry];
      }
    });
    if (!changed) return state;
    const updated: ServingScalingStatus = { ...state, draining: next.length > 0 ? next : undefined };
    this.deps.memory.set(sd.metadata.uid!, updated);
    if (drainedNow) this.deps.enqueue(key);
    return updated;
  }

  private sendDrain(sd: ServingDeployment, instance: LiveInstance): void {
    if (this.draining.has(instance.id)) return;
    this.draining.add(instance.id);
    // deadline_ms 0: the worker aborts nothing by itself; the operator owns the deadline (drain.ts).
    const command: WorkerCommand = { commandId: `drain-${randomUUID()}`, drain: { deadlineMs: 0 } };
    const promise = this.deps.agents
      .sendWorkerCommand(instance.node, instance.id, command, this.config.commandTimeoutMs)
      .then(
        (ack) =>
          this.deps.logger.info(
            { instance: instance.id, outcome: ack.outcome, reason: ack.reason },
            "drain command answered",
          ),
        (err: unknown) =>
          this.deps.logger.warn(
            { instance: instance.id, err: (err as Error).message },
            "drain command did not reach the worker; resent next tick",
          ),
      )
      .finally(() => {
        this.draining.delete(instance.id);
        this.inFlight.delete(command.commandId!);
      });
    this.inFlight.set(command.commandId!, { sd, promise });
  }

  // Migrations.

  private migrate(sd: ServingDeployment, instances: readonly LiveInstance[]): void {
    for (const role of MIGRATING_ROLES) {
      const pool = instances.filter((i) => i.role === role);
      if (pool.length < 2) continue;
      const planned = this.deps.policies.planMigrations(
        migrationInstances(pool, this.busy),
        this.deps.policies.migrationConfig,
      );
      const byId = new Map(pool.map((i) => [i.id, i]));
      for (const m of planned) {
        const source = byId.get(m.sourceId);
        const destination = byId.get(m.destinationId);
        if (
          !source ||
          !destination ||
          source === destination ||
          this.busy.has(source.id) ||
          this.busy.has(destination.id)
        )
          continue;
        this.startMigration(sd, m, source, destination);
      }
    }
  }

  private startMigration(
    sd: ServingDeployment,
    m: PlannedMigration,
    source: LiveInstance,
    destination: LiveInstance,
  ): void {
    const id = { namespace: sd.metadata.namespace!, name: sd.metadata.name! };
    const key = `${id.namespace}/${id.name}`;
    this.busy.add(source.id);
    this.busy.add(destination.id);
    this.deps.metrics.servingMigrationsInFlight.inc(id);
    const command: WorkerCommand = {
      commandId: `migrate-${randomUUID()}`,
      migrateOut: {
        requestId: m.requestId,
        targetWorkerId: destination.id,
        targetPod: `${destination.podNamespace}/${destination.podName}`,
        ...targetUrl(destination),
      },
    };
    this.deps.logger.debug(
      {
        sd: key,
        request: m.requestId,
        source: source.id,
        destination: destination.id,
        blocks: m.blocks,
        reason: m.reason,
      },
      "migrating a request",
    );
    const promise = this.deps.agents
      .sendWorkerCommand(source.node, source.id, command, this.config.migrationTimeoutMs)
      .then(
        (ack): { outcome: string; result: MigrationOutcome } => {
          const ok = ack.outcome === "applied";
          return {
            outcome: ok ? "completed" : ack.outcome === "rejected" ? "rejected" : "failed",
            result: {
              ...names(m, source, destination),
              ok,
              downtimeMs: ok ? downtimeOf(ack.reason) : undefined,
              reason: ok ? undefined : ack.reason || ack.outcome,
            },
          };
        },
        (err: unknown): { outcome: string; result: MigrationOutcome } => ({
          outcome: "unreachable",
          result: {
            ...names(m, source, destination),
            ok: false,
            reason: `the command did not reach ${source.id}'s worker: ${(err as Error).message}`,
          },
        }),
      )
      .then(({ outcome, result }) => {
        this.deps.metrics.servingMigrationsTotal.inc({ ...id, outcome });
        if (result.downtimeMs !== undefined)
          this.deps.metrics.servingMigrationDowntimeSeconds.observe(result.downtimeMs / 1000);
        const event = this.digest.add(key, result, this.deps.clock.now());
        if (event) this.record(sd, event.type, event.reason, event.message);
      })
      .finally(() => {
        this.busy.delete(source.id);
        this.busy.delete(destination.id);
        this.deps.metrics.servingMigrationsInFlight.dec(id);
        this.inFlight.delete(command.commandId!);
      });
    this.inFlight.set(command.commandId!, { sd, promise });
  }

  // Autoscaling.

  private autoscale(
    sd: ServingDeployment,
    key: string,
    plan: StatusPlan,
    hash: string,
    state: ServingScalingStatus,
    instances: readonly LiveInstance[],
    observed: readonly ObservedPod[],
    nowMs: number,
    freeNodes: (gpuModel: string, own: readonly ObservedPod[]) => { nodeName: string; gpusFree: number }[],
  ): void {
    // A deployment is judged only once its reconcile has caught up with its spec.
    if (sd.status?.observedGeneration !== sd.metadata.generation) return;
    const slo = this.sloWindow(key);
    const drains = state.draining ?? [];
    const usedIndices: Partial<Record<Role, number[]>> = {};
    const podsPerRole: Partial<Record<Role, number>> = {};
    for (const p of observed) {
      if (p.hash !== hash || p.worker !== 0) continue;
      (usedIndices[p.role] ??= []).push(p.index);
      if (!p.deleting) podsPerRole[p.role] = (podsPerRole[p.role] ?? 0) + 1;
    }
    const drainingPerRole: Partial<Record<Role, number>> = {};
    for (const d of drains) drainingPerRole[d.role] = (drainingPerRole[d.role] ?? 0) + 1;
    const last = state.lastDecision;
    const input = scalingInput({
      plan,
      desired: state.desired,
      bounds: sd.spec.scaling,
      instances,
      drainingPods: new Set(drains.map((d) => d.pod)),
      drainingPerRole,
      free: freeNodes(plan.gpuModel, observed),
      sdName: sd.metadata.name!,
      hash,
      usedIndices,
      podsPerRole,
      slo: (role) => slo.attainment(role, sd.spec.slo.attainmentPercent, nowMs),
      nowMs,
      lastScaledAtMs: last && last.kind !== "hold" ? Date.parse(last.time) : undefined,
    });
    const decision = this.deps.policies.decideScaling(input, this.deps.policies.autoscaleConfig);
    // One scale-in at a time, whatever the policy says (it sees drains only once instances report them).
    if (decision.kind === "down" && drains.length > 0) return;
    this.carryOut(sd, key, state, actionFor(decision, plan, state.desired, instances), nowMs);
  }

  /**
   * Samples every deployment's SLO attainment (the autoscaler reads the window, the SLO alert the gauges), once its
   * reconcile has caught up with its spec. A role without a recent busy report has its series removed: an idle pool
   * says nothing about latency, and a stale low value would keep the alert firing.
   */
  private measureSlo(
    sd: ServingDeployment,
    key: string,
    plan: StatusPlan,
    instances: readonly LiveInstance[],
    nowMs: number,
  ): void {
    if (sd.status?.observedGeneration !== sd.metadata.generation) return;
    const slo = this.sloWindow(key);
    for (const i of instances)
      slo.add(
        {
          id: i.id,
          role: i.role,
          reportedUnixMs: i.reportedUnixMs,
          ttftMs: i.ttftMs,
          tpotMs: i.tpotMs,
          busy: i.load.runningRequests + i.load.queuedRequests > 0,
        },
        sd.spec.slo,
        nowMs,
      );
    slo.retain(new Set(instances.map((i) => i.id)));
    const id = { namespace: sd.metadata.namespace!, name: sd.metadata.name! };
    const gauge = this.deps.metrics.servingSloAttainmentRatio;
    this.deps.metrics.servingSloTargetRatio.set(id, sd.spec.slo.attainmentPercent / 100);
    for (const role of planRoles(plan)) {
      const attained = slo.attainment(role, sd.spec.slo.attainmentPercent, nowMs);
      const measured = { ttft: role !== "decode", tpot: role !== "prefill" };
      for (const which of ["ttft", "tpot"] as const) {
        if (!measured[which]) continue;
        if (attained) gauge.set({ ...id, role, slo: which }, attained[which]);
        else gauge.remove({ ...id, role, slo: which });
      }
    }
  }

  private sloWindow(key: string): SloWindow {
    let w = this.slo.get(key);
    if (!w) this.slo.set(key, (w = new SloWindow(this.config.sloWindowMs)));
    return w;
  }

  private carryOut(
    sd: ServingDeployment,
    key: string,
    state: ServingScalingStatus,
    action: ScalingAction,
    nowMs: number,
  ): void {
    const id = { namespace: sd.metadata.namespace!, name: sd.metadata.name! };
    const time = new Date(nowMs).toISOString();
    const lastDecision = { kind: action.kind, role: action.role, reason: action.reason, time };
    if (action.kind === "hold") {
      // Holds are the common case; only one that says a pool wanted to move and a bound refused is worth status
      // (and then once per distinct reason, not every period).
      if (!/, but |; not scaled|does not report/.test(action.reason)) return;
      if (state.lastDecision?.kind === "hold" && state.lastDecision.reason === action.reason) return;
      this.deps.memory.set(sd.metadata.uid!, { ...state, lastDecision });
      this.deps.enqueue(key);
      this.record(sd, "Normal", ScalingEventReason.ScaleBlocked, action.reason);
      return;
    }
    this.deps.metrics.servingScalingDecisionsTotal.inc({ ...id, role: action.role, kind: action.kind });
    if (action.kind === "up") {
      this.deps.memory.set(sd.metadata.uid!, { ...state, desired: action.desired, lastDecision });
      this.record(
        sd,
        "Normal",
        ScalingEventReason.ScaledUp,
        `${action.role} ${state.desired[action.role] ?? 0} → ${action.desired[action.role]}: ${action.reason}`,
      );
    } else {
      const instance = action.drain;
      const entry = {
        pod: instance.podName,
        role: instance.role,
        index: instance.index,
        state: DrainState.Draining,
        startedTime: time,
        deadlineTime: new Date(nowMs + this.config.drainDeadlineMs).toISOString(),
        requestsLeft: instance.load.runningRequests + instance.load.queuedRequests,
      };
      this.deps.memory.set(sd.metadata.uid!, {
        ...state,
        desired: action.desired,
        lastDecision,
        draining: [...(state.draining ?? []), entry],
      });
      this.sendDrain(sd, instance);
      this.record(
        sd,
        "Normal",
        ScalingEventReason.ScalingDown,
        `${action.role} ${state.desired[action.role] ?? 0} → ${action.desired[action.role]}: ${action.reason}; draining ${instance.id} (pod ${instance.podName}: ${instance.load.runningRequests} running and ${instance.load.queuedRequests} queued requests to move out)`,
      );
    }
    this.deps.logger.info(
      { sd: key, kind: action.kind, role: action.role, reason: action.reason },
      "serving autoscaler decided",
    );
    this.deps.enqueue(key);
  }

  private record(sd: ServingDeployment, type: EventType, reason: string, message: string): void {
    void this.deps.events.record(
      { apiVersion: "gpufleet.io/v1alpha1", kind: "ServingDeployment", metadata: sd.metadata },
      type,
      reason,
      message,
    );
  }
}

/** The deployment's own pods in the cache, as the rollout sees them. */
function ownPods(sd: ServingDeployment, pods: readonly V1Pod[], nowMs: number): ObservedPod[] {
  const out: ObservedPod[] = [];
  for (const p of pods) {
    if (
      p.metadata?.namespace !== sd.metadata.namespace ||
      p.metadata?.labels?.[OwnedLabel.servingDeployment] !== sd.metadata.name
    )
      continue;
    if (!p.metadata?.ownerReferences?.some((o) => o.uid === sd.metadata.uid)) continue;
    const o = observePod(p, { nowMs });
    if (o) out.push(o);
  }
  return out;
}

const names = (m: PlannedMigration, source: LiveInstance, destination: LiveInstance) => ({
  requestId: m.requestId,
  source: source.podName,
  destination: destination.podName,
});

/** MigrateOut's target_url: the source pushes the KV to the destination's engine API there (docs/engine-api.md). */
function targetUrl(destination: LiveInstance): Record<string, string> {
  return destination.engineUrl ? { targetUrl: destination.engineUrl } : {};
}

/** Downtime a worker states in its acknowledgement ("… downtime 12.5 ms …"), if it does. */
export function downtimeOf(reason: string): number | undefined {
  const match = /downtime[^0-9]{0,8}([0-9]+(?:\.[0-9]+)?)\s*ms/i.exec(reason);
  return match ? Number(match[1]) : undefined;
}
