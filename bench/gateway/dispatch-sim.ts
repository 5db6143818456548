/**
 * Dispatch policy on a simulated clock (discrete events): the gateway's own dispatch code in front of the agent's
 * own simulated engines, with no HTTP and no timers, so the result measures the policy and not this machine.
 *
 * - Dispatch: gateway/src/dispatch/dispatcher.ts (candidates from the InstanceView with this replica's
 *   reservations, admission with maxQueuedPerInstance, the policy of common/src/scheduler/, the reservation), built
 *   with the gateway's default configuration (loadGatewayConfig) and the policy under test.
 * - Instances: agent/src/workers/simulated/engine.ts ServingEngines configured by servingEngineConfig (step times
 *   and KV blocks from common/src/models/latency.ts, the planner's model).
 * - Load reports: each instance reports every `reportIntervalMs` (the agent's default, 1 s) at a phase of its own;
 *   the agent's publisher sends on its flush tick (`flushIntervalMs`, 250 ms, a phase of its own too), and the report
 *   reaches the view then. The report is the engine's load at generation time turned into the NATS LoadEntry and
 *   read with the gateway's reportFromLoadEntry. So dispatch sees loads as stale as the real gateway does, and its
 *   reservations bridge the gap exactly as they do there.
 * - Between events every engine is advanced to the event's time; tokens carry their modelled times, so TTFT and
 *   TPOT are exact on the model. Arrivals are dispatched at their arrival time (no network delay).
 * Deviations from the running system: no network or gateway processing time; the agent's 20 ms serving tick (which
 * delays token delivery in wall-clock time, not modelled time) does not exist here.
 */
import type { DispatchPolicyName } from "../../common/src/scheduler/dispatch.js";
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
  ttft: LatencySummary;
  tpot: LatencySummary;
  preemptions: number;
  /** Runs of consecutive dispatches to the same instance: how much a policy herds between two load reports. */
  dispatchRuns: { mean: number; max: number };
  /** Completions per instance: how evenly the policy spread the work. */
  completedPerInstance: number[];
  makespanMs: number;
}

export const MODEL = "Llama-3-8B";
export const GPU_MODEL = "H100-80GB";

/** The simulated instance the benchmark uses: Llama-3-8B, TP=1, on one H100, colocated (the planner's model). */
export function benchEngineConfig(): EngineConfig {
  return servingEngineConfig({ role: "colocated", shape: MODEL_SHAPES[MODEL], parallelism: { tp: 1, pp: 1 }, gpuModel: GPU_MODEL });
}

