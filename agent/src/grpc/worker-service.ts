/** WorkerAgent service: what workers on this node call over the node-local socket. */
import type * as grpc from "@grpc/grpc-js";
import type { WorkerAgentHandlers } from "./generated/gpufleet/worker/v1/WorkerAgent.js";
import type { AgentMetrics } from "../metrics.js";
import { validateRecord } from "../telemetry/collectives.js";
import type { TelemetryIngest } from "../telemetry/ingest.js";
import type { SupervisionEvent, WorkerRegistry } from "../workers/registry.js";
import {
  InvalidArgumentError,
  ResourceExhaustedError,
  UnavailableError,
  statusName,
  statusOf,
  unary,
} from "./status.js";

export interface WorkerServiceDeps {
  registry: WorkerRegistry;
  ingest: TelemetryIngest;
  metrics: AgentMetrics;
  onEvent: (event: SupervisionEvent) => void;
  nowMs: () => number;
}

/** A checkpoint report names a step, when it became durable, and where it is (what a resumed job would read). */
export function validateCheckpoint(req: { step: number; unixMs: number; path: string }): {
  step: number;
  unixMs: number;
  path: string;
} {
  if (!Number.isSafeInteger(req.step) || req.step < 0)
    throw new InvalidArgumentError(`step must be a non-negative integer, got ${req.step}`);
  if (!Number.isSafeInteger(req.unixMs) || req.unixMs <= 0)
    throw new InvalidArgumentError(
      `unix_ms must be a positive integer (when the checkpoint became durable), got ${req.unixMs}`,
    );
  if (req.path.trim() === "") throw new InvalidArgumentError("path must name where the checkpoint was written");
  return { step: req.step, unixMs: req.unixMs, path: req.path };
}

export function workerAgentHandlers(deps: WorkerServiceDeps): WorkerAgentHandlers {
  const { registry, ingest, metrics } = deps;
  const done = (method: string) => (code: grpc.status) =>
    metrics.grpcRequests.inc({ service: "WorkerAgent", method, code: statusName(code) });
  return {
    Register: unary((req) => {
      const event = registry.register(req, deps.nowMs());
      deps.onEvent(event);
      return {
        heartbeatIntervalMs: registry.options.heartbeatIntervalMs,
        missedHeartbeatsLimit: registry.options.missedHeartbeatsLimit,
      };
    }, done("Register")),

    Heartbeat: unary((req) => {
      const now = deps.nowMs();
      const event = registry.heartbeat(req.workerId, now);
      if (event) deps.onEvent(event);
      return { receivedUnixMs: now };
    }, done("Heartbeat")),

    ReportLoad: unary((req) => {
      const worker = registry.get(req.workerId);
      if (!(req.kvCacheUsedFraction >= 0 && req.kvCacheUsedFraction <= 1)) {
        throw new InvalidArgumentError(`kv_cache_used_fraction must be within [0, 1], got ${req.kvCacheUsedFraction}`);
      }
      for (const [field, value] of [
        ["ttft_ms", req.ttftMs],
        ["tpot_ms", req.tpotMs],
        ["tokens_per_second", req.tokensPerSecond],
      ] as const) {
        if (!(value >= 0) || !Number.isFinite(value))
          throw new InvalidArgumentError(`${field} must be a finite non-negative number, got ${value}`);
      }
      // proto3 sends "" for unset strings: a report without an engine endpoint carries no engineUrl at all, so
      // consumers (the gateway) can tell "no endpoint" from a malformed one.
      // Likewise `migrating`: "" (no migration) is left out, "in" / "out" pass through with the candidates.
      // `engine` and `disaggregationBootstrapPort` likewise ("" and 0: the reference instance API, no bootstrap).
      const {
        workerId: _id,
        engineUrl,
        servingDeployment,
        migrating,
        engine,
        disaggregationBootstrapPort,
        ...report
      } = req;
      if (migrating !== "" && migrating !== "in" && migrating !== "out")
        throw new InvalidArgumentError(`migrating must be "in", "out" or empty, got "${migrating}"`);
      return {
        accepted: ingest.load(worker, {
          ...report,
          ...(engineUrl ? { engineUrl } : {}),
          ...(servingDeployment ? { servingDeployment } : {}),
          ...(migrating ? { migrating } : {}),
          ...(engine ? { engine } : {}),
          ...(disaggregationBootstrapPort ? { disaggregationBootstrapPort } : {}),
        }),
      };
    }, done("ReportLoad")),

    ReportCollectives: unary((req) => {
      const worker = registry.get(req.workerId);
      let records;
      try {
        records = req.records.map(validateRecord);
      } catch (err) {
        metrics.rejectedRecords.inc({ reason: "invalid" }, req.records.length);
        throw err;
      }
      return {
        accepted: ingest.collectives(worker.nodeName, records, {
          podNamespace: worker.podNamespace,
          podName: worker.podName,
        }),
      };
    }, done("ReportCollectives")),

    AckCommand: unary((req) => {
      registry.get(req.workerId);
      return { accepted: registry.acknowledge(req, deps.nowMs()) };
    }, done("AckCommand")),

    ReportCheckpoint: unary((req) => {
      const worker = registry.get(req.workerId);
      const report = validateCheckpoint(req);
      if (!ingest.telemetryEnabled)
        throw new UnavailableError(
          "checkpoint report not sent: this agent runs with telemetry off (no NATS URL), so it cannot reach the operator",
        );
      if (ingest.checkpoint(worker, report) === 0) {
        throw new ResourceExhaustedError(
          "checkpoint report not queued: the agent's telemetry buffer is full (NATS unreachable); retry later",
        );
      }
      return { accepted: 1 };
    }, done("ReportCheckpoint")),

    Commands: (call) => {
      let detach: (() => void) | undefined;
      try {
        detach = registry.attachCommands(call.request.workerId, (command) => call.write(command));
      } catch (err) {
        const status = statusOf(err);
        done("Commands")(status.code);
        call.emit("error", status);
        return;
      }
      done("Commands")(0);
      call.on("cancelled", () => detach?.());
      call.on("close", () => detach?.());
    },
  };
}
