/** Connection reuse: the agent choice as a pure function, and one connection for many requests to a real server. */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeepAliveAgents } from "./keep-alive.js";
import { BoundedKubeConfig } from "./request-timeout.js";

describe("KeepAliveAgents", () => {
  it("gives one keep-alive agent per TLS identity", () => {
    const pool = new KeepAliveAgents({ closeEvictedAfterMs: 10 });
    const a = pool.reuse(new https.Agent({ ca: "ca-1", cert: "cert-1", key: "key-1" }));
    const b = pool.reuse(new https.Agent({ ca: "ca-1", cert: "cert-1", key: "key-1" }));
    const rotated = pool.reuse(new https.Agent({ ca: "ca-1", cert: "cert-2", key: "key-2" }));
    expect(b).toBe(a);
    expect(rotated).not.toBe(a);
    expect((a as http.Agent & { keepAlive: boolean }).keepAlive).toBe(true);
    expect(a).toBeInstanceOf(https.Agent);
    expect(pool.size).toBe(2);
    pool.destroy();
  });

  it("passes other agents (proxies) through, and keeps only the most recent identities", () => {
    const pool = new KeepAliveAgents({ maxIdentities: 2, closeEvictedAfterMs: 10 });
    class ProxyAgent extends https.Agent {}
    const proxy = new ProxyAgent();
    expect(pool.reuse(proxy)).toBe(proxy);
    const first = pool.reuse(new https.Agent({ cert: "1" }));
    pool.reuse(new https.Agent({ cert: "2" }));
    pool.reuse(new https.Agent({ cert: "3" }));
    expect(pool.size).toBe(2);
    expect(pool.reuse(new https.Agent({ cert: "1" }))).not.toBe(first); // evicted, so a new one
    pool.destroy();
  });
});

describe("BoundedKubeConfig connections", () => {
  const connections: string[] = [];
  const server = http.createServer((req, res) => {
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ kind: "NodeList", apiVersion: "v1", metadata: {}, items: [] }));
  });
  server.on("connection", (socket) => connections.push(`${socket.remotePort}`));
  let source: KubeConfig;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    source = new KubeConfig();
    source.loadFromOptions({
      clusters: [
        { name: "c", server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
      ],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("sends sequential requests over one connection; plain client-node opens one per request", async () => {
    connections.length = 0;
    const plain = source.makeApiClient(CoreV1Api);
    for (let i = 0; i < 3; i++) await plain.listNode();
    expect(connections).toHaveLength(3);

    connections.length = 0;
    const bounded = new BoundedKubeConfig(source, 5_000);
    const api = bounded.makeApiClient(CoreV1Api);
    for (let i = 0; i < 5; i++) await api.listNode();
    expect(connections).toHaveLength(1);
    bounded.keepAlive.destroy();
  });
});
