/**
 * Writes to the API server the way every gpufleet controller does: server-side apply under one field manager for
 * owned objects (so re-applying an unchanged object is a no-op and fields we stop setting are removed), and
 * server-side apply on the status subresource for status, written only when it differs from what is there.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import {
  CustomObjectsApi,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1OwnerReference,
} from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import { isNotFound, kubeCall } from "./errors.js";

export interface StatusTarget {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespace: string;
  name: string;
}

export class Applier {
  private readonly objects: KubernetesObjectApi;
  private readonly customObjects: CustomObjectsApi;

  constructor(
    kubeConfig: KubeConfig,
    readonly fieldManager: string,
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kubeConfig);
    this.customObjects = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** Server-side apply with force: this controller is the only writer of the fields it sets. */
  async apply<T extends KubernetesObject>(object: T): Promise<T> {
    const what = `apply ${object.kind} ${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
    return kubeCall(what, () =>
      this.objects.patch(object, undefined, undefined, this.fieldManager, true, PatchStrategy.ServerSideApply),
    );
  }

  /**
   * Creates `object` (POST), recording this controller's field manager. For objects written once and never
   * changed in place, such as a gang's pods: an apply costs the API server about 40% more CPU than a create
   * (8.2 vs 5.8 ms a pod, measured on the local cluster), and an object that already exists is a 409 to the
   * caller instead of a patch of something it did not plan.
   */
  async create<T extends KubernetesObject>(object: T): Promise<T> {
    const what = `create ${object.kind} ${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
    return kubeCall(what, () => this.objects.create(object, undefined, undefined, this.fieldManager));
  }

  /** Deletes with background propagation; an already-gone object is success (idempotent). */
  async delete(object: KubernetesObject): Promise<void> {
    const what = `delete ${object.kind} ${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
    try {
      await kubeCall(what, () => this.objects.delete(object, undefined, undefined, 0, undefined, "Background"));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  /**
   * Applies `status` when it differs from `current`; returns whether it wrote. Comparing first keeps idle
   * reconciles from bumping resourceVersion and waking every watcher. Pass the resourceVersion `current` was read
   * at to make the write conditional on it.
   */
  async applyStatus(
    target: StatusTarget,
    current: unknown,
    status: object,
    resourceVersion?: string,
  ): Promise<boolean> {
    if (isDeepStrictEqual(normalize(current), normalize(status))) return false;
    // resourceVersion makes the write conditional on the object we computed from: status also carries fields
    // others write (a worker's lastCheckpointStep), and a forced apply from a stale cache would overwrite them.
    // A stale write gets 409 Conflict, which the runner turns into a quiet requeue on fresher data.
    const metadata = {
      name: target.name,
      namespace: target.namespace,
      ...(resourceVersion ? { resourceVersion } : {}),
    };
    const body = { apiVersion: `${target.group}/${target.version}`, kind: target.kind, metadata, status };
    const request = {
      group: target.group,
      version: target.version,
      plural: target.plural,
      name: target.name,
      body,
      fieldManager: this.fieldManager,
      force: true,
    };
    const ssa = setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply);
    // An empty namespace is a cluster-scoped resource (FabricTopology).
    await kubeCall(`apply status of ${target.kind} ${target.namespace}/${target.name}`, () =>
      target.namespace === ""
        ? this.customObjects.patchClusterCustomObjectStatus(request, ssa)
        : this.customObjects.patchNamespacedCustomObjectStatus({ ...request, namespace: target.namespace }, ssa),
    );
    return true;
  }
}

/** JSON round trip drops undefined fields, so `{a: undefined}` equals `{}` as the API server would store it. */
function normalize(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** Owner reference making `owner` garbage-collect the object it is set on. */
export function controllerOwnerReference(owner: KubernetesObject): V1OwnerReference {
  const { apiVersion, kind, metadata } = owner;
  if (!apiVersion || !kind || !metadata?.name || !metadata.uid)
    throw new Error(`cannot own objects by ${kind}/${metadata?.name}: apiVersion, kind, name and uid are required`);
  return { apiVersion, kind, name: metadata.name, uid: metadata.uid, controller: true, blockOwnerDeletion: true };
}
