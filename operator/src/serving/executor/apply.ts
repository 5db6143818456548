/**
 * Apply: carries out a rollout step (pods deleted, pod groups created all or nothing) and keeps the Services in step
 * with the roles served, by server-side apply / delete under the operator's field manager. Every object has the
 * ServingDeployment as controller owner, so deleting it garbage-collects them.
 */
import type { V1Pod, V1Service } from "@kubernetes/client-node";
import type { PlannedGpuProfile } from "../../../../common/src/hardware/planned-profile.js";
import type { ServingDeployment } from "../../../../crds/src/serving-deployment.js";
import type { Applier } from "../../runtime/apply.js";
import type { Logger } from "../../runtime/logger.js";
import { withEngine, type EngineNode } from "../engines/pod.js";
import { podObject, serviceObjects, type Role, type StatusPlan } from "../pools.js";
import type { RolloutStep } from "../rollout.js";
import type { WriteMemory } from "./write-memory.js";

export interface ServingApplierDeps {
  applier: Pick<Applier, "apply" | "delete">;
  pods: { list(): readonly V1Pod[] };
  /** The deployment's Services (by its label). */
  listServices(namespace: string, sdName: string): Promise<V1Service[]>;
  logger?: Pick<Logger, "info">;
  /** Host directory of the agent's worker socket, mounted into serving pods. */
  workerSocketDir?: string;
  /** Image of the load adapter beside vLLM / SGLang engines (engines/pod.ts); the chart's gpufleet image by default. */
  engineAdapterImage?: string;
}

/** Where a node's fabric is unknown (it left the capacity view), the engines' KV transport picks its own devices. */
const UNKNOWN_FABRIC: EngineNode = { nicType: "ethernet", nicCount: 1 };

export class ServingApplier {
  /** The roles whose Services were last reconciled, per deployment uid (stale ones are listed only when it changes). */
  private readonly servedRoles = new Map<string, string>();

  constructor(
    private readonly deps: ServingApplierDeps,
    private readonly memory: WriteMemory,
  ) {}

  /**
   * Deletes, then creates; a group whose creation fails half-way is taken back before the error propagates.
   * `nodes` gives each node's fabric, for a vLLM / SGLang engine's KV transport; `gpuProfile` is the GpuProfile
   * the target plan was made with, rendered into every pod created (pools.ts podObject).
   */
  async applyRollout(
    sd: ServingDeployment,
    step: RolloutStep,
    hash: string,
    target: StatusPlan,
    nowMs: number,
    nodes: ReadonlyMap<string, EngineNode> = new Map(),
    gpuProfile?: PlannedGpuProfile,
  ): Promise<void> {
    const namespace = sd.metadata.namespace!;
    const uid = sd.metadata.uid!;
    if (step.delete.length > 0) {
      const uids = new Map(
        this.deps.pods
          .list()
          .filter((p) => p.metadata?.namespace === namespace)
          .map((p) => [p.metadata?.name ?? "", p.metadata?.uid]),
      );
      for (const name of step.delete) {
        this.memory.markDeleted(name, namespace, uids.get(name), nowMs);
        await this.deps.applier.delete({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace } });
      }
      this.deps.logger?.info({ sd: `${namespace}/${sd.metadata.name}`, pods: step.delete }, "deleted serving pods");
    }
    for (const group of step.create) {
      const created: V1Pod[] = [];
      try {
        for (const placement of group.pods) {
          const reference = podObject(sd, placement, hash, target.gpuModel, this.deps.workerSocketDir, gpuProfile);
          const pod = withEngine(
            reference,
            sd,
            placement,
            target.gpuModel,
            nodes.get(placement.nodeName) ?? UNKNOWN_FABRIC,
            { adapterImage: this.deps.engineAdapterImage },
          );
          created.push(pod);
          await this.deps.applier.apply(pod);
          this.memory.assume(uid, pod, nowMs);
        }
      } catch (error) {
        // A group is all or nothing: take back what was created of it before the reconcile retries.
        for (const pod of created) await this.deps.applier.delete(pod).catch(() => undefined);
        throw error;
      }
    }
    if (step.create.length > 0) {
      this.deps.logger?.info(
        { sd: `${namespace}/${sd.metadata.name}`, groups: step.create.map((g) => g.key), hash },
        "created serving pods",
      );
    }
  }

  /**
   * Applies the Services every reconcile (level-based: one deleted by hand comes back; an unchanged apply is a
   * no-op), and lists and removes those of roles no longer served only when the set of roles changed.
   */
  async syncServices(sd: ServingDeployment, roles: Role[]): Promise<void> {
    const namespace = sd.metadata.namespace!;
    const name = sd.metadata.name!;
    const wanted = serviceObjects(sd, roles.sort());
    for (const service of wanted) await this.deps.applier.apply(service);
    const key = JSON.stringify(roles);
    if (this.servedRoles.get(sd.metadata.uid!) === key) return;
    const names = new Set(wanted.map((s) => s.metadata?.name));
    for (const existing of await this.deps.listServices(namespace, name)) {
      const owned = existing.metadata?.ownerReferences?.some((o) => o.uid === sd.metadata.uid);
      if (owned && !names.has(existing.metadata?.name))
        await this.deps.applier.delete({
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: existing.metadata?.name, namespace },
        });
    }
    this.servedRoles.set(sd.metadata.uid!, key);
  }
}
