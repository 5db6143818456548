/**
 * The writes of fault isolation (thin; the decisions are plan.ts's):
 *
 *  - the taint `gpufleet.io/isolated=c4d-<class>:NoSchedule`, with the evidence in the node annotation
 *    `gpufleet.io/isolation-reason`. Node.spec.taints is an atomic list, so the whole list is written with the
 *    resourceVersion it was read at (a concurrent writer, e.g. the node lifecycle controller, makes it 409 and we
 *    re-read). NoSchedule rather than NoExecute: the operator itself tears the gang down and re-places it (the
 *    restart path), and NoExecute would also evict everything else on the node at once, the agent that
 *    diagnoses it included. An admin un-isolates by removing the taint (docs/faults.md).
 *  - the node condition `NicDegraded-<nic>` (status True, reason NicDegraded) when C4D blames only one NIC: a
 *    strategic merge patch of nodes/status, which merges conditions by type and leaves the kubelet's alone.
 *  - the job's status.faults and fault conditions: a JSON merge patch of the status subresource guarded by the
 *    resourceVersion it was computed from, re-read and retried on 409 (as the checkpoint writer does).
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Node,
  type V1Taint,
} from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../../crds/src/common.js";
import { setCondition, type ConditionUpdate } from "../../../../crds/src/conditions.js";
import { Reason } from "../../../../crds/src/reasons.js";
import { IsolatedTaintKey } from "../../../../crds/src/topology.js";
import { TrainingJobNames, type FaultRecord, type TrainingJob } from "../../../../crds/src/training-job.js";
import { isConflict, isNotFound, KubeApiError } from "../../runtime/errors.js";
import { mergeFaultRecords } from "./plan.js";

/** Node annotation with the job and evidence behind an isolation (the taint value only names the class). */
export const IsolationReasonAnnotation = "gpufleet.io/isolation-reason";
export const ISOLATION_TAINT_EFFECT = "NoSchedule";
/** Node condition type of a degraded NIC. */
export const nicConditionType = (nic: string): string => `NicDegraded-${nic}`;

const FIELD_MANAGER = "gpufleet-operator-faults";
const MAX_CONFLICT_RETRIES = 10;

export type TaintResult = "tainted" | "already-isolated" | "node-gone";

/** What the monitor needs to write; an interface so unit tests of the monitor can record the calls. */
export interface FaultWriter {
  taintNode(node: string, value: string, reason: string, nowMs: number): Promise<TaintResult>;
  markNic(node: string, nic: string, message: string, nowMs: number): Promise<boolean>;
  /** Adds `records` to status.faults and applies `conditions`; returns the job as written (undefined: it is gone). */
  writeJobFaults(
    namespace: string,
    name: string,
    records: readonly FaultRecord[],
    conditions: readonly ConditionUpdate[],
    nowMs: number,
  ): Promise<TrainingJob | undefined>;
}

export class KubeFaultWriter implements FaultWriter {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async taintNode(node: string, value: string, reason: string, nowMs: number): Promise<TaintResult> {
    for (let attempt = 0; ; attempt++) {
      let current: V1Node;
      try {
        current = await this.core.readNode({ name: node });
      } catch (err) {
        if (isNotFound(err)) return "node-gone";
        throw new KubeApiError(`reading node ${node} to isolate it`, err);
      }
      const taints = current.spec?.taints ?? [];
      if (taints.some((t) => t.key === IsolatedTaintKey)) return "already-isolated";
      const taint: V1Taint = {
        key: IsolatedTaintKey,
        value,
        effect: ISOLATION_TAINT_EFFECT,
        timeAdded: new Date(nowMs),
      };
      const body = {
        metadata: {
          resourceVersion: current.metadata?.resourceVersion,
          annotations: { [IsolationReasonAnnotation]: reason },
        },
        spec: { taints: [...taints, taint] },
      };
      try {
        await this.core.patchNode(
          { name: node, body, fieldManager: FIELD_MANAGER },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        return "tainted";
      } catch (err) {
        if (isNotFound(err)) return "node-gone";
        if (!isConflict(err) || attempt >= MAX_CONFLICT_RETRIES)
          throw new KubeApiError(`tainting node ${node} ${IsolatedTaintKey}=${value}:${ISOLATION_TAINT_EFFECT}`, err);
      }
    }
  }

  async markNic(node: string, nic: string, message: string, nowMs: number): Promise<boolean> {
    const now = new Date(nowMs);
    const body = {
      status: {
        conditions: [
          {
            type: nicConditionType(nic),
            status: "True",
            reason: Reason.NicDegraded,
            message,
            lastTransitionTime: now,
            lastHeartbeatTime: now,
          },
        ],
      },
    };
    try {
      await this.core.patchNodeStatus(
        { name: node, body, fieldManager: FIELD_MANAGER },
        setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw new KubeApiError(`marking NIC ${nic} of node ${node} degraded`, err);
    }
  }

  async writeJobFaults(
    namespace: string,
    name: string,
    records: readonly FaultRecord[],
    conditions: readonly ConditionUpdate[],
    nowMs: number,
  ): Promise<TrainingJob | undefined> {
    const target = { group: API_GROUP, version: API_VERSION, plural: TrainingJobNames.plural, namespace, name };
    for (let attempt = 0; ; attempt++) {
      let current: TrainingJob;
      try {
        current = (await this.custom.getNamespacedCustomObject(target)) as TrainingJob;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw new KubeApiError(`reading TrainingJob ${namespace}/${name} to record a fault`, err);
      }
      const faults = mergeFaultRecords(current.status?.faults, records);
      let next = current.status?.conditions ?? [];
      for (const update of conditions)
        next = setCondition(next, update, current.metadata.generation ?? 0, new Date(nowMs));
      const body = {
        metadata: { resourceVersion: current.metadata.resourceVersion },
        status: { faults, conditions: next },
      };
      try {
        return (await this.custom.patchNamespacedCustomObjectStatus(
          { ...target, body, fieldManager: FIELD_MANAGER },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        )) as TrainingJob;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (!isConflict(err) || attempt >= MAX_CONFLICT_RETRIES)
          throw new KubeApiError(
            `recording ${records.length} fault(s) in TrainingJob ${namespace}/${name} status`,
            err,
          );
      }
    }
  }
}
