/** Agent configuration: one validated object, from the environment, with tested defaults. */
import type { ConnectionOptions } from "nats";
import { natsIdentity, NatsRole, type NatsIdentity } from "../../common/src/nats/authorization.js";

export interface AgentConfig {
  /** Node this agent runs on (downward API spec.nodeName); unused in simulation. */
  nodeName: string;
  simulate: boolean;
  /** nats:// or tls:// URL of the NATS server; "" (or unset, as the chart leaves it by default): telemetry off. */
  natsUrl: string;
  /**
   * Folder with ca.crt, tls.crt, tls.key: this agent's NATS client certificate (docs/security.md, "NATS"), whose
   * subject names its node. "" (default): connect without a certificate, as against a server without auth.
   */
  natsTlsDir: string;
  /**
   * Ask the operator for the NATS client certificate (a CertificateSigningRequest made with the pod's token) and
   * write it into natsTlsDir, with tlsDir's ca.crt as the CA; renewed at 2/3 of its lifetime. Needs both folders.
   */
  natsCsr: boolean;
  /** The lifetime the request asks for (the operator may sign a shorter one); at least 600 s. */
  natsCsrExpirationSeconds: number;
  workerSocketPath: string;
  operatorAddress: string;
  httpPort: number;
  /** Folder with ca.crt, tls.crt, tls.key for operator-facing mTLS (the operator-issued Secret, mounted). */
  tlsDir: string;
  /** Development only: serve the operator port in plaintext when tlsDir is empty (see requireOperatorTls). */
  insecure: boolean;
  /** How often the certificate folder is re-read, so a rotated Secret is used without a restart. */
  tlsRefreshIntervalMs: number;
  /** Host (pod IP) the operator dials; advertised with the bound port on every served node. Empty: not advertised. */
  advertiseHost: string;
  nvidiaSmiPath: string;
  sysfsRoot: string;
  leaf: string | undefined;
  island: string | undefined;
  heartbeatIntervalMs: number;
  missedHeartbeatsLimit: number;
  rdmaSampleIntervalMs: number;
  simReportIntervalMs: number;
  /** Simulation: synthetic Poisson requests/s of serving pods without the sim-request-rate annotation (0: none). */
  simRequestRatePerSec: number;
  /**
   * Simulation: only kwok nodes whose name starts with this (empty: all). Lets several agent processes share one
   * cluster, each the agent of its own nodes, as real nodes each have their own (chaos tests kill one of them).
   */
  simNodePrefix: string;
  /** Simulation: the one port of the simulated instances' engine API (0: any free port). */
  enginePort: number;
  /** Simulation: interface the engine API listens on. */
  engineBindHost: string;
  /** Simulation: host in the instances' engineUrls, i.e. how the gateway reaches this agent. */
  engineAdvertisedHost: string;
  /** Python that runs the worker's GPU diagnostics CLI (torch on a GPU node). */
  workerPython: string;
  /** Folder holding the gpufleet_worker package (agent/worker/ of the repository or image). */
  workerDir: string;
  logLevel: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export const ENV = {
  nodeName: "NODE_NAME",
  simulate: "GPUFLEET_AGENT_SIMULATE",
  natsUrl: "GPUFLEET_NATS_URL",
  natsTlsDir: "GPUFLEET_AGENT_NATS_TLS_DIR",
  natsCsr: "GPUFLEET_AGENT_NATS_CSR",
  natsCsrExpirationSeconds: "GPUFLEET_AGENT_NATS_CSR_EXPIRATION_SECONDS",
  workerSocketPath: "GPUFLEET_AGENT_SOCKET",
  operatorAddress: "GPUFLEET_AGENT_GRPC_ADDRESS",
  httpPort: "GPUFLEET_AGENT_HTTP_PORT",
  tlsDir: "GPUFLEET_AGENT_TLS_DIR",
  insecure: "GPUFLEET_AGENT_INSECURE",
  tlsRefreshIntervalMs: "GPUFLEET_AGENT_TLS_REFRESH_MS",
  advertiseHost: "GPUFLEET_AGENT_ADVERTISE_HOST",
  nvidiaSmiPath: "GPUFLEET_AGENT_NVIDIA_SMI",
  sysfsRoot: "GPUFLEET_AGENT_SYSFS_ROOT",
  leaf: "GPUFLEET_AGENT_LEAF",
  island: "GPUFLEET_AGENT_ISLAND",
  heartbeatIntervalMs: "GPUFLEET_AGENT_HEARTBEAT_INTERVAL_MS",
  missedHeartbeatsLimit: "GPUFLEET_AGENT_MISSED_HEARTBEATS",
  rdmaSampleIntervalMs: "GPUFLEET_AGENT_RDMA_SAMPLE_INTERVAL_MS",
  simReportIntervalMs: "GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS",
  simRequestRatePerSec: "GPUFLEET_AGENT_SIM_REQUEST_RATE",
  simNodePrefix: "GPUFLEET_AGENT_SIM_NODE_PREFIX",
  enginePort: "GPUFLEET_AGENT_ENGINE_PORT",
  engineBindHost: "GPUFLEET_AGENT_ENGINE_BIND",
  engineAdvertisedHost: "GPUFLEET_AGENT_ENGINE_HOST",
  workerPython: "GPUFLEET_AGENT_WORKER_PYTHON",
  workerDir: "GPUFLEET_AGENT_WORKER_DIR",
  logLevel: "GPUFLEET_LOG_LEVEL",
} as const satisfies Record<keyof AgentConfig, string>;

export function loadConfig(env: Readonly<Record<string, string | undefined>>): AgentConfig {
  const str = (key: keyof AgentConfig, fallback: string): string => env[ENV[key]] ?? fallback;
  const int = (key: keyof AgentConfig, fallback: number, min: number): number => {
    const text = env[ENV[key]];
    const value = text === undefined || text === "" ? fallback : Number(text);
    if (!Number.isInteger(value) || value < min)
      throw new ConfigError(`${ENV[key]} must be an integer >= ${min}, got "${text}"`);
    return value;
  };
  const bool = (key: keyof AgentConfig): boolean => {
    const text = str(key, "false");
    if (!["true", "false"].includes(text))
      throw new ConfigError(`${ENV[key]} must be "true" or "false", got "${text}"`);
    return text === "true";
  };
  const nonNegative = (key: keyof AgentConfig, fallback: number): number => {
    const text = env[ENV[key]];
    const value = text === undefined || text === "" ? fallback : Number(text);
    if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${ENV[key]} must be a number >= 0, got "${text}"`);
    return value;
  };
  const simulate = bool("simulate");
  const config: AgentConfig = {
    nodeName: str("nodeName", ""),
    simulate,
    natsUrl: str("natsUrl", ""),
    natsTlsDir: str("natsTlsDir", ""),
    natsCsr: bool("natsCsr"),
    natsCsrExpirationSeconds: int("natsCsrExpirationSeconds", 24 * 3600, 600),
    workerSocketPath: str("workerSocketPath", "/run/gpufleet/agent.sock"),
    operatorAddress: str("operatorAddress", "0.0.0.0:50051"),
    httpPort: int("httpPort", 9400, 0),
    tlsDir: str("tlsDir", ""),
    insecure: bool("insecure"),
    tlsRefreshIntervalMs: int("tlsRefreshIntervalMs", 10_000, 100),
    advertiseHost: str("advertiseHost", ""),
    nvidiaSmiPath: str("nvidiaSmiPath", "nvidia-smi"),
    sysfsRoot: str("sysfsRoot", "/sys"),
    leaf: env[ENV.leaf] || undefined,
    island: env[ENV.island] || undefined,
    heartbeatIntervalMs: int("heartbeatIntervalMs", 2000, 10),
    missedHeartbeatsLimit: int("missedHeartbeatsLimit", 3, 1),
    rdmaSampleIntervalMs: int("rdmaSampleIntervalMs", 5000, 100),
    simReportIntervalMs: int("simReportIntervalMs", 1000, 50),
    simRequestRatePerSec: nonNegative("simRequestRatePerSec", 0),
    simNodePrefix: str("simNodePrefix", ""),
    enginePort: int("enginePort", 8100, 0),
    engineBindHost: str("engineBindHost", "0.0.0.0"),
    engineAdvertisedHost: str("engineAdvertisedHost", "127.0.0.1"),
    workerPython: str("workerPython", "python3"),
    workerDir: str("workerDir", "/opt/gpufleet/worker"),
    logLevel: str("logLevel", "info"),
  };
  if (!config.simulate && config.nodeName === "")
    throw new ConfigError(`${ENV.nodeName} is required unless ${ENV.simulate}=true`);
  // The same pattern as charts/gpufleet/values.schema.json's natsUrl.
  if (config.natsUrl !== "" && !/^(nats|tls):\/\/.+$/.test(config.natsUrl))
    throw new ConfigError(
      `${ENV.natsUrl} must be empty (telemetry off) or a nats:// or tls:// URL, got "${config.natsUrl}"`,
    );
  if (config.natsCsr && (config.simulate || config.natsTlsDir === "" || config.tlsDir === ""))
    throw new ConfigError(
      `${ENV.natsCsr}=true needs ${ENV.natsTlsDir} (where the certificate is written) and ${ENV.tlsDir} (its ca.crt), ` +
        `and is for a node's own agent, not the simulation`,
    );
  if (config.enginePort > 65535)
    throw new ConfigError(`${ENV.enginePort} must be a port (0-65535), got ${config.enginePort}`);
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(config.engineAdvertisedHost))
    throw new ConfigError(
      `${ENV.engineAdvertisedHost} must be a host name or IP address, got "${config.engineAdvertisedHost}"`,
    );
  return config;
}

