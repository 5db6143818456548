import { describe, expect, it } from "vitest";
import { loadGatewayConfig } from "./config.js";

describe("loadGatewayConfig", () => {
  it("applies defaults", () => {
    expect(loadGatewayConfig({ GPUFLEET_GATEWAY_NATS_URL: "nats://n:4222", POD_NAME: "gw-0" })).toMatchObject({
      port: 8000,
      identity: "gw-0",
      dispatchPolicy: "freeness",
      maxAttempts: 3,
      shutdownGraceMs: 25_000,
    });
  });

  it("converts numbers", () => {
    expect(
      loadGatewayConfig({
        GPUFLEET_GATEWAY_NATS_URL: "nats://n",
        GPUFLEET_GATEWAY_PORT: "9000",
        GPUFLEET_GATEWAY_DISPATCH_POLICY: "round-robin",
      }),
    ).toMatchObject({ port: 9000, dispatchPolicy: "round-robin" });
  });

  it.each([
    [{}, /GPUFLEET_GATEWAY_NATS_URL/],
    [{ GPUFLEET_GATEWAY_NATS_URL: "nats://n", GPUFLEET_GATEWAY_PORT: "http" }, /GPUFLEET_GATEWAY_PORT/],
    [
      { GPUFLEET_GATEWAY_NATS_URL: "nats://n", GPUFLEET_GATEWAY_DISPATCH_POLICY: "random" },
      /GPUFLEET_GATEWAY_DISPATCH_POLICY/,
    ],
    [
      {
        GPUFLEET_GATEWAY_NATS_URL: "nats://n",
        GPUFLEET_GATEWAY_DEFAULT_MAX_TOKENS: "500",
        GPUFLEET_GATEWAY_MAX_TOKENS_LIMIT: "100",
      },
      /GPUFLEET_GATEWAY_DEFAULT_MAX_TOKENS must not exceed/,
    ],
  ])("rejects %o naming the variable", (env, message) => {
    expect(() => loadGatewayConfig(env)).toThrow(message);
  });
});
