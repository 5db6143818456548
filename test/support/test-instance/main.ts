/**
 * TEST INSTANCE process entry (see server.ts): configuration from TEST_INSTANCE_* variables, load reports to NATS
 * every TEST_INSTANCE_REPORT_MS on gpufleet.v1.load.<node>, as an agent publishes them. Logs one JSON line
 * `{"msg":"test instance ready","url":...}` when it serves.
 */
import { connect } from "nats";
import { encodeJson, Schema, Stream, subjectFor, type LoadMessage } from "../../../common/src/telemetry/subjects.js";
import type { InstanceRole } from "../../../common/src/engine-api.js";
import { startTestInstance } from "./server.js";

const env = process.env;
const num = (name: string): number | undefined => (env[name] ? Number(env[name]) : undefined);
const id = env.TEST_INSTANCE_ID ?? `test-${process.pid}`;
const node = env.TEST_INSTANCE_NODE ?? "test-node";
const instance = await startTestInstance({
  id,
  role: (env.TEST_INSTANCE_ROLE ?? "colocated") as InstanceRole,
  model: env.TEST_INSTANCE_MODEL ?? "test-model",
  servingDeployment: env.TEST_INSTANCE_SERVING_DEPLOYMENT ?? "default/test",
  port: num("TEST_INSTANCE_PORT"),
  tokenIntervalMs: num("TEST_INSTANCE_TOKEN_INTERVAL_MS"),
  maxRunning: num("TEST_INSTANCE_MAX_RUNNING"),
  dieAfterTokens: num("TEST_INSTANCE_DIE_AFTER_TOKENS"),
  onDie: () => process.exit(1),
});
const nats = env.TEST_INSTANCE_NATS_URL ? await connect({ servers: env.TEST_INSTANCE_NATS_URL }) : undefined;
const reportMs = num("TEST_INSTANCE_REPORT_MS") ?? 200;
const report = () => {
  if (!nats) return;
  const now = Date.now();
  const message: LoadMessage = { schema: Schema.load, node, sentUnixMs: now, reports: [instance.loadEntry(now)] };
  nats.publish(subjectFor(Stream.load, node), encodeJson(message));
};
report();
const timer = setInterval(report, reportMs);
console.log(JSON.stringify({ msg: "test instance ready", url: instance.url, id }));
process.on("SIGTERM", () => {
  clearInterval(timer);
  void instance
    .close()
    .then(() => nats?.drain())
    .finally(() => process.exit(0));
});
