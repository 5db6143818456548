/**
 * The gateway's HTTP server: the OpenAI routes, /v1/models, /healthz, /readyz and /metrics on one port, and a
 * graceful stop (refuse new requests, let in-flight streams finish within the grace period, then end them with a
 * shutting_down error event).
 */
import { setMaxListeners } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { EngineHeader } from "../../common/src/engine-api.js";
import { ErrorCode, GatewayError, toGatewayError } from "./openai/errors.js";
import { handleCompletion, modelsResponse, requestIdOf, sendError, type RouteDeps } from "./openai/routes.js";
import { Endpoint } from "./openai/validation.js";
import type { Admission } from "./admission/admission.js";

export interface GatewayServer {
  readonly port: number;
  /** Stops accepting, waits up to graceMs for in-flight requests, then cancels the rest. */
  stop(graceMs: number): Promise<void>;
}

export async function startGatewayServer(
  deps: RouteDeps,
  listen: { port: number; host: string },
  admission?: Admission,
): Promise<GatewayServer> {
  const shutdown = new AbortController();
  // Every in-flight request listens for the shutdown (and removes its listener when it ends).
  setMaxListeners(0, shutdown.signal);
  const inFlight = new Set<Promise<void>>();
  let stopping = false;

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://gateway");
    const path = url.pathname;
    if (req.method === "GET" && path === "/healthz")
      return void res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    if (req.method === "GET" && path === "/readyz") {
      if (stopping) return void res.writeHead(503, { "content-type": "text/plain" }).end("shutting down");
      return void res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    }
    if (req.method === "GET" && path === "/metrics") {
      const text = await deps.metrics.registry.metrics();
      return void res.writeHead(200, { "content-type": deps.metrics.registry.contentType }).end(text);
    }
    const requestId = requestIdOf(req);
    res.setHeader(EngineHeader.requestId, requestId);
    const denied = admission?.authorize(req);
    if (denied) return sendError(res, denied);
    if (path === "/v1/models" && req.method === "GET") {
      deps.metrics.requestsTotal.inc({ model: "", endpoint: "models", code: "200" });
      return void res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify(modelsResponse(deps.view, deps.now())));
    }
    const endpoint =
      path === "/v1/completions" ? Endpoint.completions : path === "/v1/chat/completions" ? Endpoint.chat : undefined;
    if (!endpoint) return sendError(res, new GatewayError(404, ErrorCode.notFound, `no route ${req.method} ${path}`));
    if (req.method !== "POST") {
      res.setHeader("allow", "POST");
      return sendError(res, new GatewayError(405, ErrorCode.methodNotAllowed, `${path} takes POST`));
    }
    if (stopping)
      return sendError(
        res,
        new GatewayError(503, ErrorCode.shuttingDown, "the gateway is shutting down", { retryAfterS: 1 }),
      );
    const slot = admission ? await admission.enter(res) : () => {};
    if (slot instanceof GatewayError) return sendError(res, slot);
    try {
      await handleCompletion(deps, endpoint, req, res, requestId, shutdown.signal);
    } finally {
      slot();
    }
  };

  const server: Server = createServer((req, res) => {
    const task = route(req, res).catch((error: unknown) => {
      deps.logger.error({ err: error }, "unhandled request error");
      sendError(res, toGatewayError(error));
      if (!res.writableEnded) res.end();
    });
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  });
  // Streams may idle between tokens longer than Node's default request timeouts allow.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 65_000;
  admission?.applyServerLimits(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : listen.port;

  return {
    port,
    async stop(graceMs: number) {
      stopping = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
      await Promise.race([Promise.allSettled([...inFlight]), graceOver]);
      clearTimeout(timer);
      shutdown.abort();
      await Promise.allSettled([...inFlight]);
      server.closeAllConnections();
      await closed;
    },
  };
}
