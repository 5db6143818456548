/**
 * Dispatch policy on a simulated clock (discrete events): the gateway's own dispatch code in front of the agent's
 * own simulated engines, with no HTTP and no timers, so the result measures the policy and not this machine.
 *
 * - Dispatch: gateway/src/dispatch/dispatcher.ts (candidates from the InstanceView with this replica's
 *   reservations, admission with maxQueuedPerInstance, the policy of common/src/scheduler/, the reservation), built
 *   with the gateway's default configuration (loadGatewayConfig, plus any `gatewayEnv` overrides) and the policy
 *   under test. An instance that refuses a request because it is draining is retried on another (the gateway's
 *   maxAttempts), as the gateway does.
 * - Instances: agent/src/workers/simulated/engine.ts ServingEngines configured by servingEngineConfig (step times
 *   and KV blocks from common/src/models/latency.ts, the planner's model).
 * - Load reports: each instance reports every `reportIntervalMs` (the agent's default, 1 s) at a phase of its own;
 *   the agent's publisher sends on its flush tick (`flushIntervalMs`, 250 ms, a phase of its own too), and the report
 *   reaches the view then. The report is the engine's load at generation time turned into the NATS LoadEntry and
 *   read with the gateway's reportFromLoadEntry. So dispatch sees loads as stale as the real gateway does, and its
 *   reservations bridge the gap exactly as they do there.
 * - Optional (issue 11), each off unless given: live migration (every `periodMs` the policy plans from the latest
 *   delivered reports, as the operator would, and the simulation starts each planned migration through
 *   `migration.start`, a clock-driven migration it advances like an engine); autoscaling (every `periodMs` the
 *   policy decides from the same reports; a new instance reports after `startupMs`; a scale-in drains its instance,
 *   by migration when migration is on, and deletes it once empty); priorities (a request's `priority` goes to the
 *   dispatcher and, as engine priority 1, to the engine, unless `honourPriorities` is false).
 * - Between events the engines are advanced to the event's time; tokens carry their modelled times, so TTFT, TPOT
 *   and end-to-end latency are exact on the model. Arrivals are dispatched at their arrival time (no network delay).
 * Deviations from the running system: no network or gateway processing time; the agent's 20 ms serving tick (which
 * delays token delivery in wall-clock time, not modelled time) does not exist here.
 */
import type { Priority } from "../../common/src/engine-api.js";
import type { DispatchPolicyName } from "../../common/src/scheduler/dispatch.js";
import type { InstanceLoad } from "../../common/src/scheduler/freeness.js";
import type {
  MigrationCandidate,
  MigrationInstance,
  PlannedMigration,
} from "../../common/src/scheduler/migration-policy.js";
import type { ScalingDecision, ScalingInput } from "../../common/src/scheduler/autoscale-policy.js";
import { seededRandom } from "../../common/src/random.js";
import { MODEL_SHAPES } from "../../common/src/models/model-shapes.js";
import type { LoadEntry } from "../../common/src/telemetry/subjects.js";
import { ServingEngine, type EngineConfig } from "../../agent/src/workers/simulated/engine.js";
import { servingEngineConfig } from "../../agent/src/workers/simulated/engine-config.js";
import type { RequestResult, RequestSink } from "../../agent/src/workers/simulated/sequence.js";
import { loadGatewayConfig } from "../../gateway/src/config.js";
import { Dispatcher } from "../../gateway/src/dispatch/dispatcher.js";
import { reportFromLoadEntry } from "../../gateway/src/instances/nats-source.js";
import { InstanceView } from "../../gateway/src/instances/view.js";
import { GatewayMetrics } from "../../gateway/src/metrics.js";
import { GatewayError } from "../../gateway/src/openai/errors.js";

export interface SimRequest {
  arrivalMs: number;
  promptTokens: number;
  outputTokens: number;
  /** Default normal. */
  priority?: Priority;
}

