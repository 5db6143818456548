/**
 * InstanceSource over the agents' load messages: a plain core-NATS subscription to gpufleet.v1.load.* (every
 * replica sees every report; nothing is acknowledged or stored). Membership comes from the reports themselves: each
 * carries the pod's namespace/name and its ServingDeployment (InstanceLoadFields), so the gateway needs no
 * Kubernetes API access. Reports without the serving fields (training workers, or agents from before the field was
 * added) are counted and skipped; malformed ones too, logged once per subject per minute at most.
 */
import type { NatsConnection, Subscription } from "nats";
import { validateInstanceLoadFields } from "../../../common/src/engine-api.js";
import { decodeLoad, Stream, subscriptionFor, type LoadEntry } from "../../../common/src/telemetry/subjects.js";
import type { Logger } from "../logger.js";
import type { GatewayMetrics } from "../metrics.js";
import type { InstanceReport, InstanceSource } from "./source.js";

export function reportFromLoadEntry(entry: LoadEntry): InstanceReport | { invalid: string } | undefined {
  const extra = entry as LoadEntry & Record<string, unknown>;
  if (extra.engineUrl === undefined && extra.role === undefined) return undefined; // not a serving instance
  const fields = validateInstanceLoadFields(extra);
  if (!fields.ok) return { invalid: fields.message };
  const f = fields.value;
  return {
    id: entry.workerId,
    model: f.model,
    role: f.role,
    engineUrl: f.engineUrl,
    servingDeployment: f.servingDeployment,
    podNamespace: entry.podNamespace,
    podName: entry.podName,
    reportedUnixMs: entry.unixMs,
    load: {
      kvBlocksTotal: f.kvBlocksTotal,
      kvBlocksUsed: f.kvBlocksUsed,
      blockSizeTokens: f.blockSizeTokens,
      runningRequests: entry.runningRequests,
      queuedRequests: entry.queueLength,
      headOfLineDemandBlocks: f.headOfLineDemandBlocks ?? 0,
      highPriorityRunning: f.highPriorityRunning ?? 0,
      draining: f.draining ?? false,
      outstandingPromptTokens: f.outstandingPromptTokens ?? 0,
    },
  };
}

export class NatsLoadInstanceSource implements InstanceSource {
  private readonly listeners = new Set<(report: InstanceReport) => void>();
  private readonly subscription: Subscription;
  private readonly loop: Promise<void>;
  private readonly lastWarnMs = new Map<string, number>();

  constructor(connection: NatsConnection, private readonly deps: { logger: Logger; metrics: GatewayMetrics }) {
    this.subscription = connection.subscribe(subscriptionFor(Stream.load));
    this.loop = this.consume();
  }

  private async consume(): Promise<void> {
    for await (const message of this.subscription) {
      let entries: LoadEntry[];
      try {
        entries = decodeLoad(message.subject, message.data).reports;
      } catch (error) {
        this.deps.metrics.loadReportsTotal.inc({ result: "invalid" });
        this.warn(message.subject, { err: error }, "load message ignored");
        continue;
      }
      for (const entry of entries) {
        const report = reportFromLoadEntry(entry);
        if (report === undefined) {
          this.deps.metrics.loadReportsTotal.inc({ result: "not_serving" });
        } else if ("invalid" in report) {
          this.deps.metrics.loadReportsTotal.inc({ result: "invalid" });
          this.warn(message.subject, { workerId: entry.workerId, reason: report.invalid }, "load report ignored");
        } else {
          this.deps.metrics.loadReportsTotal.inc({ result: "accepted" });
          for (const listener of this.listeners) listener(report);
        }
      }
    }
  }

  private warn(subject: string, fields: object, message: string): void {
    const now = Date.now();
    if (now - (this.lastWarnMs.get(subject) ?? 0) < 60_000) return;
    this.lastWarnMs.set(subject, now);
    this.deps.logger.warn({ subject, ...fields }, message);
  }

  subscribe(listener: (report: InstanceReport) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.subscription.unsubscribe();
    await this.loop;
    this.listeners.clear();
  }
}