/** Nearest-rank percentile of ascending values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
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

function loadEntry(id: string, engine: ServingEngine, atMs: number): LoadEntry {
  // The fields the simulation runtime reports (agent/src/simulation/runtime.ts) and the agent publishes.
  const { draining, heldKvRequests: _held, ...load } = engine.load(atMs);
  return {
    workerId: id, podNamespace: "bench", podName: id, unixMs: atMs, ...load, draining, role: engine.config.role, model: engine.config.modelName,
    tp: 1, pp: 1, gpuModel: GPU_MODEL, engineUrl: `http://${id}.bench:8100`, servingDeployment: "bench/chat",
  };
}

/** Runs the requests through dispatch and the engines to completion. Pure apart from CPU time. */
export function simulateDispatch(setup: SimSetup): SimResult {
  const config = loadGatewayConfig({ GPUFLEET_GATEWAY_NATS_URL: "unused://simulated", GPUFLEET_GATEWAY_DISPATCH_POLICY: setup.policy, GPUFLEET_GATEWAY_IDENTITY: "bench" });
  const view = new InstanceView(config);
  const dispatcher = new Dispatcher({
    view,
    metrics: new GatewayMetrics(),
    config: { dispatchPolicy: config.dispatchPolicy, freeness: { highPriorityHeadroomFraction: config.highPriorityHeadroomFraction }, maxQueuedPerInstance: config.maxQueuedPerInstance, retryAfterS: config.retryAfterS },
  });
  const ids = Array.from({ length: setup.instances }, (_, i) => `instance-${String(i).padStart(2, "0")}`);
  const engines = new Map(ids.map((id) => [id, new ServingEngine(setup.engine, 0)]));
  const random = seededRandom(setup.seed);
  const reportPhaseMs = new Map(ids.map((id) => [id, random() * setup.reportIntervalMs]));
  const flushPhaseMs = new Map(ids.map((id) => [id, random() * setup.flushIntervalMs]));
  const nextReportMs = new Map(reportPhaseMs);
  let pending: PendingReport[] = [];

  const ttfts: number[] = [];
  const tpots: number[] = [];
  const completedBy = new Map(ids.map((id) => [id, 0]));
  let completed = 0;
  let rejectedOverloaded = 0;
  let refusedByInstance = 0;
  let lastFinishMs = 0;
  const runs: number[] = [];
  let lastChosen: string | undefined;

  const advanceAll = (toMs: number) => {
    for (const engine of engines.values()) engine.advance(toMs, false);
  };
  // Reports generated up to `toMs` (engines advanced to each generation time first), and those delivered by then.
  const reportsUntil = (toMs: number) => {
    for (;;) {
      let id: string | undefined;
      let at = Number.POSITIVE_INFINITY;
      for (const [i, t] of nextReportMs) if (t < at) [id, at] = [i, t];
      if (id === undefined || at > toMs) break;
      const engine = engines.get(id)!;
      engine.advance(at, false);
      const phase = flushPhaseMs.get(id)!;
      const deliverAtMs = phase + Math.ceil((at - phase) / setup.flushIntervalMs) * setup.flushIntervalMs;
      pending.push({ deliverAtMs, entry: loadEntry(id, engine, at) });
      nextReportMs.set(id, at + setup.reportIntervalMs);
    }
    const due = pending.filter((p) => p.deliverAtMs <= toMs).sort((a, b) => a.deliverAtMs - b.deliverAtMs);
    pending = pending.filter((p) => p.deliverAtMs > toMs);
    for (const p of due) {
      const report = reportFromLoadEntry(p.entry);
      if (!report || "invalid" in report) throw new Error(`the simulated load report of ${p.entry.workerId} does not validate: ${JSON.stringify(report)}`);
      view.apply(report, p.deliverAtMs);
    }
  };

  // Traffic starts once every instance's first report has reached the view, as in a pool that is up and reporting.
  const warmupMs = setup.reportIntervalMs + setup.flushIntervalMs;
  const firstArrivalMs = setup.requests[0]?.arrivalMs ?? 0;
  setup.requests.forEach((original, n) => {
    const r = { ...original, arrivalMs: original.arrivalMs - firstArrivalMs + warmupMs };
    const requestId = `r${n}`;
    reportsUntil(r.arrivalMs);
    advanceAll(r.arrivalMs);
    let chosenId: string | undefined;
    try {
      chosenId = dispatcher.choose({ requestId, model: setup.engine.modelName, priority: "normal", promptTokens: r.promptTokens }, "colocated", new Set(), r.arrivalMs)?.id;
    } catch (error) {
      if (error instanceof GatewayError && error.status === 429) {
        rejectedOverloaded += 1;
        return;
      }
      throw error;
    }
    if (!chosenId) throw new Error(`no instance for request ${requestId} at ${r.arrivalMs} ms: the simulated reports went stale`);
    const instanceId = chosenId;
    if (instanceId === lastChosen) runs[runs.length - 1]! += 1;
    else runs.push(1);
    lastChosen = instanceId;
    const sink: RequestSink = {
      token: (_id, index, atMs) => {
        if (index === 0) ttfts.push(atMs - r.arrivalMs);
      },
      finish: (result: RequestResult) => {
        dispatcher.release(requestId);
        if (result.outcome !== "completed") throw new Error(`request ${requestId} ended ${result.outcome}: ${result.reason ?? ""}`);
        completed += 1;
        completedBy.set(instanceId, completedBy.get(instanceId)! + 1);
        lastFinishMs = Math.max(lastFinishMs, result.finishedAtMs);
        if (result.outputTokens > 1 && result.firstTokenAtMs !== undefined) tpots.push((result.finishedAtMs - result.firstTokenAtMs) / (result.outputTokens - 1));
      },
    };
    const admission = engines.get(instanceId)!.submit({ requestId, promptTokens: r.promptTokens, maxOutputTokens: r.outputTokens }, sink, r.arrivalMs);
    if (!admission.accepted) {
      dispatcher.release(requestId);
      if (admission.code !== "too-large") throw new Error(`instance ${instanceId} refused ${requestId}: ${admission.reason}`);
      refusedByInstance += 1;
    }
  });
  advanceAll(Number.POSITIVE_INFINITY);
  const preemptions = [...engines.values()].reduce((s, e) => s + e.load(lastFinishMs).preemptionsTotal, 0);
  return {
    policy: setup.policy,
    requests: setup.requests.length,
    completed,
    rejectedOverloaded,
    refusedByInstance,
    ttft: summarize(ttfts),
    tpot: summarize(tpots),
    preemptions,
    dispatchRuns: { mean: runs.reduce((a, b) => a + b, 0) / Math.max(1, runs.length), max: Math.max(0, ...runs) },
    completedPerInstance: ids.map((id) => completedBy.get(id)!),
    makespanMs: lastFinishMs - warmupMs,
  };
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
    const admission = e.submit({ requestId: `b${n}`, promptTokens: r.promptTokens, maxOutputTokens: r.outputTokens }, {
      token: () => {},
      finish: (result) => {
        done += 1;
        lastMs = Math.max(lastMs, result.finishedAtMs);
      },
    }, 0);
    if (!admission.accepted && admission.code !== "too-large") throw new Error(`backlog request refused: ${admission.reason}`);
  });
  e.advance(Number.POSITIVE_INFINITY);
  return done / (lastMs / 1000);
}
