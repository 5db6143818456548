/**
 * The load adapter's configuration, from the environment the operator gives its container
 * (operator/src/serving/engines/pod.ts): which engine, where its metrics are, the instance's place in the plan and
 * the pod's identity (downward API). One validated object; errors name the variable.
 */
import type { EngineMetricsKind } from "./engine-load.js";

export interface AdapterConfig {
  kind: EngineMetricsKind;
  metricsUrl: string;
  /** Unix socket of the node agent (GPUFLEET_AGENT_SOCKET). */
  agentSocket: string;
  /** The engine's base URL for the gateway: http://<pod IP>:<port>. */
  engineUrl: string;
  podNamespace: string;
  podName: string;
  podUid: string;
  nodeName: string;
  /** "namespace/name" of the ServingDeployment. */
  servingDeployment: string;
  role: "prefill" | "decode" | "colocated";
  model: string;
  tp: number;
  pp: number;
  gpuModel: string;
  scrapeIntervalMs: number;
  /** SGLang prefill instances: the KV bootstrap server's port (GPUFLEET_ENGINE_BOOTSTRAP_PORT), for the gateway. */
  bootstrapPort?: number;
}

export class AdapterConfigError extends Error {
  override name = "AdapterConfigError";
}

export function loadAdapterConfig(env: NodeJS.ProcessEnv): AdapterConfig {
  const need = (name: string): string => {
    const v = env[name]?.trim();
    if (!v) throw new AdapterConfigError(`${name} must be set`);
    return v;
  };
  const positiveInt = (name: string, fallback?: number): number => {
    const raw = env[name]?.trim();
    if (!raw && fallback !== undefined) return fallback;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < 1)
      throw new AdapterConfigError(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    return v;
  };
  const kind = need("GPUFLEET_ENGINE_KIND");
  if (kind !== "vllm" && kind !== "sglang")
    throw new AdapterConfigError(`GPUFLEET_ENGINE_KIND must be vllm or sglang, got ${JSON.stringify(kind)}`);
  const role = need("GPUFLEET_ROLE");
  if (role !== "prefill" && role !== "decode" && role !== "colocated")
    throw new AdapterConfigError(`GPUFLEET_ROLE must be prefill, decode or colocated, got ${JSON.stringify(role)}`);
  const metricsUrl = need("GPUFLEET_ENGINE_METRICS_URL");
  try {
    new URL(metricsUrl);
  } catch (error) {
    throw new AdapterConfigError(`GPUFLEET_ENGINE_METRICS_URL is not a URL: ${JSON.stringify(metricsUrl)}`, {
      cause: error,
    });
  }
  const podNamespace = need("POD_NAMESPACE");
  // The gateway cannot pair a SGLang request without it; the operator sets it on prefill adapters only.
  const bootstrapPort =
    kind === "sglang" && role === "prefill" ? positiveInt("GPUFLEET_ENGINE_BOOTSTRAP_PORT") : undefined;
  if (bootstrapPort !== undefined && bootstrapPort > 65535)
    throw new AdapterConfigError(`GPUFLEET_ENGINE_BOOTSTRAP_PORT must be a port number, got ${bootstrapPort}`);
  return {
    kind,
    metricsUrl,
    agentSocket: need("GPUFLEET_AGENT_SOCKET"),
    engineUrl: `http://${need("POD_IP")}:${positiveInt("GPUFLEET_PORT")}`,
    podNamespace,
    podName: need("POD_NAME"),
    podUid: need("POD_UID"),
    nodeName: need("NODE_NAME"),
    servingDeployment: `${podNamespace}/${need("GPUFLEET_SERVING_DEPLOYMENT")}`,
    role,
    model: need("GPUFLEET_MODEL"),
    tp: positiveInt("GPUFLEET_TP"),
    pp: positiveInt("GPUFLEET_PP"),
    gpuModel: env["GPUFLEET_GPU_MODEL"]?.trim() ?? "",
    scrapeIntervalMs: positiveInt("GPUFLEET_ENGINE_SCRAPE_INTERVAL_MS", 1000),
    ...(bootstrapPort === undefined ? {} : { bootstrapPort }),
  };
}
