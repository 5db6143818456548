/**
 * Keeps the simulated fabric's cables in step with the cluster's FabricTopology objects (simulation mode only):
 * the fabric is the "physical" network of the kwok nodes, so a cable marked down in spec.failedPorts goes down
 * here too, whether or not any plan was re-sent.
 */
import { CustomObjectsApi, makeInformer, type KubeConfig, type ListPromise } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { FabricTopologyNames, type FabricTopology } from "../../../crds/src/fabric-topology.js";
import type { SimLog } from "./runtime.js";
import type { SimulatedFabric } from "./fabric.js";

/**
 * Never rejects: without the FabricTopology CRD or the RBAC to list it (the chart's agent role grants nodes and
 * pods only), the simulated fabric stays empty (inter-node links run at NIC speed, plans are refused with
 * FAILED_PRECONDITION) and the watch is retried every 10 s.
 */
export async function watchFabricTopologies(
  kc: KubeConfig,
  fabric: SimulatedFabric,
  log: SimLog & { error(obj: object, msg: string): void },
): Promise<void> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const list = (() =>
    api.listClusterCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      plural: FabricTopologyNames.plural,
    })) as unknown as ListPromise<FabricTopology>;
  const informer = makeInformer<FabricTopology>(
    kc,
    `/apis/${API_GROUP}/${API_VERSION}/${FabricTopologyNames.plural}`,
    list,
  );
  const set = (f: FabricTopology): void => {
    const name = f.metadata?.name ?? "";
    fabric.setTopology(name, f.spec);
    log.info(
      {
        fabric: name,
        island: f.spec.island,
        failedPorts: f.spec.leaves.flatMap((l) =>
          l.uplinks.flatMap((u) => (u.failedPorts ?? []).map((p) => `${l.name}>${u.spine}#${p}`)),
        ),
      },
      "simulated fabric cables updated",
    );
  };
  informer.on("add", set);
  informer.on("update", set);
  informer.on("delete", (f) => fabric.deleteTopology(f.metadata?.name ?? ""));
  const start = async (): Promise<void> => {
    try {
      await informer.start();
    } catch (err) {
      log.error(
        { err },
        "FabricTopology watch could not start; the simulated fabric has no cables until it does (retrying in 10 s)",
      );
      setTimeout(() => void start(), 10_000).unref();
    }
  };
  informer.on("error", (err: unknown) => {
    log.error({ err }, "FabricTopology watch failed; restarting");
    setTimeout(() => void start(), 2000).unref();
  });
  await start();
}
