/**
 * TrainingJob reconciler: check → place (gang) → apply, inside the shared lifecycle (runtime/lifecycle.ts). Thin by
 * design: whether and where the gang runs is decided by pure code (controller-checks.ts, Holmes placement, the
 * restart policy); the gang step applies it.
 */
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { wouldChange, type ConditionUpdate } from "../../../crds/src/conditions.js";
import { OwnedLabel, Reason, TrainingCondition } from "../../../crds/src/reasons.js";
import {
  TrainingJobNames,
  TrainingPhase,
  type TrainingJob,
  type TrainingJobStatus,
} from "../../../crds/src/training-job.js";
import { capacityOf, type ClusterCapacity, type NodeCapacity } from "../cluster/capacity.js";
import type { ReconcileResult, Reconciler } from "../runtime/controller.js";
import type { ResilientInformer } from "../runtime/informer.js";
import { reconcileResource, type LifecycleDeps, type StepOutcome } from "../runtime/lifecycle.js";
import type { PendingEvent } from "../runtime/status.js";
import { checkTrainingSpec } from "./controller-checks.js";

export type TrainingGangOutcome = StepOutcome<TrainingJobStatus>;

/** Places, runs and restarts the gang of a job whose spec passed the checks (Holmes placement). */
export type TrainingGangStep = (
  job: TrainingJob,
  capacity: ClusterCapacity,
  candidates: NodeCapacity[],
) => Promise<TrainingGangOutcome>;

export interface TrainingReconcilerDeps extends LifecycleDeps {
  trainingJobs: ResilientInformer<TrainingJob>;
  nodes: Pick<ResilientInformer<V1Node>, "list">;
  pods: Pick<ResilientInformer<V1Pod>, "list">;
  gangStep: TrainingGangStep;
}

const TARGET = { group: API_GROUP, version: API_VERSION, plural: TrainingJobNames.plural, kind: TrainingJobNames.kind };
const TERMINAL: readonly string[] = [TrainingPhase.Succeeded, TrainingPhase.Failed];

export class TrainingJobReconciler implements Reconciler {
  readonly name = "trainingjob";

  constructor(private readonly deps: TrainingReconcilerDeps) {}

  reconcile(key: string): Promise<ReconcileResult> {
    return reconcileResource({
      key,
      informer: this.deps.trainingJobs,
      target: TARGET,
      deps: this.deps,
      skip: (job) => TERMINAL.includes(job.status?.phase ?? ""),
      decide: (job) => this.decide(job),
    });
  }

  private async decide(job: TrainingJob): Promise<TrainingGangOutcome> {
    const capacity = capacityOf(this.deps.nodes, this.deps.pods);
    const check = checkTrainingSpec(job.spec, capacity.nodes);
    if (check.ok) return this.deps.gangStep(job, capacity, check.candidateNodes);
    // A gang placed for an earlier spec must not keep holding GPUs for a spec that cannot run.
    const released = await this.releaseGang(job);
    const unschedulable: ConditionUpdate = {
      type: TrainingCondition.Unschedulable,
      status: "True",
      reason: check.reason,
      message: check.message,
    };
    const events: PendingEvent[] = wouldChange(job.status?.conditions, unschedulable)
      ? [{ type: "Warning", reason: check.reason, message: check.message }]
      : [];
    if (released > 0)
      events.push({
        type: "Normal",
        reason: Reason.PlanChanged,
        message: `deleted ${released} pod(s) of the previous placement: the new spec cannot be placed`,
      });
    return {
      status: {
        phase: TrainingPhase.Pending,
        restarts: job.status?.restarts ?? 0,
        ready: `0/${job.spec.nodes}`,
        placement: undefined,
        planSummary: undefined,
      },
      conditions: [
        unschedulable,
        { type: TrainingCondition.Placed, status: "False", reason: check.reason, message: "no placement" },
      ],
      events,
    };
  }

  /** Deletes the job's pods (labelled with its name and owned by its uid); returns how many it deleted. */
  private async releaseGang(job: TrainingJob): Promise<number> {
    const { namespace, name, uid } = job.metadata;
    const owned = this.deps.pods
      .list(namespace)
      .filter(
        (pod) =>
          pod.metadata?.labels?.[OwnedLabel.trainingJob] === name &&
          (pod.metadata?.ownerReferences ?? []).some((ref) => ref.uid === uid) &&
          !pod.metadata?.deletionTimestamp,
      );
    for (const pod of owned)
      await this.deps.applier.delete({
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: pod.metadata?.name, namespace },
      });
    return owned.length;
  }
}