/**
 * The operator port serves mTLS unless a developer said otherwise: an agent with neither a certificate folder nor
 * GPUFLEET_AGENT_INSECURE=true refuses to start (checked apart from loadConfig so each rule has its own test).
 */
export function requireOperatorTls(config: Pick<AgentConfig, "tlsDir" | "insecure">): void {
  if (config.tlsDir === "" && !config.insecure) {
    throw new ConfigError(
      `${ENV.tlsDir} is required: the operator port serves only mTLS (set ${ENV.insecure}=true to serve plaintext in development)`,
    );
  }
  if (config.tlsDir !== "" && config.insecure)
    throw new ConfigError(`${ENV.tlsDir} and ${ENV.insecure}=true contradict each other; set one`);
}

/**
 * How to connect to `natsUrl`; undefined when telemetry is off. nats.js ignores the URL's scheme, so tls:// must
 * turn TLS on explicitly (verified against the system CAs); with it set, a server without TLS is refused rather
 * than used in plaintext.
 */
export function natsConnectionOptions(natsUrl: string): Pick<ConnectionOptions, "servers" | "tls"> | undefined {
  if (natsUrl === "") return undefined;
  return { servers: natsUrl, tls: natsUrl.startsWith("tls://") ? {} : undefined };
}

/** Whom this agent's NATS certificate names: its node, or the simulation agent that serves every kwok node. */
export function agentNatsIdentity(config: Pick<AgentConfig, "simulate" | "nodeName">): NatsIdentity {
  return config.simulate ? natsIdentity(NatsRole.simulationAgent) : natsIdentity(NatsRole.agent, config.nodeName);
}
