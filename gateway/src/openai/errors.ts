/**
 * Every failure the gateway answers, as one error class with its HTTP status and OpenAI-style body. Codes are the
 * `error.code` a client sees and the `code` label of gpufleet_gateway_errors_total.
 */
import type { ErrorBody } from "../../../common/src/engine-api.js";

export const ErrorCode = {
  invalidRequest: "invalid_request",
  invalidJson: "invalid_json",
  unauthorized: "invalid_api_key",
  bodyTooLarge: "body_too_large",
  modelNotFound: "model_not_found",
  notFound: "not_found",
  methodNotAllowed: "method_not_allowed",
  overloaded: "overloaded",
  noInstances: "no_instances",
  upstreamFailed: "upstream_failed",
  upstreamTimeout: "upstream_timeout",
  shuttingDown: "shutting_down",
  internal: "internal_error",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const TYPE_BY_STATUS: Record<number, string> = {
  400: "invalid_request_error",
  401: "invalid_request_error",
  404: "invalid_request_error",
  405: "invalid_request_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
  502: "server_error",
  503: "server_error",
  504: "server_error",
  500: "server_error",
};

export class GatewayError extends Error {
  override name = "GatewayError";
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly extra: { param?: string | null; retryAfterS?: number } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  body(): ErrorBody {
    return {
      error: {
        message: this.message,
        type: TYPE_BY_STATUS[this.status] ?? "server_error",
        code: this.code,
        param: this.extra.param ?? null,
      },
    };
  }

  /** Headers that go with the status: Retry-After on 429 and 503. */
  headers(): Record<string, string> {
    return this.extra.retryAfterS !== undefined ? { "retry-after": String(this.extra.retryAfterS) } : {};
  }
}

export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return new GatewayError(500, ErrorCode.internal, "internal error", {}, { cause: error });
}

export const badRequest = (message: string, param: string | null = null): GatewayError =>
  new GatewayError(400, ErrorCode.invalidRequest, message, { param });
export const modelNotFound = (model: string): GatewayError =>
  new GatewayError(404, ErrorCode.modelNotFound, `The model '${model}' does not exist`, { param: "model" });
