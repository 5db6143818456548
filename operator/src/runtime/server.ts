/** The operator's HTTP endpoints: liveness, readiness and Prometheus metrics. */
import express from "express";
import type { Server } from "node:http";
import type { Registry } from "prom-client";

export interface HealthServerOptions {
  port: number;
  host?: string;
  registry: Registry;
  /** Readiness check; returns undefined when ready, else why not. */
  notReadyReason: () => string | undefined;
}

export async function startHealthServer(
  options: HealthServerOptions,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const app = express();
  app.get("/healthz", (_req, res) => {
    res.type("text/plain").send("ok");
  });
  app.get("/readyz", (_req, res) => {
    const reason = options.notReadyReason();
    if (reason) res.status(503).type("text/plain").send(reason);
    else res.type("text/plain").send("ok");
  });
  app.get("/metrics", async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host ?? "0.0.0.0", (error?: Error) =>
      error ? reject(error) : resolve(s),
    );
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return { server, port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
