import { describe, expect, it } from "vitest";
import { agentNatsIdentity, ConfigError, loadConfig, natsConnectionOptions, requireOperatorTls } from "./config.js";

describe("loadConfig", () => {
  it("has defaults for a real node", () => {
    expect(loadConfig({ NODE_NAME: "n1" })).toMatchObject({
      nodeName: "n1",
      simulate: false,
      natsUrl: "",
      workerSocketPath: "/run/gpufleet/agent.sock",
      sysfsRoot: "/sys",
      heartbeatIntervalMs: 2000,
      missedHeartbeatsLimit: 3,
      leaf: undefined,
    });
  });

  it("simulation needs no node name", () => {
    expect(loadConfig({ GPUFLEET_AGENT_SIMULATE: "true", GPUFLEET_AGENT_HTTP_PORT: "0" })).toMatchObject({
      simulate: true,
      httpPort: 0,
    });
  });

  it("serves the simulated engine API on one port, with no synthetic load by default", () => {
    expect(loadConfig({ GPUFLEET_AGENT_SIMULATE: "true" })).toMatchObject({
      enginePort: 8100,
      engineBindHost: "0.0.0.0",
      engineAdvertisedHost: "127.0.0.1",
      simRequestRatePerSec: 0,
    });
    expect(
      loadConfig({
        GPUFLEET_AGENT_SIMULATE: "true",
        GPUFLEET_AGENT_ENGINE_PORT: "0",
        GPUFLEET_AGENT_ENGINE_HOST: "agent.gpufleet-system.svc",
        GPUFLEET_AGENT_SIM_REQUEST_RATE: "2.5",
      }),
    ).toMatchObject({ enginePort: 0, engineAdvertisedHost: "agent.gpufleet-system.svc", simRequestRatePerSec: 2.5 });
  });

  it.each([
    ["missing node name", {}, /NODE_NAME/],
    ["bad boolean", { GPUFLEET_AGENT_SIMULATE: "yes" }, /GPUFLEET_AGENT_SIMULATE/],
    ["bad interval", { NODE_NAME: "n", GPUFLEET_AGENT_HEARTBEAT_INTERVAL_MS: "fast" }, /HEARTBEAT_INTERVAL_MS/],
    ["bad NATS URL", { NODE_NAME: "n", GPUFLEET_NATS_URL: "http://x" }, /nats:\/\/ or tls:\/\//],
    ["NATS URL without a host", { NODE_NAME: "n", GPUFLEET_NATS_URL: "tls://" }, /nats:\/\/ or tls:\/\//],
    ["engine port out of range", { NODE_NAME: "n", GPUFLEET_AGENT_ENGINE_PORT: "70000" }, /GPUFLEET_AGENT_ENGINE_PORT/],
    ["engine host with a path", { NODE_NAME: "n", GPUFLEET_AGENT_ENGINE_HOST: "host/x" }, /GPUFLEET_AGENT_ENGINE_HOST/],
    [
      "negative request rate",
      { NODE_NAME: "n", GPUFLEET_AGENT_SIM_REQUEST_RATE: "-1" },
      /GPUFLEET_AGENT_SIM_REQUEST_RATE/,
    ],
  ])("rejects %s", (_n, env, error) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(error);
  });

  // The chart's values schema accepts exactly these (empty: no NATS, telemetry off); the chart omits the variable
  // when natsUrl is empty, so unset means the same as empty.
  it.each([
    ["unset", undefined, "", undefined],
    ["empty", "", "", undefined],
    ["nats://", "nats://nats.gpufleet-system:4222", "nats://nats.gpufleet-system:4222", undefined],
    ["tls://", "tls://nats.example.com:4222", "tls://nats.example.com:4222", {}],
  ])("NATS URL %s", (_n, url, natsUrl, tls) => {
    const config = loadConfig({ NODE_NAME: "n", ...(url === undefined ? {} : { GPUFLEET_NATS_URL: url }) });
    expect(config.natsUrl).toBe(natsUrl);
    expect(natsConnectionOptions(config.natsUrl)).toEqual(natsUrl === "" ? undefined : { servers: natsUrl, tls });
  });
});

describe("requireOperatorTls", () => {
  it.each([
    { name: "a certificate folder", env: { GPUFLEET_AGENT_TLS_DIR: "/etc/gpufleet/tls" }, error: undefined },
    { name: "the development flag", env: { GPUFLEET_AGENT_INSECURE: "true" }, error: undefined },
    { name: "neither", env: {}, error: /GPUFLEET_AGENT_TLS_DIR is required.*GPUFLEET_AGENT_INSECURE=true/ },
    { name: "both", env: { GPUFLEET_AGENT_TLS_DIR: "/x", GPUFLEET_AGENT_INSECURE: "true" }, error: /contradict/ },
  ])("with $name", ({ env, error }) => {
    const config = loadConfig({ NODE_NAME: "n1", ...env });
    if (error) expect(() => requireOperatorTls(config)).toThrow(error);
    else expect(() => requireOperatorTls(config)).not.toThrow();
  });

  it("rejects a development flag that is not a boolean", () => {
    expect(() => loadConfig({ NODE_NAME: "n1", GPUFLEET_AGENT_INSECURE: "yes" })).toThrow(/GPUFLEET_AGENT_INSECURE/);
  });
});

describe("agentNatsIdentity", () => {
  it("names the agent's node, or the simulation agent; the certificate folder is off by default", () => {
    const real = loadConfig({ NODE_NAME: "gpu-a1", GPUFLEET_AGENT_NATS_TLS_DIR: "/etc/gpufleet/nats-tls" });
    expect(real.natsTlsDir).toBe("/etc/gpufleet/nats-tls");
    expect(agentNatsIdentity(real).user).toBe("CN=gpufleet-agent:gpu-a1,O=gpufleet");
    const sim = loadConfig({ GPUFLEET_AGENT_SIMULATE: "true" });
    expect(sim.natsTlsDir).toBe("");
    expect(agentNatsIdentity(sim).role).toBe("simulation-agent");
  });
});
