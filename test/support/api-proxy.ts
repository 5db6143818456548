/**
 * A loopback HTTP proxy in front of the real kube-apiserver, for faults a real cluster shows only by bad luck: a
 * rule per request decides whether it is forwarded, answered with an error (a failed list), or stalled (a hung
 * call: accepted, never answered, until the client gives up). Clients use `kubeConfig` (plain HTTP to the proxy);
 * the proxy speaks TLS with the cluster's own credentials. Every request is recorded, with whether the client
 * aborted it, so a test can prove that a call was bounded and that nothing was written after a deadline.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { request as httpsRequest, type RequestOptions } from "node:https";
import { performance } from "node:perf_hooks";
import { KubeConfig } from "@kubernetes/client-node";

export type ProxyVerdict = "forward" | "stall" | { status: number; body?: string };
export type ProxyRule = (request: { method: string; url: string }) => ProxyVerdict;

export interface ProxiedRequest {
  method: string;
  url: string;
  /** performance.now() when the request arrived. */
  atMs: number;
  verdict: "forward" | "stall" | "answered";
  /** The client closed the request before an answer (for a stalled one: it timed out and aborted). */
  abortedAtMs?: number;
  /** The upstream's HTTP status, once it answered a forwarded request. */
  status?: number;
}

export interface ApiProxy {
  kubeConfig: KubeConfig;
  requests: ProxiedRequest[];
  setRule(rule: ProxyRule): void;
  close(): Promise<void>;
}

export async function startApiProxy(target: KubeConfig): Promise<ApiProxy> {
  const upstream = new URL(target.getCurrentCluster()!.server);
  const tls: RequestOptions = {};
  await target.applyToHTTPSOptions(tls);
  let rule: ProxyRule = () => "forward";
  const requests: ProxiedRequest[] = [];
  const stalled = new Set<ServerResponse>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? "GET";
    const url = req.url ?? "/";
    const verdict = rule({ method, url });
    const record: ProxiedRequest = {
      method,
      url,
      atMs: performance.now(),
      verdict: typeof verdict === "string" ? verdict : "answered",
    };
    requests.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.abortedAtMs ??= performance.now();
    });
    if (verdict === "stall") {
      stalled.add(res);
      req.resume();
      res.on("close", () => stalled.delete(res));
      return;
    }
    if (typeof verdict === "object") {
      req.resume();
      res.writeHead(verdict.status, { "content-type": "application/json" });
      res.end(
        verdict.body ??
          JSON.stringify({
            kind: "Status",
            apiVersion: "v1",
            status: "Failure",
            message: "injected by test proxy",
            code: verdict.status,
          }),
      );
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    const out = httpsRequest(
      { ...tls, hostname: upstream.hostname, port: upstream.port, path: url, method, headers },
      (upstreamRes) => {
        record.status = upstreamRes.statusCode;
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        res.flushHeaders(); // a watch answers headers first and events much later: the client waits for the headers
        upstreamRes.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    res.on("close", () => out.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromClusterAndUser(
    { name: "proxy", server: `http://127.0.0.1:${port}`, skipTLSVerify: true },
    { name: "proxy" },
  );
  return {
    kubeConfig,
    requests,
    setRule: (r) => (rule = r),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
