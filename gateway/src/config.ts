/**
 * The gateway's configuration: one typed object from GPUFLEET_GATEWAY_* variables, validated at start-up so a bad
 * value fails at boot naming the variable.
 */
import { Type, type Static } from "@sinclair/typebox";
import { configFromEnv } from "../../common/src/config/env.js";
import { hostname } from "node:os";

const Ms = (def: number, minimum = 1) => Type.Integer({ minimum, default: def });

export const GatewayConfigSchema = Type.Object({
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8000 }),
  host: Type.String({ minLength: 1, default: "0.0.0.0" }),
  logLevel: Type.Union(
    [
      Type.Literal("trace"),
      Type.Literal("debug"),
      Type.Literal("info"),
      Type.Literal("warn"),
      Type.Literal("error"),
      Type.Literal("silent"),
    ],
    { default: "info" },
  ),
  /** This replica's name in logs (POD_NAME from the downward API). */
  identity: Type.String({ minLength: 1 }),
  /** nats:// URL carrying the agents' load reports (the instance source). */
  natsUrl: Type.String({ minLength: 1 }),
  /** Folder with ca.crt, tls.crt, tls.key: the gateway's NATS client certificate (docs/security.md). "": none. */
  natsTlsDir: Type.String({ default: "" }),
  dispatchPolicy: Type.Union(
    [Type.Literal("freeness"), Type.Literal("round-robin"), Type.Literal("waiting-prompt-tokens")],
    { default: "freeness" },
  ),
  highPriorityHeadroomFraction: Type.Number({ minimum: 0, maximum: 1, default: 0.1 }),
  /** An instance whose last load report is older than this takes no new requests. */
  instanceStaleMs: Ms(5_000, 100),
  /**
   * While NATS is away (no instance can report), reports do not age for up to this long: the gateway serves from
   * its last view through a NATS outage shorter than this, and then lets the instances go stale as usual.
   */
  sourceOutageHoldMs: Ms(60_000, 0),
  /** A model whose instances all went silent still answers 503 (not 404) this long. */
  modelForgetMs: Ms(300_000, 1_000),
  /** An instance that failed a call is skipped for this long (until a newer report clears it). */
  suspectMs: Ms(5_000, 0),
  /** A local reservation nobody superseded ends after this. */
  reservationMaxAgeMs: Ms(10_000, 100),
  /** Upstream: time to the response headers (connect included), and between two chunks of a stream. */
  upstreamHeadersTimeoutMs: Ms(10_000),
  upstreamIdleTimeoutMs: Ms(30_000),
  /** Upstream: whole request, streams included. */
  upstreamTotalTimeoutMs: Ms(600_000),
  /** Instances tried per request (per phase for disaggregated plans) before answering 503/429. */
  maxAttempts: Type.Integer({ minimum: 1, maximum: 10, default: 3 }),
  /** 429 once every instance of the pool has this many requests waiting (reported plus reserved). */
  maxQueuedPerInstance: Type.Integer({ minimum: 1, default: 64 }),
  retryAfterS: Type.Integer({ minimum: 1, default: 1 }),
  maxBodyBytes: Type.Integer({ minimum: 1024, default: 1_048_576 }),
  maxTokensLimit: Type.Integer({ minimum: 1, default: 8_192 }),
  defaultMaxTokens: Type.Integer({ minimum: 1, default: 256 }),
  /** On SIGTERM: stop accepting, then give in-flight streams this long before closing them. */
  shutdownGraceMs: Ms(25_000, 0),
});
export type GatewayConfig = Static<typeof GatewayConfigSchema>;

export const GATEWAY_ENV: Record<keyof GatewayConfig, string> = {
  port: "GPUFLEET_GATEWAY_PORT",
  host: "GPUFLEET_GATEWAY_HOST",
  logLevel: "GPUFLEET_GATEWAY_LOG_LEVEL",
  identity: "GPUFLEET_GATEWAY_IDENTITY",
  natsUrl: "GPUFLEET_GATEWAY_NATS_URL",
  natsTlsDir: "GPUFLEET_GATEWAY_NATS_TLS_DIR",
  dispatchPolicy: "GPUFLEET_GATEWAY_DISPATCH_POLICY",
  highPriorityHeadroomFraction: "GPUFLEET_GATEWAY_HIGH_PRIORITY_HEADROOM_FRACTION",
  instanceStaleMs: "GPUFLEET_GATEWAY_INSTANCE_STALE_MS",
  sourceOutageHoldMs: "GPUFLEET_GATEWAY_SOURCE_OUTAGE_HOLD_MS",
  modelForgetMs: "GPUFLEET_GATEWAY_MODEL_FORGET_MS",
  suspectMs: "GPUFLEET_GATEWAY_SUSPECT_MS",
  reservationMaxAgeMs: "GPUFLEET_GATEWAY_RESERVATION_MAX_AGE_MS",
  upstreamHeadersTimeoutMs: "GPUFLEET_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS",
  upstreamIdleTimeoutMs: "GPUFLEET_GATEWAY_UPSTREAM_IDLE_TIMEOUT_MS",
  upstreamTotalTimeoutMs: "GPUFLEET_GATEWAY_UPSTREAM_TOTAL_TIMEOUT_MS",
  maxAttempts: "GPUFLEET_GATEWAY_MAX_ATTEMPTS",
  maxQueuedPerInstance: "GPUFLEET_GATEWAY_MAX_QUEUED_PER_INSTANCE",
  retryAfterS: "GPUFLEET_GATEWAY_RETRY_AFTER_S",
  maxBodyBytes: "GPUFLEET_GATEWAY_MAX_BODY_BYTES",
  maxTokensLimit: "GPUFLEET_GATEWAY_MAX_TOKENS_LIMIT",
  defaultMaxTokens: "GPUFLEET_GATEWAY_DEFAULT_MAX_TOKENS",
  shutdownGraceMs: "GPUFLEET_GATEWAY_SHUTDOWN_GRACE_MS",
};

export class GatewayConfigError extends Error {
  override name = "GatewayConfigError";
}

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const config = configFromEnv(GatewayConfigSchema, GATEWAY_ENV, env, {
    fallbacks: { identity: env.POD_NAME ?? `${hostname()}-${process.pid}` },
    what: "gateway",
    makeError: (message) => new GatewayConfigError(message),
  });
  if (config.defaultMaxTokens > config.maxTokensLimit)
    throw new GatewayConfigError(`${GATEWAY_ENV.defaultMaxTokens} must not exceed ${GATEWAY_ENV.maxTokensLimit}`);
  if (config.upstreamIdleTimeoutMs > config.upstreamTotalTimeoutMs)
    throw new GatewayConfigError(
      `${GATEWAY_ENV.upstreamIdleTimeoutMs} must not exceed ${GATEWAY_ENV.upstreamTotalTimeoutMs}`,
    );
  return config;
}
