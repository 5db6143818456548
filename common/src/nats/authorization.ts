/**
 * Who may do what on NATS: the nats-server `tls` + `authorization` configuration for gpufleet's components, as a
 * pure function of the node list (no I/O; the caller writes the file and reloads the server).
 *
 * Identity is the client certificate (nats-server `verify_and_map`): the server requires a certificate signed by
 * the CA in `ca_file` with the clientAuth usage, and takes the user name from it. A certificate without e-mail or
 * DNS subject alternative names maps by its subject DN (RFC 2253, e.g. `CN=gpufleet-agent:node-a,O=gpufleet`),
 * which is what `issueLeaf` (operator/src/agents/pki.ts) writes for an empty `dnsNames`. No password, token or
 * nkey seed exists beside the certificate.
 *
 * Permissions are allow lists, so everything else is refused:
 * - an agent publishes only `gpufleet.v1.*.<its node>` (its own node's subjects) and reads the streams' info
 *   (`awaitStreams`: the operator creates and updates them), and subscribes only to its own inbox prefix, where the
 *   publish acknowledgements arrive. It may not create or update a stream: one compromised node could otherwise
 *   shrink a stream's limits and discard every node's telemetry;
 * - the gateway reads the load stream through an ordered consumer (consumer create/info/delete/next on
 *   GPUFLEET_LOAD) and publishes no telemetry;
 * - the operator administers JetStream (`$JS.API.>`), acknowledges what its durable consumers deliver
 *   (`$JS.ACK.>`), and publishes no telemetry either.
 * Each identity has its own inbox prefix (the client must set `inboxPrefix`, natsClientOptions in connect.ts), so no
 * component can subscribe to another's replies.
 */
import { STREAMS, streamDefinition } from "../telemetry/streams.js";
import { Stream, SUBJECT_PREFIX, subjectToken } from "../telemetry/subjects.js";

/** The organization every gpufleet certificate carries (pki.ts `skeleton`). */
export const ORGANIZATION = "gpufleet";

export const NatsRole = {
  operator: "operator",
  gateway: "gateway",
  /** The agent of one node (the chart's DaemonSet pod). */
  agent: "agent",
  /** The simulation agent: one process serving every kwok node (development and tests only). */
  simulationAgent: "simulation-agent",
} as const;
export type NatsRole = (typeof NatsRole)[keyof typeof NatsRole];

export interface NatsIdentity {
  role: NatsRole;
  /** The node of an agent; undefined for the other roles. */
  node?: string;
  /** The certificate's subject common name. */
  commonName: string;
  /** The nats-server user the certificate maps to (its subject DN). */
  user: string;
  /** Replies (JetStream acknowledgements, API answers) go to `<inboxPrefix>.<id>`; the client must use it. */
  inboxPrefix: string;
}

/** Node names are DNS subdomains (RFC 1123): lower-case alphanumerics, '-' and '.', at most 253 characters. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export class NatsAuthorizationError extends Error {
  override name = "NatsAuthorizationError";
}

function identity(role: NatsRole, commonName: string, inboxPrefix: string, node?: string): NatsIdentity {
  // verify_and_map's DN string: RDNs in reverse order of the certificate's sequence (CN first, then O).
  return { role, commonName, user: `CN=${commonName},O=${ORGANIZATION}`, inboxPrefix, ...(node ? { node } : {}) };
}

export function natsIdentity(role: Exclude<NatsRole, "agent">): NatsIdentity;
export function natsIdentity(role: "agent", node: string): NatsIdentity;
export function natsIdentity(role: NatsRole, node?: string): NatsIdentity {
  switch (role) {
    case NatsRole.operator:
      return identity(role, "gpufleet-operator", "_INBOX.operator");
    case NatsRole.gateway:
      return identity(role, "gpufleet-gateway", "_INBOX.gateway");
    case NatsRole.simulationAgent:
      return identity(role, "gpufleet-simulation-agent", "_INBOX.simulation-agent");
    case NatsRole.agent: {
      if (node === undefined || !NODE_NAME.test(node) || node.length > 253)
        throw new NatsAuthorizationError(
          `an agent's NATS identity needs a node name (a DNS subdomain), got ${JSON.stringify(node)}`,
        );
      // subjectToken only maps '.', which a node name may contain, to '_', which it may not: tokens stay distinct.
      return identity(role, `gpufleet-agent:${node}`, `_INBOX.agent.${subjectToken(node)}`, node);
    }
  }
}

export interface NatsPermissions {
  publish: string[];
  subscribe: string[];
}

/** The JetStream API subjects `ensureStreams` uses for these streams ($JS.API.INFO is the manager's check). */
function streamSetup(names: readonly string[]): string[] {
  return [
    "$JS.API.INFO",
    ...names.flatMap((n) => [`$JS.API.STREAM.INFO.${n}`, `$JS.API.STREAM.CREATE.${n}`, `$JS.API.STREAM.UPDATE.${n}`]),
  ];
}

/** The JetStream API subjects `awaitStreams` uses: the manager's check and each stream's info, nothing that writes. */
function streamCheck(names: readonly string[]): string[] {
  return ["$JS.API.INFO", ...names.map((n) => `$JS.API.STREAM.INFO.${n}`)];
}

