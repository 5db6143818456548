/**
 * Commands to agents, wired for operator.ts: the client pool (every replica, so a new leader can call at once),
 * the certificate manager (leader only: one writer of the Secrets), and a reload loop that hands the pool the
 * current client certificate from its Secret (rotation reaches the channels without a restart).
 */
import type { CoreV1Api, V1Node } from "@kubernetes/client-node";
import { natsServerTlsFiles } from "../../../common/src/nats/authorization.js";
import { AGENT_SERVER_NAME } from "../../../common/src/agents/endpoint.js";
import type { OperatorConfig } from "../config/config.js";
import type { OperatorMetrics } from "../metrics.js";
import type { Clock } from "../runtime/clock.js";
import type { Logger } from "../runtime/logger.js";
import { CertificateManager, readSecret, secretNames, tlsFilesOf } from "./certificates.js";
import { agentEndpointOf } from "./directory.js";
import { NatsAuthorizationPublisher } from "./nats-authorization.js";
import { AgentClientPool } from "./pool.js";

export { AgentClientPool, AgentMethod, AgentUnreachableError } from "./pool.js";

export interface AgentCommands {
  readonly pool: AgentClientPool;
  /** Starts issuing and rotating certificates (on becoming leader). */
  lead(): void;
  /** Stops issuing (on losing leadership). */
  follow(): void;
  /** Re-reads the client certificate Secret now. */
  reloadCredentials(): Promise<boolean>;
  stop(): void;
}

export function startAgentCommands(deps: {
  config: OperatorConfig;
  core: CoreV1Api;
  nodes: {
    get(name: string): V1Node | undefined;
    list(): readonly V1Node[];
    on(handler: (event: "add" | "update" | "delete" | "resync", node: V1Node) => void): void;
  };
  clock: Clock;
  logger: Logger;
  metrics: OperatorMetrics;
}): AgentCommands {
  const { config, core, clock, logger, metrics } = deps;
  const log = logger.child({ component: "agents" });
  const pool = new AgentClientPool({
    lookup: (nodeName) => agentEndpointOf(nodeName, deps.nodes.get(nodeName)),
    serverName: AGENT_SERVER_NAME,
    insecure: config.agentInsecure,
    callTimeoutMs: config.agentCallTimeoutMs,
    maxAttempts: 4,
    backoff: { baseMs: 100, maxMs: 2000 },
    circuit: { failureThreshold: 5, openMs: 10_000 },
    metrics,
    nowMs: () => clock.now(),
  });
  if (config.agentInsecure) {
    log.warn(
      "GPUFLEET_AGENT_INSECURE=true: calling agents in plaintext and issuing no certificates (development only)",
    );
    return { pool, lead: () => {}, follow: () => {}, reloadCredentials: async () => false, stop: () => pool.close() };
  }
  const clientSecret = secretNames(config.certSecretPrefix).operator;
  const natsServerDnsNames = config.natsServerDnsNames === "" ? [] : config.natsServerDnsNames.split(",");
  const reloadCredentials = async (): Promise<boolean> => {
    const tls = tlsFilesOf(await readSecret(core, config.namespace, clientSecret));
    const changed = tls !== undefined && pool.setCredentials(tls);
    if (changed) log.info({ secret: clientSecret }, "agent client certificate loaded; channels rebuilt");
    return changed;
  };
  let reloadTimer: unknown;
  let stopped = false;
  const reloadLoop = (): void => {
    reloadCredentials()
      .catch((err: unknown) => log.warn({ err }, "reading the agent client certificate failed"))
      .finally(() => {
        if (!stopped) reloadTimer = clock.setTimeout(reloadLoop, config.certReloadIntervalMs);
      });
  };
  reloadLoop();
  const certificates = new CertificateManager({
    core,
    clock,
    logger: log,
    metrics,
    settings: {
      namespace: config.namespace,
      secretPrefix: config.certSecretPrefix,
      caLifetimeMs: config.certCaLifetimeMs,
      leafLifetimeMs: config.certLeafLifetimeMs,
      renewAtFraction: 2 / 3,
      agentDnsNames: [AGENT_SERVER_NAME],
      natsServerDnsNames,
      maxCheckIntervalMs: 3600_000,
    },
    onIssued: (role) => {
      if (role === "operator") void reloadCredentials().catch(() => {});
    },
  });
  const natsAuthorization =
    natsServerDnsNames.length > 0
      ? new NatsAuthorizationPublisher({
          core,
          clock,
          logger: log.child({ component: "nats-authorization" }),
          metrics,
          settings: {
            namespace: config.namespace,
            configMapName: `${config.certSecretPrefix}-nats-authorization`,
            tls: natsServerTlsFiles(),
            debounceMs: 2000,
          },
          nodeNames: () => deps.nodes.list().map((n) => n.metadata!.name!),
        })
      : undefined;
  // Only a node's arrival or departure changes the file (a name is all it holds).
  deps.nodes.on((event) => {
    if (event === "add" || event === "delete") natsAuthorization?.nodesChanged();
  });
  return {
    pool,
    lead: () => {
      certificates.start();
      natsAuthorization?.start();
    },
    follow: () => {
      certificates.stop();
      natsAuthorization?.stop();
    },
    reloadCredentials,
    stop: () => {
      stopped = true;
      clock.clearTimeout(reloadTimer);
      certificates.stop();
      natsAuthorization?.stop();
      pool.close();
    },
  };
}
