/**
 * Admission settings of the gateway: how many completions run at once, how many wait and for how long, how long a
 * client may take to send its request and to read its response, and the optional API keys. Read from
 * GPUFLEET_GATEWAY_* variables like the rest of the gateway's configuration (../config.ts), in their own schema so
 * admission stays one folder.
 */
import { Type, type Static } from "@sinclair/typebox";
import { configFromEnv } from "../../../common/src/config/env.js";

export const AdmissionConfigSchema = Type.Object({
  /** Completions handled at once by this replica; more wait in the queue. */
  maxInFlight: Type.Integer({ minimum: 1, default: 512 }),
  /** Completions waiting for a slot; one more is answered 429 at once. 0: no queue. */
  maxQueued: Type.Integer({ minimum: 0, default: 1024 }),
  /** A completion that waited this long for a slot is answered 503. */
  queueTimeoutMs: Type.Integer({ minimum: 1, default: 10_000 }),
  /** Retry-After (seconds) on the 429s and 503s admission sends. */
  retryAfterS: Type.Integer({ minimum: 1, default: 1 }),
  /** Headers and body must arrive within this (Node's requestTimeout): a client trickling bytes is cut off with 408. */
  requestTimeoutMs: Type.Integer({ minimum: 1_000, default: 30_000 }),
  /**
   * A response whose socket has not drained for this long (the client stopped reading) is closed, its upstream call
   * cancelled.
   */
  writeStallTimeoutMs: Type.Integer({ minimum: 100, default: 30_000 }),
  /** Open client connections at most (Node's server.maxConnections); further connections are closed on accept. */
  maxConnections: Type.Integer({ minimum: 1, default: 4096 }),
  /**
   * A file of API keys, one per line ('#' comments): a mounted Secret. Unset: no keys (every client admitted).
   * Re-read when it changes, so a rotated Secret takes effect without a restart.
   */
  apiKeysFile: Type.Optional(Type.String({ minLength: 1 })),
  /** How often the API key file is checked for changes. */
  apiKeysRefreshMs: Type.Integer({ minimum: 100, default: 10_000 }),
});
export type AdmissionConfig = Static<typeof AdmissionConfigSchema>;

export const ADMISSION_ENV: Record<keyof AdmissionConfig, string> = {
  maxInFlight: "GPUFLEET_GATEWAY_MAX_IN_FLIGHT",
  maxQueued: "GPUFLEET_GATEWAY_MAX_QUEUED",
  queueTimeoutMs: "GPUFLEET_GATEWAY_QUEUE_TIMEOUT_MS",
  retryAfterS: "GPUFLEET_GATEWAY_ADMISSION_RETRY_AFTER_S",
  requestTimeoutMs: "GPUFLEET_GATEWAY_REQUEST_TIMEOUT_MS",
  writeStallTimeoutMs: "GPUFLEET_GATEWAY_WRITE_STALL_TIMEOUT_MS",
  maxConnections: "GPUFLEET_GATEWAY_MAX_CONNECTIONS",
  apiKeysFile: "GPUFLEET_GATEWAY_API_KEYS_FILE",
  apiKeysRefreshMs: "GPUFLEET_GATEWAY_API_KEYS_REFRESH_MS",
};

export class AdmissionConfigError extends Error {
  override name = "AdmissionConfigError";
}

export function loadAdmissionConfig(env: NodeJS.ProcessEnv = process.env): AdmissionConfig {
  return configFromEnv(AdmissionConfigSchema, ADMISSION_ENV, env, {
    what: "gateway admission",
    makeError: (message) => new AdmissionConfigError(message),
  });
}

/** The defaults, for callers that build the gateway without the environment (tests, benchmarks). */
export const DEFAULT_ADMISSION_CONFIG: AdmissionConfig = loadAdmissionConfig({});
