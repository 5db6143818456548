/** gpufleet gateway process: config from GPUFLEET_GATEWAY_*, load reports from JetStream, clean shutdown on SIGTERM. */
import { connect } from "nats";
import { natsIdentity, NatsRole } from "../../common/src/nats/authorization.js";
import { natsCredentialOptions } from "../../common/src/nats/connect.js";
import { loadGatewayConfig } from "./config.js";
import { loadAdmissionConfig } from "./admission/config.js";
import { startGateway } from "./gateway.js";
import { JetStreamLoadInstanceSource } from "./instances/nats-source.js";
import { createLogger } from "./logger.js";

const config = loadGatewayConfig();
const admission = loadAdmissionConfig();
const logger = createLogger({ level: config.logLevel, name: "gpufleet-gateway" });
const nats = await connect({
  servers: config.natsUrl,
  ...natsCredentialOptions(config.natsTlsDir, natsIdentity(NatsRole.gateway)),
  name: `gpufleet-gateway/${config.identity}`,
  maxReconnectAttempts: -1,
});
const gateway = await startGateway({
  config,
  admission,
  logger,
  source: (metrics) =>
    JetStreamLoadInstanceSource.start(nats, { logger, metrics }, { lookbackMs: config.instanceStaleMs }),
});

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    gateway
      .stop()
      .then(() => nats.drain())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, "unclean shutdown");
          process.exit(1);
        },
      );
  });
}
