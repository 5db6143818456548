/** Wires a gateway from its parts: instance source → view → dispatch executor → HTTP server. */
import type { GatewayConfig } from "./config.js";
import { Admission } from "./admission/admission.js";
import { DEFAULT_ADMISSION_CONFIG, type AdmissionConfig } from "./admission/config.js";
import { DispatchExecutor } from "./dispatch/executor.js";
import type { InstanceSource } from "./instances/source.js";
import { InstanceView } from "./instances/view.js";
import type { Logger } from "./logger.js";
import { GatewayMetrics } from "./metrics.js";
import { startGatewayServer } from "./server.js";

export interface GatewayHandle {
  readonly port: number;
  readonly view: InstanceView;
  readonly metrics: GatewayMetrics;
  stop(): Promise<void>;
}

export async function startGateway(opts: {
  config: GatewayConfig;
  admission?: AdmissionConfig;
  logger: Logger;
  source: (metrics: GatewayMetrics) => InstanceSource | Promise<InstanceSource>;
  now?: () => number;
}): Promise<GatewayHandle> {
  const { config, logger } = opts;
  const now = opts.now ?? Date.now;
  const view = new InstanceView(config);
  const metrics = new GatewayMetrics({
    instances: () =>
      view.routes(now()).flatMap((r) =>
        Object.entries(r.instances)
          .filter(([, n]) => n > 0)
          .map(([role, count]) => ({ model: r.model, role, count })),
      ),
    viewHeldMs: () => view.heldForMs(now()),
  });
  const source = await opts.source(metrics);
  const unsubscribe = source.subscribe((report, ageMs) => {
    const deliveredAtMs = now();
    view.apply(report, deliveredAtMs - ageMs, deliveredAtMs);
  });
  source.onDisconnect?.(() => {
    metrics.loadSourceDisconnectsTotal.inc();
    view.sourceDown(now());
  });
  const executor = new DispatchExecutor({
    view,
    metrics,
    now,
    config: {
      dispatchPolicy: config.dispatchPolicy,
      freeness: { highPriorityHeadroomFraction: config.highPriorityHeadroomFraction },
      maxAttempts: config.maxAttempts,
      maxQueuedPerInstance: config.maxQueuedPerInstance,
      retryAfterS: config.retryAfterS,
      timeouts: {
        headersMs: config.upstreamHeadersTimeoutMs,
        idleMs: config.upstreamIdleTimeoutMs,
        totalMs: config.upstreamTotalTimeoutMs,
      },
    },
  });
  const admission = new Admission(opts.admission ?? DEFAULT_ADMISSION_CONFIG, metrics, logger);
  const server = await startGatewayServer(
    {
      view,
      executor,
      metrics,
      logger,
      now,
      limits: {
        maxBodyBytes: config.maxBodyBytes,
        maxTokensLimit: config.maxTokensLimit,
        defaultMaxTokens: config.defaultMaxTokens,
      },
    },
    { port: config.port, host: config.host },
    admission,
  );
  logger.info({ port: server.port, policy: config.dispatchPolicy, identity: config.identity }, "gateway listening");
  return {
    port: server.port,
    view,
    metrics,
    async stop() {
      await server.stop(config.shutdownGraceMs);
      admission.close();
      unsubscribe();
      await source.close();
    },
  };
}
