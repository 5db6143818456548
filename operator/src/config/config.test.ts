import { describe, expect, it } from "vitest";
import { loadOperatorConfig } from "./config.js";

describe("loadOperatorConfig", () => {
  it("applies defaults and falls back to the downward API", () => {
    const config = loadOperatorConfig({ POD_NAMESPACE: "ops", POD_NAME: "gpufleet-operator-0" });
    expect(config).toMatchObject({
      namespace: "ops",
      identity: "gpufleet-operator-0",
      leaderElection: true,
      leaseDurationMs: 10_000,
      renewDeadlineMs: 7_000,
      retryPeriodMs: 2_000,
      httpPort: 8080,
      logLevel: "info",
    });
  });

  it("converts numbers and booleans from strings", () => {
    const config = loadOperatorConfig({
      GPUFLEET_HTTP_PORT: "9090",
      GPUFLEET_LEADER_ELECTION: "false",
      GPUFLEET_IDENTITY: "a",
    });
    expect(config.httpPort).toBe(9090);
    expect(config.leaderElection).toBe(false);
  });

  it("reads the engine adapter image, unset by default", () => {
    expect(loadOperatorConfig({ GPUFLEET_IDENTITY: "a" }).engineAdapterImage).toBeUndefined();
    const config = loadOperatorConfig({ GPUFLEET_IDENTITY: "a", GPUFLEET_ENGINE_ADAPTER_IMAGE: "reg.example/gf:1.2" });
    expect(config.engineAdapterImage).toBe("reg.example/gf:1.2");
  });

  it.each([
    [{ GPUFLEET_HTTP_PORT: "http" }, /GPUFLEET_HTTP_PORT/],
    [{ GPUFLEET_LOG_LEVEL: "loud" }, /GPUFLEET_LOG_LEVEL/],
    [
      { GPUFLEET_LEASE_DURATION_MS: "5000", GPUFLEET_RENEW_DEADLINE_MS: "6000" },
      /GPUFLEET_RENEW_DEADLINE_MS must be shorter than GPUFLEET_LEASE_DURATION_MS/,
    ],
  ])("rejects %o naming the variable", (env, message) => {
    expect(() => loadOperatorConfig({ GPUFLEET_IDENTITY: "a", ...env })).toThrow(message);
  });
});