/** A migration in flight, driven by the simulation like an engine. */
export interface SimMigrationRun {
  nextEventMs(): number | undefined;
  advance(toMs: number): void;
  readonly done: boolean;
}

export interface SimMigrationOutcome {
  committed: boolean;
  /** Stop-and-copy time (committed migrations). */
  downtimeMs: number;
  durationMs: number;
  abortCode?: string;
}

export interface SimMigrationStart {
  source: ServingEngine;
  destination: ServingEngine;
  sourceId: string;
  destinationId: string;
  requestId: string;
  atMs: number;
  /** Called once, when the migration commits or aborts (possibly from inside start()). */
  onEnd(outcome: SimMigrationOutcome): void;
}

export interface SimMigration {
  periodMs: number;
  /** The policy: planMigrations with its configuration. */
  plan(instances: readonly MigrationInstance[]): PlannedMigration[];
  /** The instance's migration candidates as its load report carries them. */
  candidatesOf(entry: LoadEntry): readonly MigrationCandidate[];
  start(args: SimMigrationStart): SimMigrationRun;
}

export interface SimAutoscale {
  periodMs: number;
  initialInstances: number;
  minInstances: number;
  maxInstances: number;
  /** Instances the cluster can hold in all (its GPUs): capacity = this − live − starting. */
  clusterInstances: number;
  /** From the scale-up decision to the new instance's first load report. */
  startupMs: number;
  /** The policy: decideScaling with its configuration. */
  decide(input: ScalingInput): ScalingDecision;
}

export interface SimSetup {
  policy: DispatchPolicyName;
  instances: number;
  requests: readonly SimRequest[];
  engine: EngineConfig;
  reportIntervalMs: number;
  flushIntervalMs: number;
  /** Seeds the report and flush phases (the only randomness); the same seed for every policy. */
  seed: number;
  /** Extra gateway configuration (GPUFLEET_GATEWAY_* variables) on top of its defaults. */
  gatewayEnv?: Record<string, string>;
  migration?: SimMigration;
  autoscale?: SimAutoscale;
  /** Preemptions the engine has counted for a request it holds (for the preemption loss); absent: not measured. */
  preemptionsOf?: (engine: ServingEngine, requestId: string) => number | undefined;
  /** False: every request is submitted as normal (metrics still group by the request's own priority). */
  honourPriorities?: boolean;
}

export interface LatencySummary {
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
}

export interface SimResult {
  policy: DispatchPolicyName;
  requests: number;
  completed: number;
  /** Answered 429 by the gateway's admission (every instance had maxQueuedPerInstance waiting). */
  rejectedOverloaded: number;
  /** Refused by the instance (prompt + output beyond the model's context): a 400 through the gateway. */
  refusedByInstance: number;
  /** No instance would take it within the gateway's attempts (503 through the gateway). */
  rejectedNoInstance: number;
  /** Ended other than completed (aborted, cancelled) or never ended. */
  requestsLost: number;
  ttft: LatencySummary;
  tpot: LatencySummary;
  e2e: LatencySummary;
  /** TTFT and TPOT of completed requests at every whole percentile 0..100 (nearest rank): their CDFs, 101 points. */
  latencyQuantilesMs: { ttft: number[]; tpot: number[] };
  /** Per request priority (present only when the workload has high-priority requests). */
  byPriority?: Record<Priority, { completed: number; ttft: LatencySummary; tpot: LatencySummary; e2e: LatencySummary }>;
  preemptions: number;
  /** Σ over preempted gaps of (gap − the request's previous gap); mean over all completed requests. */
  preemptionLoss?: { totalMs: number; meanPerRequestMs: number; requestsPreempted: number };
  /** Time-averaged share of the pool's KV blocks free while a queue head could fit the pool but not its instance. */
  fragmentationPercent: number;
  migrations: {
    planned: number;
    committed: number;
    aborted: number;
    abortCodes: Record<string, number>;
    downtime: LatencySummary;
    durationMeanMs: number;
    byReason: Record<string, number>;
  };
  scaling: {
    ups: number;
    downs: number;
    deleted: number;
    minInstances: number;
    maxInstances: number;
    meanInstances: number;
  };
  /** Instance lifetime (creation, startup included, to deletion) within [first arrival, last completion]. */
  instanceSeconds: number;
  /** Runs of consecutive dispatches to the same instance: how much a policy herds between two load reports. */
  dispatchRuns: { mean: number; max: number };
  /** Completions per instance: how evenly the policy spread the work (instances in creation order). */
  completedPerInstance: number[];
  makespanMs: number;
}

