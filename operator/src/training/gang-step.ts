/**
 * The TrainingJob gang step (issue 5): called by the reconciler after the spec checks pass, it reads the job's
 * pods, decides with pure code (observeGang, decideRestart, planTrainingPlacement) and acts:
 *
 *   no pods            → plan the whole gang (Holmes) and create the headless Service and every pod bound to its
 *                        planned node; or, when it does not fit, create nothing: Unschedulable with what is missing
 *   placing / pending  → report Placed; all Running → Running; all Succeeded → Succeeded
 *   a member failed, was deleted, its node was isolated, or fault detection recorded a fault of this attempt
 *                      (status.faults, operator/src/training/faults/)
 *                      → delete every pod of the gang, count a restart, wait out the backoff (phase Restarting),
 *                        then re-place on healthy nodes (avoiding the failed ones when the cluster allows) resuming
 *                        from status.lastCheckpointStep; when maxRestarts is spent → Failed, pods deleted
 *   stale pods (older attempt or spec) → delete them first, then place anew
 *
 * All or nothing: pods are created only for a whole placement, and if creating any of them fails the ones created
 * are deleted again before the error propagates (the reconcile then retries with backoff). Capacity the caches do
 * not show yet (pods just created) is taken out of the candidates first, so two jobs never plan the same GPUs.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { API_GROUP_VERSION } from "../../../crds/src/common.js";
import { OwnedLabel, Reason, TrainingCondition } from "../../../crds/src/reasons.js";
import { TrainingJobNames, TrainingPhase, type TrainingJob } from "../../../crds/src/training-job.js";
import type { ClusterCapacity, NodeCapacity } from "../cluster/capacity.js";
import type { Applier } from "../runtime/apply.js";
import type { Clock } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";
import type { PendingEvent } from "../runtime/status.js";
import type { TrainingGangOutcome, TrainingGangStep } from "./controller.js";
import { planGangPods, placementStatus } from "./gang.js";
import { GangMemory, type JobRecord } from "./gang-memory.js";
import { gangPodObject, gangService, type GangObjectOptions } from "./gang-objects.js";
import {
  GangAnnotation,
  GangStateKind,
  observeGang,
  stableHash,
  type GangState,
  type ObservedPod,
} from "./gang-state.js";
import { planTrainingPlacement } from "./placement.js";
import { decideRestart, RestartAction, type PodPhase } from "./restart.js";
import { faultRestartNodes } from "./faults/plan.js";
import type { CandidateNode, TrainingJobShape, TrainingPlacementResult } from "./types.js";

export interface TrainingGangStepDeps {
  applier: Pick<Applier, "apply" | "create" | "delete">;
  /** The pod cache (all namespaces); the job's pods are those labelled and owned by it. */
  pods: { list(): readonly V1Pod[] };
  clock: Pick<Clock, "now">;
  logger?: Pick<Logger, "info" | "warn" | "debug">;
  memory?: GangMemory;
  /** torch.distributed rendezvous port (MASTER_PORT); default 29500. */
  masterPort?: number;
  /** Re-plan a waiting (Unschedulable) job this often: GPUs freed by other jobs' pods wake no event for it. */
  unschedulableRetryMs?: number;
  /** Re-check a gang being created or drained this often, in case an event is missed. */
  settleRetryMs?: number;
  /** API calls in flight while creating or deleting a gang's pods. */
  concurrency?: number;
  /** Host directory of the agent's worker socket, mounted into the gang's pods. */
  workerSocketDir?: string;
  /** Called once per restart decided, with its cause (pod_failed, node_isolated, fault). */
  onRestart?: (cause: "pod_failed" | "node_isolated" | "fault") => void;
}

type ConditionOut = TrainingGangOutcome["conditions"][number];

const PLACED_PHASES: readonly string[] = [TrainingPhase.Placed, TrainingPhase.Running];

