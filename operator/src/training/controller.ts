/**
 * TrainingJob reconciler: fetch → check → place (gang) → apply → status. Thin by design: whether and where the gang
 * runs is decided by pure code (controller-checks.ts, Holmes placement, the restart policy); this file reads caches,
 * writes objects and status.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { conditionChanged, setCondition, type Condition } from "../../../crds/src/conditions.js";
import { OwnedLabel, Reason, TrainingCondition } from "../../../crds/src/reasons.js";
import { TrainingJobNames, TrainingPhase, type TrainingJob, type TrainingJobStatus } from "../../../crds/src/training-job.js";
import { summarizeCapacity, type ClusterCapacity, type NodeCapacity } from "../cluster/capacity.js";
import type { Applier } from "../runtime/apply.js";
import type { Clock } from "../runtime/clock.js";
import type { ReconcileResult, Reconciler } from "../runtime/controller.js";
import type { EventSink } from "../runtime/events.js";
import { parseKey, type ResilientInformer } from "../runtime/informer.js";
import type { Logger } from "../runtime/logger.js";
import { commitStatus, type PendingEvent } from "../runtime/status.js";
import { checkTrainingSpec } from "./controller-checks.js";

export interface TrainingGangOutcome {
  status: Partial<TrainingJobStatus>;
  conditions: { type: string; status: "True" | "False" | "Unknown"; reason: string; message: string }[];
  events: PendingEvent[];
  requeueAfterMs?: number;
}

/** Places, runs and restarts the gang of a job whose spec passed the checks (Holmes placement, issue 5). */
export type TrainingGangStep = (job: TrainingJob, capacity: ClusterCapacity, candidates: NodeCapacity[]) => Promise<TrainingGangOutcome>;

export interface TrainingReconcilerDeps {
  trainingJobs: ResilientInformer<TrainingJob>;
  nodes: ResilientInformer<V1Node>;
  pods: ResilientInformer<V1Pod>;
  applier: Applier;
  events: EventSink;
  clock: Clock;
  logger: Logger;
  gangStep?: TrainingGangStep;
}

const TERMINAL: readonly string[] = [TrainingPhase.Succeeded, TrainingPhase.Failed];

export class TrainingJobReconciler implements Reconciler {
  readonly name = "trainingjob";

  constructor(private readonly deps: TrainingReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = parseKey(key);
    const job = this.deps.trainingJobs.get(name, namespace);
    if (!job || job.metadata.deletionTimestamp) return {};
    if (job.status?.phase && TERMINAL.includes(job.status.phase)) return {};
    const generation = job.metadata.generation ?? 0;
    const now = new Date(this.deps.clock.now());
    const capacity = summarizeCapacity(this.deps.nodes.list(), this.deps.pods.list());
    const previous = job.status?.conditions;
    let conditions: Condition[] = [...(previous ?? [])];
    const set = (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => {
      conditions = setCondition(conditions, { type, status, reason, message }, generation, now);
    };

    const events: PendingEvent[] = [];
    let status: TrainingJobStatus;
    let requeueAfterMs: number | undefined;
    const check = checkTrainingSpec(job.spec, capacity.nodes);
    if (!check.ok) {
      // A gang placed for an earlier spec must not keep holding GPUs for a spec that cannot run.
      const released = await this.releaseGang(job);
      set(TrainingCondition.Unschedulable, "True", check.reason, check.message);
      set(TrainingCondition.Placed, "False", check.reason, "no placement");
      status = { ...job.status, observedGeneration: generation, phase: TrainingPhase.Pending, restarts: job.status?.restarts ?? 0, ready: `0/${job.spec.nodes}`, placement: undefined, planSummary: undefined, conditions };
      if (conditionChanged(previous, conditions, TrainingCondition.Unschedulable)) events.push({ type: "Warning", reason: check.reason, message: check.message });
      if (released > 0) events.push({ type: "Normal", reason: Reason.PlanChanged, message: `deleted ${released} pod(s) of the previous placement: the new spec cannot be placed` });
    } else if (this.deps.gangStep) {
      const outcome = await this.deps.gangStep(job, capacity, check.candidateNodes);
      for (const c of outcome.conditions) set(c.type, c.status, c.reason, c.message);
      status = { ...job.status, ...outcome.status, observedGeneration: generation, conditions };
      events.push(...outcome.events);
      requeueAfterMs = outcome.requeueAfterMs;
    } else {
      set(TrainingCondition.Placed, "Unknown", "AwaitingPlacement", `spec accepted: ${check.candidateNodes.length} candidate nodes; no gang placement is configured in this operator build`);
      status = { ...job.status, observedGeneration: generation, phase: TrainingPhase.Pending, restarts: job.status?.restarts ?? 0, conditions };
    }

    await commitStatus(
      this.deps,
      job,
      { group: API_GROUP, version: API_VERSION, plural: TrainingJobNames.plural, kind: TrainingJobNames.kind, namespace, name },
      status,
      events,
    );
    return requeueAfterMs === undefined ? {} : { requeueAfterMs };
  }

  /** Deletes the job's pods (labelled with its name and owned by its uid); returns how many it deleted. */
  private async releaseGang(job: TrainingJob): Promise<number> {
    const { namespace, name, uid } = job.metadata;
    const owned = this.deps.pods.list(namespace).filter(
      (pod) => pod.metadata?.labels?.[OwnedLabel.trainingJob] === name && (pod.metadata?.ownerReferences ?? []).some((ref) => ref.uid === uid) && !pod.metadata?.deletionTimestamp,
    );
    for (const pod of owned) await this.deps.applier.delete({ apiVersion: "v1", kind: "Pod", metadata: { name: pod.metadata?.name, namespace } });
    return owned.length;
  }
}
