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
      const attempt = fenced.applySecurityAuthentication(new RequestContext("https://127.0.0.1:6443/api/v1/namespaces/a/pods?x=1", method));
      await expect(attempt).rejects.toBeInstanceOf(LeaseLostError);
      await expect(attempt).rejects.toThrow(`refused ${method} /api/v1/namespaces/a/pods: lease lost`);
    }
    reason = undefined;
    await expect(fenced.applySecurityAuthentication(new RequestContext("https://127.0.0.1:6443/api/v1/pods", HttpMethod.POST))).resolves.toBeUndefined();
  });

  it("lets reads and watches through whatever the fence says, with the source's credentials", async () => {
    const fenced = new FencedKubeConfig(kubeConfig(), () => "lease lost");
    const context = new RequestContext("https://127.0.0.1:6443/api/v1/pods?watch=true", HttpMethod.GET);
    await fenced.applySecurityAuthentication(context);
    expect(context.getHeaders()["Authorization"]).toBe("Bearer t");
    expect(fenced.getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
  });
});
