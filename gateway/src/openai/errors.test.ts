import { describe, expect, it } from "vitest";
import { ErrorCode, GatewayError, modelNotFound, toGatewayError } from "./errors.js";

describe("GatewayError", () => {
  it.each([
    {
      error: modelNotFound("m"),
      status: 404,
      type: "invalid_request_error",
      code: "model_not_found",
      retryAfter: undefined,
    },
    {
      error: new GatewayError(429, ErrorCode.overloaded, "busy", { retryAfterS: 2 }),
      status: 429,
      type: "rate_limit_error",
      code: "overloaded",
      retryAfter: "2",
    },
    {
      error: new GatewayError(503, ErrorCode.noInstances, "none", { retryAfterS: 1 }),
      status: 503,
      type: "server_error",
      code: "no_instances",
      retryAfter: "1",
    },
    {
      error: new GatewayError(413, ErrorCode.bodyTooLarge, "big"),
      status: 413,
      type: "invalid_request_error",
      code: "body_too_large",
      retryAfter: undefined,
    },
    {
      error: toGatewayError(new Error("boom")),
      status: 500,
      type: "server_error",
      code: "internal_error",
      retryAfter: undefined,
    },
  ])("$code → $status", ({ error, status, type, code, retryAfter }) => {
    expect(error.status).toBe(status);
    expect(error.body()).toEqual({ error: { message: error.message, type, code, param: error.extra.param ?? null } });
    expect(error.headers()["retry-after"]).toBe(retryAfter);
  });

  it("does not leak an internal error's message", () => {
    expect(toGatewayError(new Error("secret path /etc/x")).message).toBe("internal error");
  });
});
