/**
 * Publishes a node's topology labels with server-side apply under the agent's field manager, so the agent owns
 * exactly the labels it sets (an admin's `kubectl label` of leaf/island stays the admin's) and re-applying the same
 * facts is a no-op.
 */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { CoreV1Api } from "@kubernetes/client-node";

export const AGENT_FIELD_MANAGER = "gpufleet-agent";

/** The apply configuration: only the fields the agent manages. */
export function nodeLabelsApplyPatch(nodeName: string, labels: Readonly<Record<string, string>>): object {
  return { apiVersion: "v1", kind: "Node", metadata: { name: nodeName, labels: { ...labels } } };
}

export class LabelPublishError extends Error {
  override name = "LabelPublishError";
  constructor(
    readonly nodeName: string,
    options?: ErrorOptions,
  ) {
    super(`applying topology labels to node ${nodeName} failed`, options);
  }
}

export class NodeLabelPublisher {
  constructor(
    private readonly core: CoreV1Api,
    private readonly fieldManager: string = AGENT_FIELD_MANAGER,
  ) {}

  async apply(nodeName: string, labels: Readonly<Record<string, string>>): Promise<void> {
    try {
      await this.core.patchNode(
        { name: nodeName, body: nodeLabelsApplyPatch(nodeName, labels), fieldManager: this.fieldManager, force: true },
        setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
      );
    } catch (err) {
      throw new LabelPublishError(nodeName, { cause: err });
    }
  }
}
