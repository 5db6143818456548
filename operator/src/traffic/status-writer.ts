/**
 * Writes a TrainingJob's status.traffic and TrafficPlanned condition: one JSON merge patch of the status
 * subresource guarded by resourceVersion (conditions are a list: the patch replaces it, so it is computed from the
 * version it replaces), retried on conflict.
 */
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { setCondition, type ConditionUpdate } from "../../../crds/src/conditions.js";
import { TrainingJobNames, type TrafficStatus, type TrainingJob } from "../../../crds/src/training-job.js";
import { isConflict, isNotFound, KubeApiError } from "../runtime/errors.js";

const FIELD_MANAGER = "gpufleet-operator-traffic";
const MAX_CONFLICT_RETRIES = 3;

export interface TrafficStatusWriter {
  /** Returns the written job, or undefined when it is gone. */
  write(
    namespace: string,
    name: string,
    traffic: TrafficStatus | null,
    condition: ConditionUpdate,
    nowMs: number,
  ): Promise<TrainingJob | undefined>;
}

export class KubeTrafficStatusWriter implements TrafficStatusWriter {
  private readonly custom: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async write(
    namespace: string,
    name: string,
    traffic: TrafficStatus | null,
    condition: ConditionUpdate,
    nowMs: number,
  ): Promise<TrainingJob | undefined> {
    const target = { group: API_GROUP, version: API_VERSION, plural: TrainingJobNames.plural, namespace, name };
    for (let attempt = 0; ; attempt++) {
      let current: TrainingJob;
      try {
        current = (await this.custom.getNamespacedCustomObject(target)) as TrainingJob;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw new KubeApiError(`reading TrainingJob ${namespace}/${name} to write its traffic plan`, err);
      }
      const conditions = setCondition(
        current.status?.conditions,
        condition,
        current.metadata.generation ?? 0,
        new Date(nowMs),
      );
      const body = { metadata: { resourceVersion: current.metadata.resourceVersion }, status: { traffic, conditions } };
      try {
        return (await this.custom.patchNamespacedCustomObjectStatus(
          { ...target, body, fieldManager: FIELD_MANAGER },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        )) as TrainingJob;
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (!isConflict(err) || attempt >= MAX_CONFLICT_RETRIES)
          throw new KubeApiError(`writing TrainingJob ${namespace}/${name} status.traffic`, err);
      }
    }
  }
}