export function createTrainingGangStep(deps: TrainingGangStepDeps): TrainingGangStep {
  const memory = deps.memory ?? new GangMemory();
  const masterPort = deps.masterPort ?? 29500;
  const unschedulableRetryMs = deps.unschedulableRetryMs ?? 10_000;
  const settleRetryMs = deps.settleRetryMs ?? 2_000;
  const concurrency = deps.concurrency ?? 16;

  return async (
    cachedJob: TrainingJob,
    capacity: ClusterCapacity,
    candidates: NodeCapacity[],
  ): Promise<TrainingGangOutcome> => {
    // Informer objects may lack TypeMeta; owner references need it.
    const job: TrainingJob = { ...cachedJob, apiVersion: API_GROUP_VERSION, kind: TrainingJobNames.kind };
    const namespace = job.metadata.namespace!;
    const name = job.metadata.name!;
    const uid = job.metadata.uid!;
    const nowMs = deps.clock.now();
    const gangSize = job.spec.nodes;
    const allPods = deps.pods.list();
    memory.sync(
      allPods.map((p) => ({ namespace: p.metadata?.namespace, name: p.metadata?.name, uid: p.metadata?.uid })),
      nowMs,
    );

    const record: JobRecord = memory.jobRecord(uid) ?? recordFromStatus(job, nowMs);
    const specHash = stableHash(job.spec);
    const observed = allPods.filter((p) => ownedBy(p, namespace, name, uid)).map(observePod);
    const state = observeGang({
      jobName: name,
      gangSize,
      plannedNodes: record.placement?.nodes ?? job.status?.placement?.nodes,
      attempt: record.restarts,
      specHash,
      pods: observed,
      awaitingPods: memory.awaiting(uid),
      deletedPods: memory.deletedUids(),
      nodes: capacity.nodes,
      wasPlaced: PLACED_PHASES.includes(record.phase),
    });
    deps.logger?.debug(
      { job: `${namespace}/${name}`, state: state.kind, detail: state.detail, restarts: record.restarts },
      "gang observed",
    );
    const faulted = faultRestartNodes(job.status?.faults, record.restarts);

    const remember = (change: Partial<JobRecord>): JobRecord => {
      const next = { ...record, ...change };
      memory.record(uid, next, nowMs);
      return next;
    };
    const deletePods = async (pods: readonly ObservedPod[]): Promise<void> => {
      memory.markDeleted(
        uid,
        pods.map((p) => p.uid),
        nowMs,
      );
      await inPool(pods, concurrency, (p) =>
        deps.applier.delete({ apiVersion: "v1", kind: "Pod", metadata: { name: p.name, namespace } }),
      );
    };

    // Terminal failure decided earlier whose status write the cache may not show yet: keep saying so.
    if (record.phase === TrainingPhase.Failed) {
      if (state.current.length > 0) await deletePods(state.current);
      return failedOutcome(record, gangSize, []);
    }

    switch (state.kind) {
      case GangStateKind.draining:
      case GangStateKind.partial: {
        await deletePods(state.toDelete);
        const specChanged = state.toDelete.some((p) => p.specHash !== specHash);
        if (record.phase === TrainingPhase.Restarting)
          return restartingOutcome(record, gangSize, nowMs, [], settleRetryMs);
        const why = specChanged
          ? "the spec changed"
          : state.kind === GangStateKind.partial
            ? "a partial gang was left (no member is awaited)"
            : "pods of an earlier attempt remain";
        const next = remember({ phase: TrainingPhase.Pending, placement: undefined, planSummary: undefined });
        const events: PendingEvent[] =
          state.toDelete.length > 0
            ? [
                {
                  type: "Normal",
                  reason: Reason.PlanChanged,
                  message: `deleting ${state.toDelete.length} pod(s) before placing the gang anew: ${why}`,
                },
              ]
            : [];
        return {
          status: {
            phase: TrainingPhase.Pending,
            restarts: next.restarts,
            ready: `0/${gangSize}`,
            placement: undefined,
            planSummary: undefined,
          },
          conditions: [
            {
              type: TrainingCondition.Placed,
              status: "False",
              reason: Reason.PlanChanged,
              message: `re-placing the gang: ${why}`,
            },
            {
              type: TrainingCondition.Running,
              status: "False",
              reason: Reason.PlanChanged,
              message: `0/${gangSize} pods running`,
            },
          ],
          events,
          requeueAfterMs: settleRetryMs,
        };
      }

      case GangStateKind.none: {
        if (record.phase === TrainingPhase.Restarting && nowMs < record.notBeforeMs) {
          return restartingOutcome(
            record,
            gangSize,
            nowMs,
            statusLagsRestart(job, record) ? [restartEvent(record)] : [],
            record.notBeforeMs - nowMs,
          );
        }
        return place(job, record, candidates, nowMs);
      }

      case GangStateKind.placing:
      case GangStateKind.succeeded:
        return report(job, record, state, gangSize, nowMs);

      case GangStateKind.placedPending:
      case GangStateKind.running:
        // A fault C4D recorded for this attempt restarts the gang even when it tainted nothing (a NIC marked, or a
        // restart only) or an admin removed the taint already.
        return faulted.faults.length === 0 ? report(job, record, state, gangSize, nowMs) : restartGang();

      case GangStateKind.failedMember:
      case GangStateKind.isolatedNode:
        return restartGang();
    }

    async function restartGang(): Promise<TrainingGangOutcome> {
      const decision = decideRestart({
        jobName: name,
        restarts: record.restarts,
        maxRestarts: job.spec.faultPolicy.maxRestarts,
        pods: [
          ...state.failed,
          ...state.current
            .filter((p) => p.phase !== "Failed")
            .map((p) => ({ name: p.name, nodeName: p.nodeName, phase: p.phase })),
        ],
        isolatedNodes: state.isolatedNodes,
        // A fault whose node is isolated already is told by "node … isolated".
        faults: faulted.faults.filter((f) => !f.node || !state.isolatedNodes.includes(f.node)).map((f) => f.summary),
        lastCheckpointStep: job.status?.lastCheckpointStep,
        backoffBaseMs: job.spec.faultPolicy.restartBackoffSeconds * 1000,
      });
      await deletePods(state.current);
      const avoidNodes = [
        ...new Set([...state.failed.map((f) => f.nodeName), ...state.isolatedNodes, ...faulted.nodes]),
      ];
      if (decision.action === RestartAction.fail) {
        const next = remember({
          phase: TrainingPhase.Failed,
          message: decision.message,
          notBeforeMs: 0,
          placement: undefined,
          planSummary: undefined,
        });
        return failedOutcome(next, gangSize, [
          { type: "Warning", reason: Reason.RestartBudgetExhausted, message: decision.message },
        ]);
      }
      deps.onRestart?.(
        state.failed.length > 0 ? "pod_failed" : state.isolatedNodes.length > 0 ? "node_isolated" : "fault",
      );
      const next = remember({
        phase: TrainingPhase.Restarting,
        restarts: decision.restarts,
        notBeforeMs: nowMs + decision.backoffMs,
        avoidNodes,
        message: decision.message,
        placement: undefined,
        planSummary: undefined,
      });
      deps.logger?.info(
        { job: `${namespace}/${name}`, restarts: next.restarts, backoffMs: decision.backoffMs, avoidNodes },
        decision.message,
      );
      return restartingOutcome(next, gangSize, nowMs, [restartEvent(next)], decision.backoffMs);
    }
  };

  async function place(
    job: TrainingJob,
    record: JobRecord,
    candidates: readonly NodeCapacity[],
    nowMs: number,
  ): Promise<TrainingGangOutcome> {
    const namespace = job.metadata.namespace!;
    const name = job.metadata.name!;
    const uid = job.metadata.uid!;
    const gangSize = job.spec.nodes;
    const restarting = record.phase === TrainingPhase.Restarting;
    const claimed = memory.claimedGpus();
    const nodes: CandidateNode[] = candidates.map((n) => ({
      ...n,
      gpusFree: Math.max(0, n.gpusFree - (claimed.get(n.nodeName) ?? 0)),
    }));
    const shape = jobShape(job);
    // Avoiding the failed members' nodes is a preference: when the cluster cannot hold the gang without them, a
    // node that was not isolated is better than not running at all.
    const avoid = new Set(restarting ? record.avoidNodes : []);
    let result: TrainingPlacementResult | undefined =
      avoid.size > 0
        ? planTrainingPlacement({ job: shape, nodes: nodes.filter((n) => !avoid.has(n.nodeName)) })
        : undefined;
    if (!result?.ok) result = planTrainingPlacement({ job: shape, nodes });

    if (!result.ok) {
      const reason = result.reason === "InvalidInput" ? Reason.InvalidSpec : Reason.InsufficientCapacity;
      const phase = restarting ? TrainingPhase.Restarting : TrainingPhase.Pending;
      const previous = job.status?.conditions?.find((c) => c.type === TrainingCondition.Unschedulable);
      const flipped = previous?.status !== "True" || previous.reason !== reason;
      const message = `${result.message}; nothing is bound until the whole gang fits`;
      return {
        status: {
          phase,
          restarts: record.restarts,
          ready: `0/${gangSize}`,
          placement: undefined,
          planSummary: undefined,
          nextRestartTime: undefined,
        },
        conditions: [
          { type: TrainingCondition.Unschedulable, status: "True", reason, message },
          {
            type: TrainingCondition.Placed,
            status: "False",
            reason,
            message: "no placement: the whole gang does not fit",
          },
          { type: TrainingCondition.Running, status: "False", reason, message: `0/${gangSize} pods running` },
        ],
        events: flipped ? [{ type: "Warning", reason, message }] : [],
        ...(reason === Reason.InsufficientCapacity ? { requeueAfterMs: unschedulableRetryMs } : {}),
      };
    }

    const placement = result;
    const resumeStep = job.status?.lastCheckpointStep ?? 0;
    const specHash = stableHash(job.spec);
    const gangPods = planGangPods(placement, {
      namespace,
      serviceName: name,
      masterPort,
      checkpointPath: job.spec.checkpoint.path,
      checkpointIntervalSteps: job.spec.checkpoint.intervalSteps,
      resumeStep,
      // The plan comes after placement (it needs it): a restart carries the QPs of the job's last plan (nccl.ts).
      ...(job.status?.traffic ? { qpsPerConnection: job.status.traffic.qpsPerConnection } : {}),
    });
    const opts: GangObjectOptions = {
      masterPort,
      attempt: record.restarts,
      specHash,
      workerSocketDir: deps.workerSocketDir,
      planHash: stableHash({ specHash, attempt: record.restarts, nodes: gangPods.map((p) => p.nodeName) }),
    };

    // Claim the whole placement before the first await: with several workers another job's reconcile runs during
    // this one's API calls, and must see these GPUs as taken (its plan is computed from the claims synchronously).
    memory.assume(
      gangPods.map((pod) => ({ namespace, name: pod.podName, jobUid: uid, nodeName: pod.nodeName, gpus: pod.gpus })),
      nowMs,
    );
    const created: string[] = [];
    try {
      await deps.applier.apply(gangService(job, opts));
      await inPool(gangPods, concurrency, async (pod) => {
        // Created, not applied: a gang's pods are never changed in place (a new plan deletes and re-creates them).
        await deps.applier.create(gangPodObject(job, pod, name, opts));
        created.push(pod.podName);
      });
    } catch (error) {
      // Never leave part of a gang holding GPUs.
      await inPool(created, concurrency, (podName) =>
        deps.applier.delete({ apiVersion: "v1", kind: "Pod", metadata: { name: podName, namespace } }),
      ).catch(() => undefined);
      memory.forgetPods(uid);
      throw new GangPlacementError(`${namespace}/${name}`, created.length, gangPods.length, { cause: error });
    }

    const status = placementStatus(placement);
    const next: JobRecord = {
      ...record,
      phase: TrainingPhase.Placed,
      notBeforeMs: 0,
      avoidNodes: [],
      placement: status,
      planSummary: placement.summary,
    };
    memory.record(uid, next, nowMs);
    const where = `${gangPods.length} pods on ${placement.islandsUsed.length} island(s) (${placement.islandsUsed.join(", ")})`;
    const resumed = record.restarts > 0 || resumeStep > 0 ? `, resuming from step ${resumeStep}` : "";
    deps.logger?.info(
      { job: `${namespace}/${name}`, nodes: status.nodes, resumeStep, attempt: record.restarts },
      "gang placed",
    );
    return {
      status: {
        phase: TrainingPhase.Placed,
        restarts: record.restarts,
        ready: `0/${gangSize}`,
        placement: status,
        planSummary: placement.summary,
        nextRestartTime: undefined,
        avoidNodes: undefined,
      },
      conditions: placedConditions(next, gangSize, 0, restarting),
      events: [
        {
          type: "Normal",
          reason: TrainingCondition.Placed,
          message: `placed ${where}${resumed}: ${placement.summary}`,
        },
      ],
    };
  }

  function report(
    job: TrainingJob,
    record: JobRecord,
    state: GangState,
    gangSize: number,
    nowMs: number,
  ): TrainingGangOutcome {
    const phase =
      state.kind === GangStateKind.running
        ? TrainingPhase.Running
        : state.kind === GangStateKind.succeeded
          ? TrainingPhase.Succeeded
          : TrainingPhase.Placed;
    const placement = record.placement ?? job.status?.placement;
    const planSummary = record.planSummary ?? job.status?.planSummary;
    const next = { ...record, phase, placement, planSummary };
    memory.record(job.metadata.uid!, next, nowMs);
    // Events compare with the status the API server holds (the cache), not with this process's memory: if the
    // write that carried an Event lost a race (409) or never happened, the retry still sees the old phase and
    // emits it again; once a write lands, the cache shows the new phase and nothing repeats.
    const written = job.status?.phase;
    const events: PendingEvent[] = [];
    let conditions = placedConditions(next, gangSize, state.running, false);
    if (!PLACED_PHASES.includes(written ?? "") && written !== TrainingPhase.Succeeded)
      events.push({
        type: "Normal",
        reason: TrainingCondition.Placed,
        message: `placed: ${planSummary ?? "the whole gang"}`,
      });
    if (phase === TrainingPhase.Running && written !== TrainingPhase.Running)
      events.push({ type: "Normal", reason: Reason.PodsReady, message: `all ${gangSize} pods running` });
    if (phase === TrainingPhase.Succeeded) {
      conditions = conditions.filter((c) => c.type !== TrainingCondition.Running);
      conditions.push({
        type: TrainingCondition.Succeeded,
        status: "True",
        reason: Reason.Completed,
        message: state.detail,
      });
      conditions.push({
        type: TrainingCondition.Running,
        status: "False",
        reason: Reason.Completed,
        message: state.detail,
      });
      if (written !== TrainingPhase.Succeeded)
        events.push({ type: "Normal", reason: Reason.Completed, message: state.detail });
    }
    return {
      status: {
        phase,
        restarts: record.restarts,
        ready: `${state.running}/${gangSize}`,
        placement,
        planSummary,
        nextRestartTime: undefined,
      },
      conditions,
      events,
      ...(state.kind === GangStateKind.placing ? { requeueAfterMs: settleRetryMs } : {}),
    };
  }
}