export const MODEL = "Llama-3-8B";
export const GPU_MODEL = "H100-80GB";

/**
 * The simulated instance the gateway benchmark uses: Llama-3-8B, TP=1, on one H100, colocated (the planner's model).
 */
export function benchEngineConfig(): EngineConfig {
  return servingEngineConfig({
    role: "colocated",
    shape: MODEL_SHAPES[MODEL],
    parallelism: { tp: 1, pp: 1 },
    gpuModel: GPU_MODEL,
  });
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Nearest-rank values at percentiles 0, 1, …, 100 (101 points; NaN for no values): a CDF in a fixed size. */
export function quantiles(values: readonly number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  return Array.from({ length: 101 }, (_, p) => (p === 0 ? (sorted[0] ?? Number.NaN) : percentile(sorted, p)));
}

export function summarize(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
  return { meanMs: mean, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

interface PendingReport {
  deliverAtMs: number;
  entry: LoadEntry;
}

interface SimInstance {
  id: string;
  engine: ServingEngine;
  createdAtMs: number;
  readyAtMs: number;
  deletedAtMs?: number;
  draining: boolean;
  /** A migration in or out is in flight. */
  migrating: boolean;
  /** End of its last migration: reports generated before it do not show the move yet. */
  lastMigrationEndMs: number;
  latestEntry?: LoadEntry;
  deliveredEntry?: LoadEntry;
  completed: number;
  preemptionsAtDeletion?: number;
}

interface Tracked {
  arrivalMs: number;
  priority: Priority;
  owner: string;
  firstTokenMs?: number;
  lastTokenMs?: number;
  lastGapMs?: number;
  preemptionsSeen?: number;
  preemptionLossMs: number;
}

function loadEntry(id: string, engine: ServingEngine, atMs: number): LoadEntry {
  // The fields the simulation runtime reports (agent/src/simulation/runtime.ts) and the agent publishes.
  const { draining, heldKvRequests: _held, ...load } = engine.load(atMs);
  return {
    workerId: id,
    podNamespace: "bench",
    podName: id,
    unixMs: atMs,
    ...load,
    draining,
    role: engine.config.role,
    model: engine.config.modelName,
    tp: 1,
    pp: 1,
    gpuModel: GPU_MODEL,
    engineUrl: `http://${id}.bench:8100`,
    servingDeployment: "bench/chat",
  };
}

function instanceLoadOf(entry: LoadEntry): InstanceLoad {
  const report = reportFromLoadEntry(entry);
  if (!report || "invalid" in report)
    throw new Error(`the simulated load report of ${entry.workerId} does not validate: ${JSON.stringify(report)}`);
  return report.load;
}

/** Runs the requests through dispatch and the engines to completion. Pure apart from CPU time. */
export function simulateDispatch(setup: SimSetup): SimResult {
  const config = loadGatewayConfig({
    GPUFLEET_GATEWAY_NATS_URL: "unused://simulated",
    GPUFLEET_GATEWAY_DISPATCH_POLICY: setup.policy,
    GPUFLEET_GATEWAY_IDENTITY: "bench",
    ...setup.gatewayEnv,
  });
  const view = new InstanceView(config);
  const dispatcher = new Dispatcher({
    view,
    metrics: new GatewayMetrics(),
    config: {
      dispatchPolicy: config.dispatchPolicy,
      freeness: { highPriorityHeadroomFraction: config.highPriorityHeadroomFraction },
      maxQueuedPerInstance: config.maxQueuedPerInstance,
      retryAfterS: config.retryAfterS,
    },
  });
  const random = seededRandom(setup.seed);
  const instances = new Map<string, SimInstance>();
  const reportPhaseMs = new Map<string, number>();
  const flushPhaseMs = new Map<string, number>();
  const nextReportMs = new Map<string, number>();
  let created = 0;
  const createInstance = (atMs: number, readyAtMs: number): SimInstance => {
    const id = `instance-${String(created++).padStart(2, "0")}`;
    const inst: SimInstance = {
      id,
      engine: new ServingEngine(setup.engine, readyAtMs),
      createdAtMs: atMs,
      readyAtMs,
      draining: false,
      migrating: false,
      lastMigrationEndMs: Number.NEGATIVE_INFINITY,
      completed: 0,
    };
    instances.set(id, inst);
    return inst;
  };
  const drawPhases = (ids: readonly string[]) => {
    // All report phases, then all flush phases: the order the gateway benchmark's recorded runs drew them in.
    for (const id of ids) reportPhaseMs.set(id, random() * setup.reportIntervalMs);
    for (const id of ids) flushPhaseMs.set(id, random() * setup.flushIntervalMs);
  };
  const startReporting = (inst: SimInstance) => {
    const phase = reportPhaseMs.get(inst.id)!;
    nextReportMs.set(inst.id, inst.readyAtMs + phase);
  };
  const initial = setup.autoscale?.initialInstances ?? setup.instances;
  for (let i = 0; i < initial; i++) createInstance(0, 0);
  drawPhases([...instances.keys()]);
  for (const inst of instances.values()) startReporting(inst);
  let pending: PendingReport[] = [];

  const ttfts: number[] = [];
  const tpots: number[] = [];
  const e2es: number[] = [];
  const byPriority = {
    high: { ttft: [] as number[], tpot: [] as number[], e2e: [] as number[] },
    normal: { ttft: [] as number[], tpot: [] as number[], e2e: [] as number[] },
  };
  const tracked = new Map<string, Tracked>();
  let completed = 0;
  let lost = 0;
  let outstanding = 0;
  let rejectedOverloaded = 0;
  let refusedByInstance = 0;
  let rejectedNoInstance = 0;
  let lastFinishMs = 0;
  const runs: number[] = [];
  let lastChosen: string | undefined;
  const hasHighPriority = setup.requests.some((r) => r.priority === "high");
  const honour = setup.honourPriorities ?? true;

  const live = () => [...instances.values()].filter((i) => i.deletedAtMs === undefined);
  const advanceAll = (toMs: number) => {
    for (const inst of instances.values()) if (inst.deletedAtMs === undefined) inst.engine.advance(toMs, false);
  };
  // Reports generated up to `toMs` (engines advanced to each generation time first), and those delivered by then.
  const reportsUntil = (toMs: number) => {
    for (;;) {
      let id: string | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const [i, t] of nextReportMs) if (t < at) [id, at] = [i, t];
      if (id === undefined || at > toMs) break;
      const inst = instances.get(id)!;
      inst.engine.advance(at, false);
      const phase = flushPhaseMs.get(id)!;
      const deliverAtMs = phase + Math.ceil((at - phase) / setup.flushIntervalMs) * setup.flushIntervalMs;
      const entry = loadEntry(id, inst.engine, at);
      inst.latestEntry = entry;
      pending.push({ deliverAtMs, entry });
      nextReportMs.set(id, at + setup.reportIntervalMs);
    }
    if (pending.length === 0 || pending.every((p) => p.deliverAtMs > toMs)) return;
    const due = pending.filter((p) => p.deliverAtMs <= toMs).sort((a, b) => a.deliverAtMs - b.deliverAtMs);
    pending = pending.filter((p) => p.deliverAtMs > toMs);
    for (const p of due) {
      const report = reportFromLoadEntry(p.entry);
      if (!report || "invalid" in report)
        throw new Error(
          `the simulated load report of ${p.entry.workerId} does not validate: ${JSON.stringify(report)}`,
        );
      view.apply(report, p.deliverAtMs);
      const inst = instances.get(p.entry.workerId);
      if (inst) inst.deliveredEntry = p.entry;
    }
  };

  const sinkFor = (requestId: string, t: Tracked): RequestSink => {
    const sink = {
      token: (_id: string, index: number, atMs: number) => {
        if (index === 0 || t.firstTokenMs === undefined) {
          t.firstTokenMs = atMs;
          t.lastTokenMs = atMs;
          return;
        }
        const gap = atMs - t.lastTokenMs!;
        if (setup.preemptionsOf && gap > (t.lastGapMs ?? 0)) {
          const count = setup.preemptionsOf(instances.get(t.owner)!.engine, requestId);
          if (count !== undefined) {
            if (t.preemptionsSeen !== undefined && count > t.preemptionsSeen)
              t.preemptionLossMs += gap - (t.lastGapMs ?? 0);
            t.preemptionsSeen = count;
          }
        } else if (t.preemptionsSeen === undefined && setup.preemptionsOf) {
          t.preemptionsSeen = setup.preemptionsOf(instances.get(t.owner)!.engine, requestId);
        }
        t.lastGapMs = gap;
        t.lastTokenMs = atMs;
      },
      finish: (result: RequestResult) => {
        dispatcher.release(requestId);
        outstanding -= 1;
        if (result.outcome !== "completed") {
          lost += 1;
          return;
        }
        completed += 1;
        const owner = instances.get(t.owner)!;
        owner.completed += 1;
        lastFinishMs = Math.max(lastFinishMs, result.finishedAtMs);
        const group = byPriority[t.priority];
        if (t.firstTokenMs !== undefined) {
          ttfts.push(t.firstTokenMs - t.arrivalMs);
          group.ttft.push(t.firstTokenMs - t.arrivalMs);
        }
        e2es.push(result.finishedAtMs - t.arrivalMs);
        group.e2e.push(result.finishedAtMs - t.arrivalMs);
        if (result.outputTokens > 1 && result.firstTokenAtMs !== undefined) {
          const tpot = (result.finishedAtMs - result.firstTokenAtMs) / (result.outputTokens - 1);
          tpots.push(tpot);
          group.tpot.push(tpot);
        }
      },
      // RequestSink.migrated (the engine's live migration): the destination owns the request from now on.
      migrated: (_id: string, to: { destination: string }) => {
        t.owner = to.destination;
        t.preemptionsSeen = undefined;
      },
    };
    return sink;
  };

  const dispatch = (r: SimRequest, requestId: string, atMs: number) => {
    const priority = r.priority ?? "normal";
    const asPriority = honour ? priority : "normal";
    const tried = new Set<string>();
    for (let attempt = 0; attempt < config.maxAttempts; attempt++) {
      let chosenId: string | undefined;
      try {
        chosenId = dispatcher.choose(
          { requestId, model: setup.engine.modelName, priority: asPriority, promptTokens: r.promptTokens },
          "colocated",
          tried,
          atMs,
        )?.id;
      } catch (error) {
        if (error instanceof GatewayError && error.status === 429) {
          rejectedOverloaded += 1;
          return;
        }
        throw error;
      }
      if (!chosenId) break;
      const inst = instances.get(chosenId);
      if (!inst) throw new Error(`dispatch chose ${chosenId}, which the simulation never created`);
      if (chosenId === lastChosen) runs[runs.length - 1]! += 1;
      else runs.push(1);
      lastChosen = chosenId;
      const t: Tracked = { arrivalMs: r.arrivalMs, priority, owner: chosenId, preemptionLossMs: 0 };
      const admission = inst.engine.submit(
        {
          requestId,
          promptTokens: r.promptTokens,
          maxOutputTokens: r.outputTokens,
          priority: asPriority === "high" ? 1 : 0,
        },
        sinkFor(requestId, t),
        atMs,
      );
      if (admission.accepted) {
        tracked.set(requestId, t);
        outstanding += 1;
        return;
      }
      dispatcher.release(requestId);
      if (admission.code === "too-large") {
        refusedByInstance += 1;
        return;
      }
      if (admission.code !== "draining")
        throw new Error(`instance ${chosenId} refused ${requestId}: ${admission.reason}`);
      tried.add(chosenId);
    }
    rejectedNoInstance += 1;
  };

  // Migration and scaling state.
  const migrationRuns = new Set<SimMigrationRun>();
  const downtimes: number[] = [];
  const durations: number[] = [];
  const abortCodes: Record<string, number> = {};
  const byReason: Record<string, number> = {};
  let planned = 0;
  let committed = 0;
  let aborted = 0;
  let ups = 0;
  let downs = 0;
  let deleted = 0;
  let lastScaledAtMs: number | undefined;
  const instanceCounts: number[] = [];
  const fragmentation: number[] = [];

  const planMigrations = (atMs: number) => {
    const m = setup.migration!;
    const view: MigrationInstance[] = [];
    for (const inst of live()) {
      const entry = inst.deliveredEntry;
      if (!entry || inst.readyAtMs > atMs) continue;
      const stale = entry.unixMs < inst.lastMigrationEndMs;
      view.push({
        id: inst.id,
        load: instanceLoadOf(entry),
        candidates: m.candidatesOf(entry),
        migrating: inst.migrating || stale,
      });
    }
    for (const move of m.plan(view)) {
      const src = instances.get(move.sourceId);
      const dst = instances.get(move.destinationId);
      if (
        !src ||
        !dst ||
        src.migrating ||
        dst.migrating ||
        src.deletedAtMs !== undefined ||
        dst.deletedAtMs !== undefined
      )
        continue;
      planned += 1;
      byReason[move.reason] = (byReason[move.reason] ?? 0) + 1;
      src.engine.advance(atMs, false);
      dst.engine.advance(atMs, false);
      src.migrating = true;
      dst.migrating = true;
      let ended = false;
      const holder: { run?: SimMigrationRun } = {};
      const run: SimMigrationRun = m.start({
        source: src.engine,
        destination: dst.engine,
        sourceId: src.id,
        destinationId: dst.id,
        requestId: move.requestId,
        atMs,
        onEnd: (outcome) => {
          ended = true;
          src.migrating = false;
          dst.migrating = false;
          const endMs = atMs + outcome.durationMs;
          src.lastMigrationEndMs = endMs;
          dst.lastMigrationEndMs = endMs;
          durations.push(outcome.durationMs);
          if (outcome.committed) {
            committed += 1;
            downtimes.push(outcome.downtimeMs);
          } else {
            aborted += 1;
            const code = outcome.abortCode ?? "unknown";
            abortCodes[code] = (abortCodes[code] ?? 0) + 1;
          }
          if (holder.run) migrationRuns.delete(holder.run);
        },
      });
      holder.run = run;
      if (!ended) migrationRuns.add(run);
    }
  };

  const scale = (atMs: number) => {
    const a = setup.autoscale!;
    const ready = live().filter((i) => i.readyAtMs <= atMs && i.deliveredEntry);
    const starting = live().filter((i) => i.readyAtMs > atMs || !i.deliveredEntry).length;
    const decision = a.decide({
      nowMs: atMs,
      ...(lastScaledAtMs !== undefined ? { lastScaledAtMs } : {}),
      pools: [
        {
          role: "colocated",
          instances: ready.map((i) => ({
            id: i.id,
            load: instanceLoadOf(i.deliveredEntry!),
            waitingDemandBlocks: i.deliveredEntry!.waitingDemandBlocks ?? 0,
          })),
          startingInstances: starting,
          minInstances: a.minInstances,
          maxInstances: a.maxInstances,
          capacityInstances: Math.max(0, a.clusterInstances - ready.length - starting),
        },
      ],
    });
    if (decision.kind === "up") {
      const inst = createInstance(atMs, atMs + a.startupMs);
      drawPhases([inst.id]);
      startReporting(inst);
      ups += 1;
      lastScaledAtMs = atMs;
    } else if (decision.kind === "down" && decision.drainInstanceId) {
      const inst = instances.get(decision.drainInstanceId);
      if (inst && !inst.draining && inst.deletedAtMs === undefined) {
        inst.engine.advance(atMs, false);
        inst.engine.drain();
        inst.draining = true;
        downs += 1;
        lastScaledAtMs = atMs;
      }
    }
  };

  const deleteDrained = (atMs: number) => {
    for (const inst of live()) {
      if (!inst.draining || inst.migrating) continue;
      inst.engine.advance(atMs, false);
      if (inst.engine.runningRequests > 0 || inst.engine.queueLength > 0) continue;
      inst.preemptionsAtDeletion = inst.engine.load(atMs).preemptionsTotal;
      inst.deletedAtMs = atMs;
      nextReportMs.delete(inst.id);
      deleted += 1;
    }
  };

  // Fragmentation at a sample: some instance's queue head does not fit its own free blocks but would fit the pool's.
  const sampleFragmentation = () => {
    let free = 0;
    let total = 0;
    let stuck = 0;
    const entries = live()
      .map((i) => i.latestEntry)
      .filter((e): e is LoadEntry => e !== undefined);
    for (const e of entries) {
      const own = (e.kvBlocksTotal ?? 0) - (e.kvBlocksUsed ?? 0);
      free += own;
      total += e.kvBlocksTotal ?? 0;
      const head = e.headOfLineDemandBlocks ?? 0;
      if (e.queueLength > 0 && head > own) stuck = Math.max(stuck, head);
    }
    instanceCounts.push(live().length);
    fragmentation.push(total > 0 && stuck > 0 && free >= stuck ? free / total : 0);
  };

  // Traffic starts once every instance's first report has reached the view, as in a pool that is up and reporting.
  const warmupMs = setup.reportIntervalMs + setup.flushIntervalMs;
  const firstArrivalMs = setup.requests[0]?.arrivalMs ?? 0;
  const arrivals = setup.requests.map((r) => ({ ...r, arrivalMs: r.arrivalMs - firstArrivalMs + warmupMs }));
  const samplePeriodMs = setup.reportIntervalMs;
  let nextSampleMs = warmupMs;
  let nextPlanMs = setup.migration ? warmupMs + setup.migration.periodMs : Number.POSITIVE_INFINITY;
  let nextScaleMs = setup.autoscale ? warmupMs + setup.autoscale.periodMs : Number.POSITIVE_INFINITY;
  const lastArrivalMs = arrivals[arrivals.length - 1]?.arrivalMs ?? warmupMs;
  // A request that never ends (a defect) must not spin the loop forever: give up a simulated day after the last
  // arrival.
  const giveUpMs = lastArrivalMs + 86_400_000;
  let n = 0;
  for (;;) {
    const arrivalAt = n < arrivals.length ? arrivals[n]!.arrivalMs : Number.POSITIVE_INFINITY;
    if (n >= arrivals.length && outstanding === 0 && migrationRuns.size === 0) break;
    let t = Math.min(arrivalAt, nextSampleMs, nextPlanMs, nextScaleMs);
    for (const run of migrationRuns) t = Math.min(t, run.nextEventMs() ?? Number.POSITIVE_INFINITY);
    if (t > giveUpMs) break;
    reportsUntil(t);
    for (const run of [...migrationRuns]) run.advance(t);
    advanceAll(t);
    if (t === arrivalAt) {
      dispatch(arrivals[n]!, `r${n}`, t);
      n += 1;
      continue;
    }
    if (t === nextSampleMs) {
      if (n < arrivals.length) sampleFragmentation();
      nextSampleMs += samplePeriodMs;
    }
    if (t === nextPlanMs) {
      planMigrations(t);
      nextPlanMs += setup.migration!.periodMs;
    }
    if (t === nextScaleMs) {
      deleteDrained(t);
      scale(t);
      nextScaleMs += setup.autoscale!.periodMs;
    }
  }
  lost += outstanding;
  const endMs = Math.max(lastFinishMs, warmupMs);
  let preemptions = 0;
  let instanceMs = 0;
  for (const inst of instances.values()) {
    preemptions += inst.preemptionsAtDeletion ?? inst.engine.load(endMs).preemptionsTotal;
    const from = Math.max(inst.createdAtMs, warmupMs);
    const to = Math.min(inst.deletedAtMs ?? endMs, endMs);
    instanceMs += Math.max(0, to - from);
  }
  const losses = [...tracked.values()].map((t) => t.preemptionLossMs);
  const totalLoss = losses.reduce((s, x) => s + x, 0);
  return {
    policy: setup.policy,
    requests: setup.requests.length,
    completed,
    rejectedOverloaded,
    refusedByInstance,
    rejectedNoInstance,
    requestsLost: lost,
    ttft: summarize(ttfts),
    tpot: summarize(tpots),
    e2e: summarize(e2es),
    latencyQuantilesMs: { ttft: quantiles(ttfts), tpot: quantiles(tpots) },
    ...(hasHighPriority ? { byPriority: { high: group(byPriority.high), normal: group(byPriority.normal) } } : {}),
    preemptions,
    ...(setup.preemptionsOf
      ? {
          preemptionLoss: {
            totalMs: totalLoss,
            meanPerRequestMs: totalLoss / Math.max(1, completed),
            requestsPreempted: losses.filter((x) => x > 0).length,
          },
        }
      : {}),
    fragmentationPercent: (100 * fragmentation.reduce((s, x) => s + x, 0)) / Math.max(1, fragmentation.length),
    migrations: {
      planned,
      committed,
      aborted,
      abortCodes,
      downtime: summarize(downtimes),
      durationMeanMs: durations.reduce((s, x) => s + x, 0) / Math.max(1, durations.length),
      byReason,
    },
    scaling: {
      ups,
      downs,
      deleted,
      minInstances: Math.min(...instanceCounts, initial),
      maxInstances: Math.max(...instanceCounts, initial),
      meanInstances: instanceCounts.reduce((s, x) => s + x, 0) / Math.max(1, instanceCounts.length),
    },
    instanceSeconds: instanceMs / 1000,
    dispatchRuns: { mean: runs.reduce((a, b) => a + b, 0) / Math.max(1, runs.length), max: Math.max(0, ...runs) },
    completedPerInstance: [...instances.values()].map((i) => i.completed),
    makespanMs: lastFinishMs - warmupMs,
  };
}

function group(g: { ttft: number[]; tpot: number[]; e2e: number[] }) {
  return { completed: g.e2e.length, ttft: summarize(g.ttft), tpot: summarize(g.tpot), e2e: summarize(g.e2e) };
}

/**
 * Completions per second one engine sustains with a backlog: `requests` all queued at time 0, run to the end.
 * The saturation rate of a pool is this times its instances (the load points are fractions of it).
 */
export function backlogThroughputPerSec(engine: EngineConfig, requests: readonly SimRequest[]): number {
  const e = new ServingEngine(engine, 0);
  let done = 0;
  let lastMs = 0;
  requests.forEach((r, n) => {
    const admission = e.submit(
      { requestId: `b${n}`, promptTokens: r.promptTokens, maxOutputTokens: r.outputTokens },
      {
        token: () => {},
        finish: (result) => {
          done += 1;
          lastMs = Math.max(lastMs, result.finishedAtMs);
        },
      },
      0,
    );
    if (!admission.accepted && admission.code !== "too-large")
      throw new Error(`backlog request refused: ${admission.reason}`);
  });
  e.advance(Number.POSITIVE_INFINITY);
  return done / (lastMs / 1000);
}
