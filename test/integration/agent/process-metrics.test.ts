/**
 * What Prometheus scrapes from a running agent: every series is named gpufleet_agent_<noun>_<unit>, the Node.js
 * process metrics included (prom-client's own names carry process_ / nodejs_ already; the prefix must not repeat it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePorts } from "../../harness/cluster.js";
import { getTestCluster } from "../../harness/context.js";
import { waitFor } from "../../harness/wait.js";
import { startSimulatedAgent, type ComponentProcess } from "../../support/operator.js";

describe("the agent's /metrics", () => {
  let agent: ComponentProcess | undefined;
  let text = "";

  beforeAll(async () => {
    const [httpPort] = (await freePorts(1)) as [number];
    ({ agent } = await startSimulatedAgent({
      kubeconfigPath: getTestCluster().kubeconfigPath,
      natsUrl: getTestCluster().natsUrl,
      name: "agent-metrics",
      env: { GPUFLEET_AGENT_HTTP_PORT: String(httpPort) },
    }));
    text = await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`).catch(() => undefined);
        return res?.status === 200 ? res.text() : undefined;
      },
      { description: "agent /metrics answers", timeoutMs: 30_000 },
    );
  });
  afterAll(async () => {
    await agent?.stop();
  });

  const names = () => [...new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!))];

  it("names every series gpufleet_agent_*, with no doubled process_ prefix", () => {
    expect(names().length).toBeGreaterThan(10);
    expect(names().filter((n) => !n.startsWith("gpufleet_agent_"))).toEqual([]);
    expect(names().filter((n) => /(process_){2}|process_nodejs_/.test(n))).toEqual([]);
  });

  it("serves the Node.js process metrics under their prom-client names", () => {
    for (const name of [
      "gpufleet_agent_process_cpu_seconds_total",
      "gpufleet_agent_process_resident_memory_bytes",
      "gpufleet_agent_nodejs_eventloop_lag_p99_seconds",
      "gpufleet_agent_nodejs_heap_size_used_bytes",
    ]) {
      expect(names(), name).toContain(name);
    }
  });
});