function placedConditions(record: JobRecord, gangSize: number, running: number, afterRestart: boolean): ConditionOut[] {
  const all = running === gangSize;
  const out: ConditionOut[] = [
    {
      type: TrainingCondition.Placed,
      status: "True",
      reason: Reason.PlanReady,
      message: record.planSummary ?? "placed",
    },
    {
      type: TrainingCondition.Unschedulable,
      status: "False",
      reason: Reason.PlanReady,
      message: `the whole gang of ${gangSize} pods is placed`,
    },
    {
      type: TrainingCondition.Running,
      status: all ? "True" : "False",
      reason: all ? Reason.PodsReady : Reason.PodsPending,
      message: `${running}/${gangSize} pods running`,
    },
  ];
  if (afterRestart || record.restarts > 0) {
    out.push({
      type: TrainingCondition.Restarting,
      status: "False",
      reason: Reason.PlanReady,
      message: `gang re-placed after restart ${record.restarts}`,
    });
  }
  return out;
}

function restartEvent(record: JobRecord): PendingEvent {
  return { type: "Warning", reason: Reason.GangMemberFailed, message: record.message };
}

/** The status the cache shows has not recorded this restart yet (its write failed or is in flight). */
function statusLagsRestart(job: TrainingJob, record: JobRecord): boolean {
  return (job.status?.restarts ?? 0) < record.restarts;
}

