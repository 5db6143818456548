/**
 * Advertises the agent's operator-facing endpoint on the nodes it serves (annotation gpufleet.io/agent-endpoint,
 * server-side applied under its own field manager), so the operator finds each node's agent from its node cache.
 * A real agent advertises its pod IP on its node; the simulation agent its own address on every kwok node.
 */
import { PatchStrategy, setHeaderOptions, type CoreV1Api, type V1Node } from "@kubernetes/client-node";
import { AGENT_ENDPOINT_ANNOTATION, AGENT_ENDPOINT_FIELD_MANAGER } from "../../../common/src/agents/endpoint.js";

export function endpointApplyPatch(nodeName: string, endpoint: string): object {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: { name: nodeName, annotations: { [AGENT_ENDPOINT_ANNOTATION]: endpoint } },
  };
}

export class EndpointAdvertiser {
  constructor(
    private readonly core: CoreV1Api,
    readonly endpoint: string,
    private readonly onResult: (nodeName: string, err?: unknown) => void,
  ) {}

  /** Applies the annotation when the node does not carry this endpoint yet (so watch updates cost nothing). */
  async ensure(node: V1Node): Promise<void> {
    const name = node.metadata?.name;
    if (!name || node.metadata?.annotations?.[AGENT_ENDPOINT_ANNOTATION] === this.endpoint) return;
    try {
      await this.core.patchNode(
        {
          name,
          body: endpointApplyPatch(name, this.endpoint),
          fieldManager: AGENT_ENDPOINT_FIELD_MANAGER,
          force: true,
        },
        setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply),
      );
      this.onResult(name);
    } catch (err) {
      this.onResult(name, err);
    }
  }
}
