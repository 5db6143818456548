/**
 * The operator's configuration: one typed object, read from the environment once at start-up and validated, so a
 * bad value fails at boot with the variable's name instead of at the first reconcile.
 */
import { Type, type Static } from "@sinclair/typebox";
import { configFromEnv } from "../../../common/src/config/env.js";
import { hostname } from "node:os";

export const OperatorConfigSchema = Type.Object({
  /** Namespace holding the leader Lease (the operator's own namespace). */
  namespace: Type.String({ minLength: 1, default: "gpufleet-system" }),
  leaseName: Type.String({ minLength: 1, default: "gpufleet-operator" }),
  identity: Type.String({ minLength: 1 }),
  leaderElection: Type.Boolean({ default: true }),
  leaseDurationMs: Type.Integer({ minimum: 1000, default: 10_000 }),
  renewDeadlineMs: Type.Integer({ minimum: 500, default: 7_000 }),
  retryPeriodMs: Type.Integer({ minimum: 100, default: 2_000 }),
  httpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  logLevel: Type.Union(
    [Type.Literal("trace"), Type.Literal("debug"), Type.Literal("info"), Type.Literal("warn"), Type.Literal("error")],
    { default: "info" },
  ),
  natsUrl: Type.Optional(Type.String()),
  /**
   * Folder with ca.crt, tls.crt, tls.key: the operator's NATS client certificate (docs/security.md, "NATS"). "": none
   * (a server without auth).
   */
  natsTlsDir: Type.String({ default: "" }),
  /** Durable JetStream consumers are `<prefix>-<stream>`; all replicas of one operator share them. */
  telemetryDurablePrefix: Type.String({ pattern: "^[A-Za-z0-9_-]+$", default: "gpufleet-operator" }),
  /** Re-check every resource this often even without events (level-based safety net). */
  resyncMs: Type.Integer({ minimum: 1000, default: 300_000 }),
  /** Host directory with the agent's worker socket (chart: agent.workerSocketDir), mounted into worker pods. */
  workerSocketDir: Type.String({ pattern: "^/", default: "/var/run/gpufleet" }),
  /** Development only: call agents in plaintext and issue no certificates. */
  agentInsecure: Type.Boolean({ default: false }),
  /**
   * The agent DaemonSet's ServiceAccount (in `namespace`): its CertificateSigningRequests for
   * gpufleet.io/agent-nats-client are signed for the node their token is bound to (docs/security.md, "NATS"). "":
   * the signer is off.
   */
  agentServiceAccount: Type.String({ default: "" }),
  /**
   * NATS authorization (docs/security.md, "NATS"): the in-chart nats-server's DNS names, comma-separated. When set,
   * the leader also issues <prefix>-nats-tls (the server's certificate) and <prefix>-gateway-tls (the gateway's
   * client certificate) and keeps <prefix>-nats-authorization (a ConfigMap: one user per node) in step with the
   * nodes. "": off.
   */
  natsServerDnsNames: Type.String({ pattern: "^([a-z0-9.-]+(,[a-z0-9.-]+)*)?$", default: "" }),
  /** mTLS Secrets in `namespace`: <prefix>-ca, <prefix>-agent-tls, <prefix>-operator-tls. */
  certSecretPrefix: Type.String({ minLength: 1, default: "gpufleet" }),
  /** Lifetime of the agent and operator leaf certificates; they are rotated at 2/3 of it. */
  certLeafLifetimeMs: Type.Integer({ minimum: 60_000, default: 30 * 24 * 3600_000 }),
  certCaLifetimeMs: Type.Integer({ minimum: 3600_000, default: 5 * 365 * 24 * 3600_000 }),
  /** How often a standby or leader re-reads its client certificate Secret (rotation reaches channels within this). */
  certReloadIntervalMs: Type.Integer({ minimum: 100, default: 30_000 }),
  /** Default deadline of one operator → agent call, retries included. */
  agentCallTimeoutMs: Type.Integer({ minimum: 100, default: 5_000 }),
  /**
   * TrainingJob reconciles in flight at once (different jobs): a job's reconcile mostly waits on its pods' API calls,
   * so 100 jobs applied at once are placed this many at a time instead of one by one.
   */
  trainingWorkers: Type.Integer({ minimum: 1, maximum: 64, default: 4 }),
  /** How often the serving scheduler (migration, autoscaling) runs on the leader. */
  schedulerPeriodMs: Type.Integer({ minimum: 100, default: 1_000 }),
  /**
   * A scale-in's draining instance is deleted with requests still on it only after this long (an Event counts them).
   */
  drainDeadlineMs: Type.Integer({ minimum: 1_000, default: 600_000 }),
  /** Deadline of one MigrateOut command (the worker answers when the migration committed or aborted). */
  migrationTimeoutMs: Type.Integer({ minimum: 100, default: 30_000 }),
  /**
   * Image of the load-report adapter sidecar in vLLM/SGLang pods (the chart passes the operator's own image, which
   * contains the adapter); unset: DEFAULT_ENGINE_ADAPTER_IMAGE.
   */
  engineAdapterImage: Type.Optional(Type.String({ minLength: 1 })),
});
export type OperatorConfig = Static<typeof OperatorConfigSchema>;