function restartingOutcome(
  record: JobRecord,
  gangSize: number,
  nowMs: number,
  events: PendingEvent[],
  requeueAfterMs: number,
): TrainingGangOutcome {
  const waitingMs = Math.max(0, record.notBeforeMs - nowMs);
  return {
    status: {
      phase: TrainingPhase.Restarting,
      restarts: record.restarts,
      ready: `0/${gangSize}`,
      placement: undefined,
      planSummary: undefined,
      nextRestartTime: new Date(record.notBeforeMs).toISOString().replace(/\.\d{3}Z$/, "Z"),
      avoidNodes: record.avoidNodes.length > 0 ? [...record.avoidNodes] : undefined,
    },
    conditions: [
      { type: TrainingCondition.Restarting, status: "True", reason: Reason.GangMemberFailed, message: record.message },
      {
        type: TrainingCondition.Placed,
        status: "False",
        reason: waitingMs > 0 ? Reason.BackoffPending : Reason.GangMemberFailed,
        message: "gang torn down; re-placed after the restart backoff",
      },
      {
        type: TrainingCondition.Running,
        status: "False",
        reason: Reason.GangMemberFailed,
        message: `0/${gangSize} pods running`,
      },
    ],
    events,
    requeueAfterMs: Math.max(0, requeueAfterMs),
  };
}

