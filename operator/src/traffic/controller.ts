/**
 * FabricTopology reconciler: keeps each fabric's status in step with the nodes (thin: the verdict is
 * fabricTopologyStatus, pure). Runs on every change of the fabric and of any node, so a relabelled or new node,
 * or a cable marked down in failedPorts, shows in status at once.
 */
import type { V1Node } from "@kubernetes/client-node";
import { API_GROUP, API_VERSION } from "../../../crds/src/common.js";
import { wouldChange } from "../../../crds/src/conditions.js";
import {
  FabricTopologyNames,
  type FabricTopology,
  type FabricTopologyStatus,
} from "../../../crds/src/fabric-topology.js";
import type { ReconcileResult, Reconciler } from "../runtime/controller.js";
import type { ResilientInformer } from "../runtime/informer.js";
import { reconcileResource, type LifecycleDeps, type StepOutcome } from "../runtime/lifecycle.js";
import { fabricTopologyStatus } from "./topology-status.js";

export interface FabricTopologyReconcilerDeps extends LifecycleDeps {
  fabricTopologies: Pick<ResilientInformer<FabricTopology>, "get">;
  nodes: Pick<ResilientInformer<V1Node>, "list">;
}

const TARGET = {
  group: API_GROUP,
  version: API_VERSION,
  plural: FabricTopologyNames.plural,
  kind: FabricTopologyNames.kind,
};

export class FabricTopologyReconciler implements Reconciler {
  readonly name = "fabrictopology";

  constructor(private readonly deps: FabricTopologyReconcilerDeps) {}

  reconcile(key: string): Promise<ReconcileResult> {
    return reconcileResource({
      key,
      informer: this.deps.fabricTopologies,
      target: TARGET,
      deps: this.deps,
      decide: (fabric) => Promise.resolve(this.decide(fabric)),
    });
  }

  private decide(fabric: FabricTopology): StepOutcome<FabricTopologyStatus> {
    const nodes = this.deps.nodes
      .list()
      .map((n) => ({ name: n.metadata?.name ?? "", labels: n.metadata?.labels ?? {} }));
    const { status, condition } = fabricTopologyStatus(fabric.spec, nodes);
    const changed = wouldChange(fabric.status?.conditions, condition);
    return {
      status,
      conditions: [condition],
      events: changed
        ? [
            {
              type: condition.status === "True" ? "Normal" : "Warning",
              reason: condition.reason,
              message: condition.message,
            },
          ]
        : [],
    };
  }
}
