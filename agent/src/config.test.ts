import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("loadConfig", () => {
  it("has defaults for a real node", () => {
    expect(loadConfig({ NODE_NAME: "n1" })).toMatchObject({ nodeName: "n1", simulate: false, natsUrl: "nats://127.0.0.1:4222", workerSocketPath: "/run/gpufleet/agent.sock", sysfsRoot: "/sys", heartbeatIntervalMs: 2000, missedHeartbeatsLimit: 3, leaf: undefined });
  });

  it("simulation needs no node name", () => {
    expect(loadConfig({ GPUFLEET_AGENT_SIMULATE: "true", GPUFLEET_AGENT_HTTP_PORT: "0" })).toMatchObject({ simulate: true, httpPort: 0 });
  });

  it("serves the simulated engine API on one port, with no synthetic load by default", () => {
    expect(loadConfig({ GPUFLEET_AGENT_SIMULATE: "true" })).toMatchObject({ enginePort: 8100, engineBindHost: "0.0.0.0", engineAdvertisedHost: "127.0.0.1", simRequestRatePerSec: 0 });
    expect(loadConfig({ GPUFLEET_AGENT_SIMULATE: "true", GPUFLEET_AGENT_ENGINE_PORT: "0", GPUFLEET_AGENT_ENGINE_HOST: "agent.gpufleet-system.svc", GPUFLEET_AGENT_SIM_REQUEST_RATE: "2.5" }))
      .toMatchObject({ enginePort: 0, engineAdvertisedHost: "agent.gpufleet-system.svc", simRequestRatePerSec: 2.5 });
  });

  it.each([
    ["missing node name", {}, /NODE_NAME/],
    ["bad boolean", { GPUFLEET_AGENT_SIMULATE: "yes" }, /GPUFLEET_AGENT_SIMULATE/],
    ["bad interval", { NODE_NAME: "n", GPUFLEET_AGENT_HEARTBEAT_INTERVAL_MS: "fast" }, /HEARTBEAT_INTERVAL_MS/],
    ["bad NATS URL", { NODE_NAME: "n", GPUFLEET_NATS_URL: "http://x" }, /nats:\/\//],
    ["engine port out of range", { NODE_NAME: "n", GPUFLEET_AGENT_ENGINE_PORT: "70000" }, /GPUFLEET_AGENT_ENGINE_PORT/],
    ["engine host with a path", { NODE_NAME: "n", GPUFLEET_AGENT_ENGINE_HOST: "host/x" }, /GPUFLEET_AGENT_ENGINE_HOST/],
    ["negative request rate", { NODE_NAME: "n", GPUFLEET_AGENT_SIM_REQUEST_RATE: "-1" }, /GPUFLEET_AGENT_SIM_REQUEST_RATE/],
  ])("rejects %s", (_n, env, error) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(error);
  });
});
