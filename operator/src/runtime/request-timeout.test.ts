/** Request timeouts against a real socket: a server that accepts every connection and never answers. */
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FencedKubeConfig } from "./fence.js";
import { BoundedKubeConfig } from "./request-timeout.js";

const held: ServerResponse[] = [];
const server = createServer((_req, res) => void held.push(res)); // accepted, never answered
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
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** "pending" if `promise` has not settled after `ms`, else how it settled. */
async function stateAfter(promise: Promise<unknown>, ms: number): Promise<string> {
  const settled = promise.then(
    () => "resolved",
    (error: Error) => `rejected: ${error.name}`,
  );
  return Promise.race([settled, new Promise<string>((r) => setTimeout(() => r("pending"), ms))]);
}

describe("BoundedKubeConfig", () => {
  it("aborts an unanswered request after the timeout; without one the same request is still waiting", async () => {
    const bounded = new BoundedKubeConfig(source, 200).makeApiClient(CoreV1Api);
    expect(await stateAfter(bounded.listNode(), 5_000)).toMatch(/^rejected: /);
    const unbounded = new BoundedKubeConfig(source, undefined).makeApiClient(CoreV1Api);
    expect(await stateAfter(unbounded.listNode(), 1_000)).toBe("pending");
  });

  it("bounds the fenced clients too, reads and permitted writes alike", async () => {
    const fenced = new FencedKubeConfig(source, () => undefined, 200).makeApiClient(CoreV1Api);
    expect(await stateAfter(fenced.listNode(), 5_000)).toMatch(/^rejected: /);
    const write = fenced.createNamespace({ body: { metadata: { name: "x" } } });
    expect(await stateAfter(write, 5_000)).toMatch(/^rejected: /);
  });

  it("reports every request it sends, with its method, to onRequest (the fenced clients too)", async () => {
    const bounded = new BoundedKubeConfig(source, 200);
    const fenced = new FencedKubeConfig(source, () => undefined, 200);
    const seen: string[] = [];
    bounded.onRequest = (method) => seen.push(`bounded ${method}`);
    fenced.onRequest = (method) => seen.push(`fenced ${method}`);
    await stateAfter(bounded.makeApiClient(CoreV1Api).listNode(), 5_000);
    await stateAfter(bounded.makeApiClient(CoreV1Api).deleteNode({ name: "n" }), 5_000);
    await stateAfter(fenced.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: "x" } } }), 5_000);
    expect(seen).toEqual(["bounded GET", "bounded DELETE", "fenced POST"]);
  });
});
