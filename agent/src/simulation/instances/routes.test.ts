import { describe, expect, it } from "vitest";
import { validateInstanceLoadFields } from "../../../../common/src/engine-api.js";
import { instanceBaseUrl, matchRoute, roleServes, type Matched } from "./routes.js";

const UID = "3f2a9c1e-0000-4000-8000-000000000001";

describe("matchRoute", () => {
  it.each([
    ["GET", `/instances/${UID}/health`, { instanceKey: UID, route: { name: "health" } }],
    ["POST", `/instances/${UID}/v1/completions`, { instanceKey: UID, route: { name: "completions" } }],
    ["POST", `/instances/${UID}/gpufleet/v1/prefill`, { instanceKey: UID, route: { name: "prefill" } }],
    ["POST", `/instances/${UID}/gpufleet/v1/decode`, { instanceKey: UID, route: { name: "decode" } }],
    [
      "GET",
      `/instances/${UID}/gpufleet/v1/kv/req%2F1`,
      { instanceKey: UID, route: { name: "kv-get", requestId: "req/1" } },
    ],
    [
      "DELETE",
      `/instances/${UID}/gpufleet/v1/kv/r2`,
      { instanceKey: UID, route: { name: "kv-delete", requestId: "r2" } },
    ],
    ["POST", `/instances/${UID}/gpufleet/v1/migrations`, { instanceKey: UID, route: { name: "migration-reserve" } }],
    [
      "POST",
      `/instances/${UID}/gpufleet/v1/migrations/req%2F1/stages`,
      { instanceKey: UID, route: { name: "migration-stage", requestId: "req/1" } },
    ],
    [
      "POST",
      `/instances/${UID}/gpufleet/v1/migrations/r/commit`,
      { instanceKey: UID, route: { name: "migration-commit", requestId: "r" } },
    ],
    [
      "GET",
      `/instances/${UID}/gpufleet/v1/migrations/r/stream`,
      { instanceKey: UID, route: { name: "migration-stream", requestId: "r" } },
    ],
    [
      "DELETE",
      `/instances/${UID}/gpufleet/v1/migrations/r`,
      { instanceKey: UID, route: { name: "migration-release", requestId: "r" } },
    ],
  ])("%s %s", (method, path, expected) => {
    expect(matchRoute(method, path)).toEqual(expected);
  });

  it.each([
    ["GET", "/health", 404],
    ["GET", "/instances/", 404],
    ["GET", `/instances/${UID}/v2/other`, 404],
    ["GET", `/instances/${UID}/gpufleet/v1/kv/`, 404],
    ["GET", `/instances/${UID}/v1/completions`, 405],
    ["POST", `/instances/${UID}/health`, 405],
    ["PUT", `/instances/${UID}/gpufleet/v1/kv/r`, 405],
    ["GET", "/instances/%E0%A4%A/health", 404],
    ["GET", `/instances/${UID}/gpufleet/v1/migrations`, 405],
    ["POST", `/instances/${UID}/gpufleet/v1/migrations/r`, 405],
    ["POST", `/instances/${UID}/gpufleet/v1/migrations/r/stream`, 405],
    ["POST", `/instances/${UID}/gpufleet/v1/migrations/r/other`, 404],
    ["POST", `/instances/${UID}/gpufleet/v1/migrations/r/commit/x`, 404],
  ])("%s %s → %i", (method, path, status) => {
    const matched: Matched = matchRoute(method, path);
    expect("error" in matched && matched.error.status).toBe(status);
  });
});

describe("roleServes", () => {
  it.each([
    ["colocated", "completions", true],
    ["colocated", "prefill", false],
    ["prefill", "prefill", true],
    ["prefill", "kv-get", true],
    ["prefill", "completions", false],
    ["decode", "decode", true],
    ["decode", "kv-delete", false],
    ["decode", "health", true],
    ["colocated", "migration-commit", true],
    ["decode", "migration-stream", true],
    ["prefill", "migration-reserve", false],
  ] as const)("a %s instance serves %s: %s", (role, name, serves) => {
    const route =
      name === "kv-get" || name === "kv-delete" || name === "migration-commit" || name === "migration-stream"
        ? { name, requestId: "r" }
        : { name };
    const error = roleServes(role, route);
    expect(error === undefined).toBe(serves);
    if (error) expect(error.status).toBe(404);
  });
});

describe("instanceBaseUrl", () => {
  it("is a valid engineUrl of the contract, and the contract's paths append to it", () => {
    const url = instanceBaseUrl("http://10.0.0.7:8100", UID);
    expect(url).toBe(`http://10.0.0.7:8100/instances/${UID}`);
    const fields = {
      engineUrl: url,
      model: "m",
      role: "decode",
      servingDeployment: "ns/sd",
      kvBlocksTotal: 1,
      kvBlocksUsed: 0,
      blockSizeTokens: 16,
    };
    expect(validateInstanceLoadFields(fields).ok).toBe(true);
    expect(matchRoute("GET", new URL(`${url}/health`).pathname)).toEqual({
      instanceKey: UID,
      route: { name: "health" },
    });
  });

  it("the contract still refuses a trailing slash, a query or no host", () => {
    for (const engineUrl of ["http://h:1/instances/u/", "http://h:1/x?y=1", "http:///x", "ftp://h:1"]) {
      expect(
        validateInstanceLoadFields({
          engineUrl,
          model: "m",
          role: "decode",
          servingDeployment: "ns/sd",
          kvBlocksTotal: 1,
          kvBlocksUsed: 0,
          blockSizeTokens: 16,
        }).ok,
      ).toBe(false);
    }
  });
});
