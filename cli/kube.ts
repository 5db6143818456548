/**
 * The CLI's reads from a live cluster, with @kubernetes/client-node on the current kubeconfig (KUBECONFIG or
 * ~/.kube/config, or --kubeconfig/--context). Reads only: the CLI never writes to the cluster.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type CoreV1Event,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../crds/src/common.js";
import { OwnedLabel } from "../crds/src/reasons.js";
import { ServingDeploymentNames, type ServingDeployment } from "../crds/src/serving-deployment.js";
import { TrainingJobNames, type TrainingJob } from "../crds/src/training-job.js";
import { GpuProfileNames, type GpuProfile } from "../crds/src/gpu-profile.js";
import { CliError, usageError } from "./errors.js";

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
}

const code = (error: unknown): number | undefined => (error as { code?: number }).code;

export class Kube {
  readonly contextName: string;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  readonly server: string;

  constructor(options: KubeOptions = {}) {
    const kc = new KubeConfig();
    try {
      if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
      else kc.loadFromDefault();
    } catch (error) {
      throw usageError(`cannot load kubeconfig ${options.kubeconfig ?? "(default)"}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (options.context) {
      if (!kc.getContextObject(options.context))
        throw usageError(
          `kubeconfig has no context "${options.context}" (has: ${kc
            .getContexts()
            .map((c) => c.name)
            .join(", ")})`,
        );
      kc.setCurrentContext(options.context);
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster)
      throw usageError(
        "the kubeconfig has no current cluster: pass --kubeconfig or --context, or --profile to plan offline",
      );
    this.contextName = kc.getCurrentContext();
    this.server = cluster.server;
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (code(error) === 404) throw usageError(`${what}: not found`, { cause: error });
      throw new CliError(`${what} from ${this.server} failed: ${(error as Error).message}`, 1, { cause: error });
    }
  }

  /** The cluster's GpuProfiles; none where the CRD is not installed (a cluster older than GpuProfiles). */
  async listGpuProfiles(): Promise<GpuProfile[]> {
    try {
      const list = (await this.custom.listClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: GpuProfileNames.plural,
      })) as { items: GpuProfile[] };
      return list.items;
    } catch (error) {
      if (code(error) === 404) return [];
      throw new CliError(`listing GpuProfiles from ${this.server} failed: ${(error as Error).message}`, 1, {
        cause: error,
      });
    }
  }

  async listNodes(): Promise<V1Node[]> {
    return (await this.call("listing nodes", () => this.core.listNode())).items;
  }

  async listPods(namespace?: string, labelSelector?: string): Promise<V1Pod[]> {
    const list = namespace
      ? () => this.core.listNamespacedPod({ namespace, labelSelector })
      : () => this.core.listPodForAllNamespaces({ labelSelector });
    return (await this.call(`listing pods${namespace ? ` in ${namespace}` : ""}`, list)).items;
  }

  async servingDeployment(namespace: string, name: string): Promise<ServingDeployment> {
    return (await this.call(`ServingDeployment ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: ServingDeploymentNames.plural,
        namespace,
        name,
      }),
    )) as ServingDeployment;
  }

  async trainingJob(namespace: string, name: string): Promise<TrainingJob> {
    return (await this.call(`TrainingJob ${namespace}/${name}`, () =>
      this.custom.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: TrainingJobNames.plural,
        namespace,
        name,
      }),
    )) as TrainingJob;
  }

  /** Returns undefined when the deployment does not exist (planning a new one). */
  async servingDeploymentIfAny(namespace: string, name: string): Promise<ServingDeployment | undefined> {
    try {
      return await this.servingDeployment(namespace, name);
    } catch (error) {
      if (error instanceof CliError && error.exitCode === 2) return undefined;
      throw error;
    }
  }

  async list<T>(plural: string): Promise<T[]> {
    const answer = (await this.call(`listing ${plural}`, () =>
      this.custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural }),
    )) as { items: T[] };
    return answer.items;
  }

  /** Events about an object, oldest first. */
  async eventsFor(namespace: string, kind: string, name: string): Promise<CoreV1Event[]> {
    const events = (
      await this.call(`events of ${kind} ${namespace}/${name}`, () =>
        this.core.listNamespacedEvent({
          namespace,
          fieldSelector: `involvedObject.name=${name},involvedObject.kind=${kind}`,
        }),
      )
    ).items;
    return events.sort((a, b) => eventTime(a) - eventTime(b));
  }

  /** Pods a serving deployment or training job owns (by the gpufleet.io label). */
  async ownedPods(namespace: string, kind: "ServingDeployment" | "TrainingJob", name: string): Promise<V1Pod[]> {
    const label = kind === "ServingDeployment" ? OwnedLabel.servingDeployment : OwnedLabel.trainingJob;
    return this.listPods(namespace, `${label}=${name}`);
  }
}

export function eventTime(e: CoreV1Event): number {
  const t = e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp;
  return t ? new Date(t as unknown as string).getTime() : 0;
}
