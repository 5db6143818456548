import type { CoreV1Api } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { natsServerTlsFiles } from "../../../common/src/nats/authorization.js";
import { OperatorMetrics } from "../metrics.js";
import { systemClock } from "../runtime/clock.js";
import { createLogger } from "../runtime/logger.js";
import { authorizableNodes, NatsAuthorizationPublisher } from "./nats-authorization.js";

describe("authorizableNodes", () => {
  it("keeps each valid node name once, sorted, and reports the rest", () => {
    expect(authorizableNodes(["node-b", "node-a", "node-b", "Bad_Name"])).toEqual({
      nodes: ["node-a", "node-b"],
      refused: ["Bad_Name"],
    });
  });
});

describe("NatsAuthorizationPublisher", () => {
  it("keeps the last version, writing nothing, when the user list would not fit a ConfigMap", async () => {
    const calls: string[] = [];
    const core = new Proxy({}, { get: (_, name) => () => calls.push(String(name)) }) as unknown as CoreV1Api;
    const metrics = new OperatorMetrics({ defaultMetrics: false });
    const publisher = new NatsAuthorizationPublisher({
      core,
      clock: systemClock,
      logger: createLogger({ level: "silent" }),
      metrics,
      settings: { namespace: "ns", configMapName: "cm", tls: natsServerTlsFiles(), debounceMs: 0 },
      nodeNames: () => Array.from({ length: 4000 }, (_, i) => `gpu-node-${i}.rack-${i % 40}.cluster.example.com`),
    });
    expect(await publisher.reconcile()).toBe("too_large");
    expect(calls).toEqual([]);
    expect((await metrics.natsAuthorizationWrites.get()).values).toContainEqual(
      expect.objectContaining({ labels: { outcome: "too_large" }, value: 1 }),
    );
  });
});
