/**
 * Writes a worker's checkpoint report into its TrainingJob's status: status.lastCheckpointStep = max(current,
 * step), a JSON merge patch on /status that carries the resourceVersion it was computed from (a concurrent writer
 * makes it 409, and we re-read and try again). The consumer acknowledges the message only after this resolved, so
 * a failed write is redelivered; a report whose pod or job is gone is moot and acknowledged. Idempotent: a
 * redelivered report finds the step already written and writes nothing.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Pod,
} from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { OwnedLabel } from "../../../crds/src/reasons.js";
import { TrainingJobNames, type TrainingJob } from "../../../crds/src/training-job.js";
import type { CheckpointEvent } from "../../../common/src/telemetry/subjects.js";
import { isConflict, isNotFound, KubeApiError } from "../runtime/errors.js";

export const CheckpointWrite = { written: "written", unchanged: "unchanged", moot: "moot" } as const;
export type CheckpointWrite = (typeof CheckpointWrite)[keyof typeof CheckpointWrite];

export interface CheckpointOutcome {
  result: CheckpointWrite;
  /** `namespace/name` of the TrainingJob, when the pod belongs to one. */
  job: string | undefined;
  /** lastCheckpointStep in status after the call. */
  step: number | undefined;
}

export interface CheckpointWriterDeps {
  kubeConfig: KubeConfig;
  /** The operator's pod cache; an API read is the fallback for a pod the cache has not seen yet. */
  cachedPod: (namespace: string, name: string) => V1Pod | undefined;
  onConflict?: () => void;
  maxConflictRetries?: number;
}

const FIELD_MANAGER = "gpufleet-operator-telemetry";

export class CheckpointWriter {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly maxConflictRetries: number;

  constructor(private readonly deps: CheckpointWriterDeps) {
    this.core = deps.kubeConfig.makeApiClient(CoreV1Api);
    this.custom = deps.kubeConfig.makeApiClient(CustomObjectsApi);
    this.maxConflictRetries = deps.maxConflictRetries ?? 10;
  }

  async write(event: CheckpointEvent): Promise<CheckpointOutcome> {
    const pod =
      this.deps.cachedPod(event.podNamespace, event.podName) ?? (await this.readPod(event.podNamespace, event.podName));
    const jobName = pod?.metadata?.labels?.[OwnedLabel.trainingJob];
    if (!jobName) return { result: CheckpointWrite.moot, job: undefined, step: undefined };
    const job = `${event.podNamespace}/${jobName}`;
    for (let attempt = 0; ; attempt++) {
      const current = await this.readJob(event.podNamespace, jobName);
      if (!current) return { result: CheckpointWrite.moot, job, step: undefined };
      const have = current.status?.lastCheckpointStep;
      if (have !== undefined && have >= event.step) return { result: CheckpointWrite.unchanged, job, step: have };
      try {
        await this.custom.patchNamespacedCustomObjectStatus(
          {
            group: API_GROUP,
            version: API_VERSION,
            plural: TrainingJobNames.plural,
            namespace: event.podNamespace,
            name: jobName,
            fieldManager: FIELD_MANAGER,
            body: {
              metadata: { resourceVersion: current.metadata.resourceVersion },
              status: { lastCheckpointStep: event.step },
            },
          },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        return { result: CheckpointWrite.written, job, step: event.step };
      } catch (err) {
        if (isNotFound(err)) return { result: CheckpointWrite.moot, job, step: undefined };
        if (!isConflict(err) || attempt >= this.maxConflictRetries)
          throw new KubeApiError(`writing lastCheckpointStep ${event.step} to TrainingJob ${job}`, err);
        this.deps.onConflict?.();
      }
    }
  }

  private async readPod(namespace: string, name: string): Promise<V1Pod | undefined> {
    try {
      return await this.core.readNamespacedPod({ namespace, name });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new KubeApiError(`reading pod ${namespace}/${name} of a checkpoint report`, err);
    }
  }

  private async readJob(namespace: string, name: string): Promise<TrainingJob | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: TrainingJobNames.plural,
        namespace,
        name,
      })) as TrainingJob;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new KubeApiError(`reading TrainingJob ${namespace}/${name}`, err);
    }
  }
}