const ALL_STREAM_NAMES = STREAMS.map((s) => s.name);
const TELEMETRY_STREAMS = Object.values(Stream);

export function natsPermissions(who: NatsIdentity): NatsPermissions {
  const inbox = `${who.inboxPrefix}.>`;
  switch (who.role) {
    case NatsRole.agent:
      return {
        publish: [
          // Every stream's subject of this node, in one pattern: the node is the last token, so `*` (one token)
          // cannot reach another node's subject, and one pattern instead of five keeps the file small.
          `${SUBJECT_PREFIX}.*.${subjectToken(who.node!)}`,
          ...streamCheck(ALL_STREAM_NAMES),
        ],
        subscribe: [inbox],
      };
    case NatsRole.simulationAgent:
      return {
        publish: [...TELEMETRY_STREAMS.map((s) => `${SUBJECT_PREFIX}.${s}.*`), ...streamSetup(ALL_STREAM_NAMES)],
        subscribe: [inbox],
      };
    case NatsRole.gateway: {
      const load = streamDefinition(Stream.load).name;
      return {
        publish: [
          ...streamSetup([load]),
          // nats.js names the ordered consumer in the subject (CREATE.<stream>.<name>.<filter>) or not (older form).
          `$JS.API.CONSUMER.CREATE.${load}`,
          `$JS.API.CONSUMER.CREATE.${load}.>`,
          `$JS.API.CONSUMER.INFO.${load}.*`,
          `$JS.API.CONSUMER.DELETE.${load}.*`,
          `$JS.API.CONSUMER.MSG.NEXT.${load}.*`,
        ],
        subscribe: [inbox],
      };
    }
    case NatsRole.operator:
      return { publish: ["$JS.API.>", "$JS.ACK.>"], subscribe: [inbox] };
  }
}

export interface NatsAuthorizationInput {
  /** Nodes whose agents may connect, each with permissions for its own subjects only. */
  nodes: readonly string[];
  /** Also admit the simulation agent (all nodes' subjects); never in a real cluster. */
  simulationAgent?: boolean;
}

export interface NatsUser {
  user: string;
  permissions: NatsPermissions;
}

/** Every user the server admits: operator, gateway, one agent per node (sorted, so the output is stable). */
export function natsUsers(input: NatsAuthorizationInput): NatsUser[] {
  const seen = new Set<string>();
  for (const node of input.nodes) {
    if (seen.has(node)) throw new NatsAuthorizationError(`node ${JSON.stringify(node)} is listed twice`);
    seen.add(node);
  }
  const identities = [
    natsIdentity(NatsRole.operator),
    natsIdentity(NatsRole.gateway),
    ...(input.simulationAgent ? [natsIdentity(NatsRole.simulationAgent)] : []),
    ...[...input.nodes].sort().map((n) => natsIdentity(NatsRole.agent, n)),
  ];
  return identities.map((i) => ({ user: i.user, permissions: natsPermissions(i) }));
}

/** Where the chart mounts the nats-server's Secret (<prefix>-nats-tls): its certificate, key and the CA. */
export const NATS_SERVER_TLS_DIR = "/etc/nats-tls";

export interface NatsServerTlsFiles {
  certFile: string;
  keyFile: string;
  /** The CA that signs client certificates (the operator's CA). */
  caFile: string;
}

/** The files of a kubernetes.io/tls Secret with ca.crt (what the operator writes) mounted at `dir`. */
export function natsServerTlsFiles(dir: string = NATS_SERVER_TLS_DIR): NatsServerTlsFiles {
  return { certFile: `${dir}/tls.crt`, keyFile: `${dir}/tls.key`, caFile: `${dir}/ca.crt` };
}

/** JSON strings are valid quoted nats-server config strings; a quoted `$JS...` is not a variable reference. */
const q = (s: string): string => JSON.stringify(s);
const list = (items: readonly string[]): string => `[${items.map(q).join(", ")}]`;

/** A ConfigMap's data may hold at most 1 MiB (the API server refuses more). */
export const NATS_AUTHORIZATION_MAX_BYTES = 1024 * 1024;

/**
 * The nats-server config fragment (include it from the main config, or append it): TLS with mapping, and users,
 * one line each, because the text must fit a ConfigMap (NATS_AUTHORIZATION_MAX_BYTES) for every node of a large
 * cluster: about 500 bytes per node (with 34-character node names), so some 2,000 nodes.
 */
export function renderNatsAuthorization(input: NatsAuthorizationInput, tls: NatsServerTlsFiles): string {
  const users = natsUsers(input).map(
    (u) =>
      `    {user: ${q(u.user)}, permissions: {publish: {allow: ${list(u.permissions.publish)}}, ` +
      `subscribe: {allow: ${list(u.permissions.subscribe)}}}}`,
  );
  return [
    "# Rendered by gpufleet (common/src/nats/authorization.ts); do not edit by hand.",
    "tls {",
    `  cert_file: ${q(tls.certFile)}`,
    `  key_file: ${q(tls.keyFile)}`,
    `  ca_file: ${q(tls.caFile)}`,
    "  verify_and_map: true",
    "}",
    "authorization {",
    "  users: [",
    users.join("\n"),
    "  ]",
    "}",
    "",
  ].join("\n");
}
