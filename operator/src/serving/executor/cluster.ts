/**
 * The serving executor wired to a cluster: ConfigMaps and Services read with the core API, the planner on a worker
 * thread.
 */
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { OwnedLabel } from "../../../../crds/src/reasons.js";
import { isNotFound, kubeCall } from "../../runtime/errors.js";
import type { ServingExecutor } from "../controller.js";
import { PlannerThread } from "../planner-thread.js";
import { createServingExecutor, type ServingExecutorDeps } from "./executor.js";

export function createClusterServingExecutor(
  opts: Omit<ServingExecutorDeps, "readConfigMap" | "listServices"> & { kubeConfig: KubeConfig },
): ServingExecutor {
  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const planner = new PlannerThread();
  return createServingExecutor({
    plan: (input) => planner.plan(input),
    ...opts,
    async readConfigMap(namespace, name) {
      try {
        return await kubeCall(`read ConfigMap ${namespace}/${name}`, () =>
          core.readNamespacedConfigMap({ name, namespace }),
        );
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
      }
    },
    async listServices(namespace, sdName) {
      const list = await kubeCall(`list Services of ${namespace}/${sdName}`, () =>
        core.listNamespacedService({ namespace, labelSelector: `${OwnedLabel.servingDeployment}=${sdName}` }),
      );
      return list.items;
    },
  });
}
