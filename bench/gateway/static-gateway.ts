/**
 * Bench helper process: the gateway with a StaticInstanceSource instead of NATS (the bench is loopback-only and
 * starts no nats-server). BENCH_INSTANCES holds the instance reports as JSON; they are re-published every 500 ms
 * with a fresh timestamp so they never go stale. Prints `{"msg":"gateway listening","port":N}` when it serves.
 */
import { loadGatewayConfig } from "../../gateway/src/config.js";
import { startGateway } from "../../gateway/src/gateway.js";
import { StaticInstanceSource, type InstanceReport } from "../../gateway/src/instances/source.js";
import { createLogger } from "../../gateway/src/logger.js";

const reports = JSON.parse(process.env.BENCH_INSTANCES ?? "[]") as InstanceReport[];
const config = loadGatewayConfig({ ...process.env, GPUFLEET_GATEWAY_NATS_URL: "unused://static" });
const source = new StaticInstanceSource();
const gateway = await startGateway({ config, logger: createLogger({ level: config.logLevel, name: "gpufleet-gateway-bench" }), source: () => source });
const publish = () => {
  for (const r of reports) source.publish({ ...r, reportedUnixMs: Date.now() });
};
publish();
setInterval(publish, 500);
console.log(JSON.stringify({ msg: "gateway listening", port: gateway.port }));
process.on("SIGTERM", () => void gateway.stop().finally(() => process.exit(0)));
