/**
 * The operator's telemetry (TelemetryService: durable consumers -> read model) on a thread of its own, for the
 * telemetry benchmark's end-to-end figure: in a deployment the operator is another process from the agents, so it
 * must not share the agent's event loop here either. Posts the read model's counters every 20 ms; "stop" closes.
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { KubeConfig } from "@kubernetes/client-node";
import { OperatorMetrics } from "../../operator/src/metrics.js";
import { systemClock } from "../../operator/src/runtime/clock.js";
import { silentLogger } from "../../operator/src/runtime/logger.js";
import { TelemetryService } from "../../operator/src/telemetry/service.js";

export interface OperatorThreadData {
  natsUrl: string;
  durablePrefix: string;
}

async function main(data: OperatorThreadData): Promise<void> {
  // No Kubernetes here: collectives need none (checkpoint reports, which write status, are not sent).
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "none", server: "https://127.0.0.1:1" }],
    users: [{ name: "none" }],
    contexts: [{ name: "none", cluster: "none", user: "none" }],
    currentContext: "none",
  });
  const telemetry = new TelemetryService({
    natsUrl: data.natsUrl,
    durablePrefix: data.durablePrefix,
    kubeConfig,
    cachedPod: () => undefined,
    metrics: new OperatorMetrics({ defaultMetrics: false }),
    clock: systemClock,
    logger: silentLogger,
  });
  await telemetry.startLeading();
  telemetry.connect();
  // Consumer info (five JetStream API requests) only until the consumers run: at 50 polls/s it would otherwise be
  // the bench's own load on the operator thread and on nats-server. Counters are read from memory.
  let consuming = false;
  const timer = setInterval(() => {
    if (consuming) {
      parentPort!.postMessage({ counters: telemetry.views.counters(), consuming });
      return;
    }
    void telemetry.lag().then((lag) => {
      consuming = Object.keys(lag).length > 0;
      parentPort!.postMessage({ counters: telemetry.views.counters(), consuming });
    });
  }, 20);
  parentPort!.on("message", (message: unknown) => {
    if (message !== "stop") return;
    clearInterval(timer);
    void telemetry.close().then(() => parentPort!.postMessage({ closed: true }));
  });
}

if (!isMainThread && parentPort) void main(workerData as OperatorThreadData);