function failedOutcome(record: JobRecord, gangSize: number, events: PendingEvent[]): TrainingGangOutcome {
  return {
    status: {
      phase: TrainingPhase.Failed,
      restarts: record.restarts,
      ready: `0/${gangSize}`,
      placement: undefined,
      planSummary: undefined,
      nextRestartTime: undefined,
      avoidNodes: undefined,
    },
    conditions: [
      {
        type: TrainingCondition.Failed,
        status: "True",
        reason: Reason.RestartBudgetExhausted,
        message: record.message,
      },
      {
        type: TrainingCondition.Restarting,
        status: "False",
        reason: Reason.RestartBudgetExhausted,
        message: "no restarts left",
      },
      {
        type: TrainingCondition.Placed,
        status: "False",
        reason: Reason.RestartBudgetExhausted,
        message: "gang torn down",
      },
      {
        type: TrainingCondition.Running,
        status: "False",
        reason: Reason.RestartBudgetExhausted,
        message: `0/${gangSize} pods running`,
      },
    ],
    events,
  };
}

/** The record a job's status implies, for a job this process has not acted on yet (e.g. after a leader change). */
function recordFromStatus(job: TrainingJob, nowMs: number): JobRecord {
  const s = job.status;
  const next = s?.nextRestartTime ? Date.parse(s.nextRestartTime) : Number.NaN;
  return {
    restarts: s?.restarts ?? 0,
    phase: s?.phase ?? TrainingPhase.Pending,
    notBeforeMs: Number.isFinite(next) ? next : nowMs,
    avoidNodes: s?.avoidNodes ?? [],
    message:
      s?.conditions?.find(
        (c) => c.type === (s.phase === TrainingPhase.Failed ? TrainingCondition.Failed : TrainingCondition.Restarting),
      )?.message ?? "",
    ...(s?.placement ? { placement: s.placement } : {}),
    ...(s?.planSummary ? { planSummary: s.planSummary } : {}),
  };
}

