import { describe, expect, it } from "vitest";
import { validateErrorBody } from "../../../../common/src/engine-api.js";
import { RefusalCode } from "../../workers/simulated/engine.js";
import { httpError, kvPullError, refusalError } from "./errors.js";

describe("refusalError", () => {
  it.each([
    [RefusalCode.invalid, 400, "invalid_request"],
    [RefusalCode.tooLarge, 400, "context_length_exceeded"],
    [RefusalCode.incompatibleKv, 400, "incompatible_kv"],
    [RefusalCode.wrongRole, 404, "not_found"],
    [RefusalCode.duplicate, 409, "duplicate_request"],
    [RefusalCode.draining, 503, "draining"],
  ])("%s → %i %s, in the contract's ErrorBody", (code, status, errorCode) => {
    const error = refusalError(code, "why");
    expect(error.status).toBe(status);
    expect(error.body.error).toMatchObject({ code: errorCode, message: "why" });
    expect(validateErrorBody(error.body).ok).toBe(true);
  });

  it("tells the client when to retry only where retrying can help (503)", () => {
    expect(refusalError(RefusalCode.draining, "d").retryAfterS).toBe(1);
    expect(refusalError(RefusalCode.invalid, "i").retryAfterS).toBeUndefined();
  });
});

describe("kvPullError", () => {
  it.each([
    ["the source no longer holds it", 404, 410, "kv_gone"],
    ["the source is unreachable", undefined, 502, "kv_source_failed"],
    ["the source fails", 500, 502, "kv_source_failed"],
  ])("%s", (_name, sourceStatus, status, code) => {
    const error = kvPullError(sourceStatus, "http://a:1/instances/u", "r1", "detail");
    expect(error).toMatchObject({ status, body: { error: { code, param: "kv" } } });
    expect(error.body.error.message).toContain("r1");
  });
});

describe("httpError", () => {
  it.each([
    [400, "invalid_request_error"],
    [404, "not_found_error"],
    [409, "conflict_error"],
    [503, "service_unavailable_error"],
    [500, "server_error"],
  ])("%i has type %s", (status, type) => {
    expect(httpError(status, "invalid_request", "m").body.error.type).toBe(type);
  });
});
