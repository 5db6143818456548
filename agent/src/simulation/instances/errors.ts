/**
 * Errors of the simulated engine API (pure): the contract's ErrorBody (OpenAI's shape) with an HTTP status per
 * cause. Choices, documented in docs/simulated-workers.md:
 * - 400 bad JSON, a body the contract's schema rejects, a request that can never fit (context, batch budget or
 *   the whole KV cache), KV of another model or block size; 404 unknown instance, route not served by this
 *   role, unknown model, unknown KV; 409 a request id already on the instance; 405 wrong method; 413 body too big.
 * - 503 `draining` (with Retry-After): the gateway's "overloaded" class, so it tries another instance.
 * - A full KV cache is no error: the request waits in the engine's queue as in vLLM, and the load report shows
 *   it (queueLength, headOfLineDemandBlocks) so dispatch sends new work elsewhere.
 * - Decode side: 410 `kv_gone` when the prefill instance no longer holds the KV (the gateway's code for it),
 *   502 when the prefill instance cannot be reached or answers nonsense.
 * - Live migration: 507 `out_of_memory` when a pre-allocation does not fit the destination's free KV blocks or
 *   batch slots, 409 `migration_busy` when the instance already runs its most concurrent migrations, 409
 *   `not_migratable` for a request that is not decoding here (or already migrating), 404 `migration_not_found` for
 *   an unknown or expired pre-allocation, 503 `unavailable` from a worker that is gone.
 * - After a stream started, an aborted request (drain deadline, abort command, pod stopped) ends with one
 *   `data: {"error": ...}` event and no [DONE], as the contract says.
 */
import type { ErrorBody } from "../../../../common/src/engine-api.js";
import { RefusalCode } from "../../workers/simulated/engine.js";

export interface HttpError {
  status: number;
  body: ErrorBody;
  retryAfterS?: number;
}

export const ErrorCode = {
  invalidRequest: "invalid_request",
  invalidJson: "invalid_json",
  bodyTooLarge: "body_too_large",
  contextLengthExceeded: "context_length_exceeded",
  incompatibleKv: "incompatible_kv",
  notFound: "not_found",
  instanceNotFound: "instance_not_found",
  modelNotFound: "model_not_found",
  kvNotFound: "kv_not_found",
  methodNotAllowed: "method_not_allowed",
  duplicateRequest: "duplicate_request",
  draining: "draining",
  kvGone: "kv_gone",
  kvSourceFailed: "kv_source_failed",
  aborted: "aborted",
  outOfMemory: "out_of_memory",
  migrationBusy: "migration_busy",
  notMigratable: "not_migratable",
  migrationNotFound: "migration_not_found",
  unavailable: "unavailable",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const TYPE_BY_STATUS: Readonly<Record<number, string>> = {
  404: "not_found_error",
  409: "conflict_error",
  410: "kv_gone_error",
  502: "upstream_error",
  503: "service_unavailable_error",
  507: "insufficient_storage_error",
};

export function httpError(status: number, code: ErrorCode, message: string, param: string | null = null): HttpError {
  const type = TYPE_BY_STATUS[status] ?? (status >= 500 ? "server_error" : "invalid_request_error");
  return { status, body: { error: { message, type, code, param } }, ...(status === 503 ? { retryAfterS: 1 } : {}) };
}

/** An engine refusal as the HTTP answer. */
export function refusalError(code: RefusalCode, reason: string): HttpError {
  switch (code) {
    case RefusalCode.invalid:
      return httpError(400, ErrorCode.invalidRequest, reason);
    case RefusalCode.tooLarge:
      return httpError(400, ErrorCode.contextLengthExceeded, reason, "max_tokens");
    case RefusalCode.incompatibleKv:
      return httpError(400, ErrorCode.incompatibleKv, reason, "kv");
    case RefusalCode.duplicate:
      return httpError(409, ErrorCode.duplicateRequest, reason);
    case RefusalCode.draining:
      return httpError(503, ErrorCode.draining, reason);
    case RefusalCode.wrongRole:
      return httpError(404, ErrorCode.notFound, reason);
    case RefusalCode.outOfMemory:
      return httpError(507, ErrorCode.outOfMemory, reason);
    case RefusalCode.migrationBusy:
      return httpError(409, ErrorCode.migrationBusy, reason);
    case RefusalCode.notMigratable:
      return httpError(409, ErrorCode.notMigratable, reason);
    case RefusalCode.dead:
      return httpError(503, ErrorCode.unavailable, reason);
  }
}

/** The decode side's pull answered `status` (undefined: unreachable). */
export function kvPullError(
  status: number | undefined,
  sourceUrl: string,
  requestId: string,
  detail: string,
): HttpError {
  if (status === 404)
    return httpError(410, ErrorCode.kvGone, `the KV of ${requestId} is no longer on ${sourceUrl}: ${detail}`, "kv");
  return httpError(
    502,
    ErrorCode.kvSourceFailed,
    `pulling the KV of ${requestId} from ${sourceUrl} failed${status === undefined ? "" : ` (${status})`}: ${detail}`,
    "kv",
  );
}
