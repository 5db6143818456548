/** gpufleet operator process: config from the environment, kubeconfig from the default chain, clean shutdown. */
import { KubeConfig } from "@kubernetes/client-node";
import { loadOperatorConfig } from "./config/config.js";
import { startOperator } from "./operator.js";
import { createLogger } from "./runtime/logger.js";

const config = loadOperatorConfig();
const logger = createLogger({ level: config.logLevel, name: "gpufleet-operator" });
const kubeConfig = new KubeConfig();
kubeConfig.loadFromDefault();

const operator = await startOperator({
  config,
  kubeConfig,
  logger,
  // Losing the lease means another replica may already be reconciling: stop at once and let a fresh process
  // campaign again rather than risk two writers.
  onLostLeadership: () => process.exit(1),
});

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    operator.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "unclean shutdown");
        process.exit(1);
      },
    );
  });
}
