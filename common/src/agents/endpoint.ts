/**
 * How the operator finds a node's agent: the agent writes its operator-facing gRPC endpoint ("host:port") into an
 * annotation on every node it serves; the operator reads it from its node informer. One source for the key and
 * the format, shared by both sides.
 */
export const AGENT_ENDPOINT_ANNOTATION = "gpufleet.io/agent-endpoint";

/**
 * The field manager of that annotation. Not the agent's label manager (gpufleet-agent): a server-side apply owns
 * exactly the fields of its last apply, so applying the annotation alone under that manager would drop the
 * topology labels it applied before.
 */
export const AGENT_ENDPOINT_FIELD_MANAGER = "gpufleet-agent-endpoint";

/** Server name every agent certificate carries (the operator checks it instead of the dialled pod IP). */
export const AGENT_SERVER_NAME = "gpufleet-agent";

export class EndpointError extends Error {
  override name = "EndpointError";
}

/** Parses "host:port" (IPv6 hosts in brackets); throws EndpointError with the value on anything else. */
export function parseAgentEndpoint(value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port < 1 || port > 65535) throw new EndpointError(`agent endpoint "${value}" is not host:port`);
  return { host: match[1]!, port };
}