export function jobShape(job: TrainingJob): TrainingJobShape {
  const { spec } = job;
  return {
    name: job.metadata.name!,
    nodes: spec.nodes,
    gpusPerNode: spec.gpusPerNode,
    tp: spec.parallelism.tp,
    pp: spec.parallelism.pp,
    dp: spec.parallelism.dp,
    model: { ...spec.model },
    nicAware: spec.placement?.nicAware ?? true,
    ...(spec.placement?.gpuModel ? { gpuModel: spec.placement.gpuModel } : {}),
  };
}

function ownedBy(pod: V1Pod, namespace: string, jobName: string, jobUid: string): boolean {
  const m = pod.metadata;
  if (m?.namespace !== namespace || m.labels?.[OwnedLabel.trainingJob] !== jobName) return false;
  // A pod left by an earlier job of the same name (its garbage collection still pending) is not ours.
  return (m.ownerReferences ?? []).some((r) => r.uid === jobUid);
}

const PHASES: readonly string[] = ["Pending", "Running", "Succeeded", "Failed", "Unknown"];

function observePod(pod: V1Pod): ObservedPod {
  const a = pod.metadata?.annotations ?? {};
  const attempt = Number(a[GangAnnotation.attempt]);
  const phase = pod.status?.phase ?? "Pending";
  return {
    name: pod.metadata?.name ?? "",
    uid: pod.metadata?.uid ?? "",
    nodeName: pod.spec?.nodeName ?? "",
    phase: (PHASES.includes(phase) ? phase : "Unknown") as PodPhase,
    deleting: pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
    attempt: a[GangAnnotation.attempt] !== undefined && Number.isInteger(attempt) ? attempt : undefined,
    specHash: a[GangAnnotation.specHash],
  };
}

export class GangPlacementError extends Error {
  override name = "GangPlacementError";
  constructor(
    readonly job: string,
    readonly created: number,
    readonly planned: number,
    options: ErrorOptions,
  ) {
    super(
      `creating the gang of ${job} failed after ${created} of ${planned} pods; the created ones were deleted again`,
      options,
    );
  }
}

/** Runs fn over items with at most `limit` in flight; rejects with the first error after all started ones end. */
async function inPool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < items.length && failure === undefined) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}
