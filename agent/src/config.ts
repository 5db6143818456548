/** Agent configuration: one validated object, from the environment, with tested defaults. */

export interface AgentConfig {
  /** Node this agent runs on (downward API spec.nodeName); unused in simulation. */
  nodeName: string;
  simulate: boolean;
  natsUrl: string;
  workerSocketPath: string;
  operatorAddress: string;
  httpPort: number;
  /** Folder with ca.crt, tls.crt, tls.key for operator-facing mTLS; empty: plaintext. */
  tlsDir: string;
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
  /** Simulation: the one port of the simulated instances' engine API (0: any free port). */
  enginePort: number;
  /** Simulation: interface the engine API listens on. */
  engineBindHost: string;
  /** Simulation: host in the instances' engineUrls, i.e. how the gateway reaches this agent. */
  engineAdvertisedHost: string;
  logLevel: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export const ENV = {
  nodeName: "NODE_NAME",
  simulate: "GPUFLEET_AGENT_SIMULATE",
  natsUrl: "GPUFLEET_NATS_URL",
  workerSocketPath: "GPUFLEET_AGENT_SOCKET",
  operatorAddress: "GPUFLEET_AGENT_GRPC_ADDRESS",
  httpPort: "GPUFLEET_AGENT_HTTP_PORT",
  tlsDir: "GPUFLEET_AGENT_TLS_DIR",
  nvidiaSmiPath: "GPUFLEET_AGENT_NVIDIA_SMI",
  sysfsRoot: "GPUFLEET_AGENT_SYSFS_ROOT",
  leaf: "GPUFLEET_AGENT_LEAF",
  island: "GPUFLEET_AGENT_ISLAND",
  heartbeatIntervalMs: "GPUFLEET_AGENT_HEARTBEAT_INTERVAL_MS",
  missedHeartbeatsLimit: "GPUFLEET_AGENT_MISSED_HEARTBEATS",
  rdmaSampleIntervalMs: "GPUFLEET_AGENT_RDMA_SAMPLE_INTERVAL_MS",
  simReportIntervalMs: "GPUFLEET_AGENT_SIM_REPORT_INTERVAL_MS",
  simRequestRatePerSec: "GPUFLEET_AGENT_SIM_REQUEST_RATE",
  enginePort: "GPUFLEET_AGENT_ENGINE_PORT",
  engineBindHost: "GPUFLEET_AGENT_ENGINE_BIND",
  engineAdvertisedHost: "GPUFLEET_AGENT_ENGINE_HOST",
  logLevel: "GPUFLEET_LOG_LEVEL",
} as const satisfies Record<keyof AgentConfig, string>;

export function loadConfig(env: Readonly<Record<string, string | undefined>>): AgentConfig {
  const str = (key: keyof AgentConfig, fallback: string): string => env[ENV[key]] ?? fallback;
  const int = (key: keyof AgentConfig, fallback: number, min: number): number => {
    const text = env[ENV[key]];
    const value = text === undefined || text === "" ? fallback : Number(text);
    if (!Number.isInteger(value) || value < min) throw new ConfigError(`${ENV[key]} must be an integer >= ${min}, got "${text}"`);
    return value;
  };
  const nonNegative = (key: keyof AgentConfig, fallback: number): number => {
    const text = env[ENV[key]];
    const value = text === undefined || text === "" ? fallback : Number(text);
    if (!Number.isFinite(value) || value < 0) throw new ConfigError(`${ENV[key]} must be a number >= 0, got "${text}"`);
    return value;
  };
  const simulateText = str("simulate", "false");
  if (!["true", "false"].includes(simulateText)) throw new ConfigError(`${ENV.simulate} must be "true" or "false", got "${simulateText}"`);
  const config: AgentConfig = {
    nodeName: str("nodeName", ""),
    simulate: simulateText === "true",
    natsUrl: str("natsUrl", "nats://127.0.0.1:4222"),
    workerSocketPath: str("workerSocketPath", "/run/gpufleet/agent.sock"),
    operatorAddress: str("operatorAddress", "0.0.0.0:50051"),
    httpPort: int("httpPort", 9400, 0),
    tlsDir: str("tlsDir", ""),
    nvidiaSmiPath: str("nvidiaSmiPath", "nvidia-smi"),
    sysfsRoot: str("sysfsRoot", "/sys"),
    leaf: env[ENV.leaf] || undefined,
    island: env[ENV.island] || undefined,
    heartbeatIntervalMs: int("heartbeatIntervalMs", 2000, 10),
    missedHeartbeatsLimit: int("missedHeartbeatsLimit", 3, 1),
    rdmaSampleIntervalMs: int("rdmaSampleIntervalMs", 5000, 100),
    simReportIntervalMs: int("simReportIntervalMs", 1000, 50),
    simRequestRatePerSec: nonNegative("simRequestRatePerSec", 0),
    enginePort: int("enginePort", 8100, 0),
    engineBindHost: str("engineBindHost", "0.0.0.0"),
    engineAdvertisedHost: str("engineAdvertisedHost", "127.0.0.1"),
    logLevel: str("logLevel", "info"),
  };
  if (!config.simulate && config.nodeName === "") throw new ConfigError(`${ENV.nodeName} is required unless ${ENV.simulate}=true`);
  if (config.enginePort > 65535) throw new ConfigError(`${ENV.enginePort} must be a port (0-65535), got ${config.enginePort}`);
  if (!/^[A-Za-z0-9.\-:[\]]+$/.test(config.engineAdvertisedHost)) throw new ConfigError(`${ENV.engineAdvertisedHost} must be a host name or IP address, got "${config.engineAdvertisedHost}"`);
  if (!/^nats:\/\//.test(config.natsUrl)) throw new ConfigError(`${ENV.natsUrl} must be a nats:// URL, got "${config.natsUrl}"`);
  return config;
}