const ENV: Record<keyof OperatorConfig, string> = {
  namespace: "GPUFLEET_NAMESPACE",
  leaseName: "GPUFLEET_LEASE_NAME",
  identity: "GPUFLEET_IDENTITY",
  leaderElection: "GPUFLEET_LEADER_ELECTION",
  leaseDurationMs: "GPUFLEET_LEASE_DURATION_MS",
  renewDeadlineMs: "GPUFLEET_RENEW_DEADLINE_MS",
  retryPeriodMs: "GPUFLEET_RETRY_PERIOD_MS",
  httpPort: "GPUFLEET_HTTP_PORT",
  logLevel: "GPUFLEET_LOG_LEVEL",
  natsUrl: "GPUFLEET_NATS_URL",
  natsTlsDir: "GPUFLEET_NATS_TLS_DIR",
  telemetryDurablePrefix: "GPUFLEET_TELEMETRY_DURABLE_PREFIX",
  resyncMs: "GPUFLEET_RESYNC_MS",
  workerSocketDir: "GPUFLEET_WORKER_SOCKET_DIR",
  agentInsecure: "GPUFLEET_AGENT_INSECURE",
  agentServiceAccount: "GPUFLEET_AGENT_SERVICE_ACCOUNT",
  certSecretPrefix: "GPUFLEET_CERT_SECRET_PREFIX",
  natsServerDnsNames: "GPUFLEET_NATS_SERVER_DNS_NAMES",
  certLeafLifetimeMs: "GPUFLEET_CERT_LEAF_LIFETIME_MS",
  certCaLifetimeMs: "GPUFLEET_CERT_CA_LIFETIME_MS",
  certReloadIntervalMs: "GPUFLEET_CERT_RELOAD_INTERVAL_MS",
  agentCallTimeoutMs: "GPUFLEET_AGENT_CALL_TIMEOUT_MS",
  trainingWorkers: "GPUFLEET_TRAINING_WORKERS",
  schedulerPeriodMs: "GPUFLEET_SCHEDULER_PERIOD_MS",
  drainDeadlineMs: "GPUFLEET_DRAIN_DEADLINE_MS",
  migrationTimeoutMs: "GPUFLEET_MIGRATION_TIMEOUT_MS",
  engineAdapterImage: "GPUFLEET_ENGINE_ADAPTER_IMAGE",
};

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Builds the config from environment variables (POD_NAMESPACE/POD_NAME from the downward API as fallbacks). */
export function loadOperatorConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const config = configFromEnv(OperatorConfigSchema, ENV, env, {
    fallbacks: { namespace: env.POD_NAMESPACE, identity: env.POD_NAME ?? `${hostname()}-${process.pid}` },
    what: "operator",
    makeError: (message) => new ConfigError(message),
  });
  if (config.renewDeadlineMs >= config.leaseDurationMs)
    throw new ConfigError(`${ENV.renewDeadlineMs} must be shorter than ${ENV.leaseDurationMs}`);
  return config;
}
