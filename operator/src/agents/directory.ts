/**
 * Which agent serves a node: pure over the node informer's objects. The agent advertises its endpoint in the
 * annotation gpufleet.io/agent-endpoint (see common/src/agents/endpoint.ts and docs/security.md).
 */
import type { V1Node } from "@kubernetes/client-node";
import { AGENT_ENDPOINT_ANNOTATION, parseAgentEndpoint } from "../../../common/src/agents/endpoint.js";

export type AgentLookup =
  { found: true; nodeName: string; endpoint: string } | { found: false; nodeName: string; reason: string };

export function agentEndpointOf(nodeName: string, node: V1Node | undefined): AgentLookup {
  if (!node) return { found: false, nodeName, reason: `node ${nodeName} is not in the cache` };
  const value = node.metadata?.annotations?.[AGENT_ENDPOINT_ANNOTATION];
  if (!value)
    return {
      found: false,
      nodeName,
      reason: `node ${nodeName} has no ${AGENT_ENDPOINT_ANNOTATION} annotation: no agent has advertised itself there`,
    };
  try {
    parseAgentEndpoint(value);
  } catch (err) {
    return { found: false, nodeName, reason: `node ${nodeName}: ${(err as Error).message}` };
  }
  return { found: true, nodeName, endpoint: value };
}
