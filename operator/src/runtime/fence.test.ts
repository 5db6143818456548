import { HttpMethod, KubeConfig, RequestContext } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { FencedKubeConfig, LeaseLostError } from "./fence.js";

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:6443", skipTLSVerify: true }],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return kc;
}

describe("FencedKubeConfig", () => {
  it("refuses mutating requests while the fence has a reason, naming the method, path and reason", async () => {
    let reason: string | undefined = "lease lost";
    const fenced = new FencedKubeConfig(kubeConfig(), () => reason);
    for (const method of [HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE]) {
      const attempt = fenced.applySecurityAuthentication(
        new RequestContext("https://127.0.0.1:6443/api/v1/namespaces/a/pods?x=1", method),
      );
      await expect(attempt).rejects.toBeInstanceOf(LeaseLostError);
      await expect(attempt).rejects.toThrow(`refused ${method} /api/v1/namespaces/a/pods: lease lost`);
    }
    reason = undefined;
    await expect(
      fenced.applySecurityAuthentication(new RequestContext("https://127.0.0.1:6443/api/v1/pods", HttpMethod.POST)),
    ).resolves.toBeUndefined();
  });

  it("lets reads and watches through whatever the fence says, with the source's credentials", async () => {
    const fenced = new FencedKubeConfig(kubeConfig(), () => "lease lost");
    const context = new RequestContext("https://127.0.0.1:6443/api/v1/pods?watch=true", HttpMethod.GET);
    await fenced.applySecurityAuthentication(context);
    expect(context.getHeaders()["Authorization"]).toBe("Bearer t");
    expect(fenced.getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
  });
});

describe("FencedKubeConfig on a real connection", () => {
  it("refuses a write that passed the first check but was still connecting when the fence closed: nothing reaches the server", async () => {
    const { createServer } = await import("node:http");
    const { CoreV1Api } = await import("@kubernetes/client-node");
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res
        .writeHead(201, { "content-type": "application/json" })
        .end(JSON.stringify({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: "u" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    try {
      // Open at the check before sending, closed by the time the connection is up (a freeze in between).
      let checks = 0;
      const api = new FencedKubeConfig(kc, () => (checks++ === 0 ? undefined : "lease lost")).makeApiClient(CoreV1Api);
      await expect(
        api.createNamespacedConfigMap({ namespace: "a", body: { metadata: { name: "x" } } }),
      ).rejects.toThrow(/refused POST \/api\/v1\/namespaces\/a\/configmaps while connecting: lease lost/);
      expect(checks).toBe(2);
      // Always open: the same write goes through (the server and the hook work).
      const open = new FencedKubeConfig(kc, () => undefined).makeApiClient(CoreV1Api);
      await open.createNamespacedConfigMap({ namespace: "a", body: { metadata: { name: "x" } } });
      expect(seen).toEqual(["POST /api/v1/namespaces/a/configmaps"]);
    } finally {
      server.close();
    }
  });
});
