/**
 * Records Kubernetes Events (core/v1) about our resources, so `kubectl describe` tells the story. Repeats of the
 * same (object, type, reason, message) within `aggregateWindowMs` bump one Event's count instead of piling up new
 * ones, as kubelet and client-go's recorder do. Recording never fails a reconcile: Events are best-effort.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubernetesObject,
} from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { systemClock, type Clock } from "./clock.js";
import type { Logger } from "./logger.js";
import type { OperatorMetrics } from "../metrics.js";

export type EventType = "Normal" | "Warning";

export interface EventSink {
  record(object: KubernetesObject, type: EventType, reason: string, message: string): Promise<void>;
}

export class EventRecorder implements EventSink {
  private readonly core: CoreV1Api;
  private readonly recent = new Map<string, { name: string; count: number; lastMs: number }>();

  constructor(
    kubeConfig: KubeConfig,
    private readonly component: string,
    private readonly logger: Logger,
    private readonly metrics: OperatorMetrics,
    private readonly clock: Clock = systemClock,
    private readonly aggregateWindowMs = 10 * 60_000,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async record(object: KubernetesObject, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = object.metadata?.namespace ?? "default";
    const dedupeKey = `${object.metadata?.uid}|${type}|${reason}|${message}`;
    const nowMs = this.clock.now();
    const now = new Date(nowMs);
    this.metrics.eventsTotal.inc({ type, reason });
    try {
      const seen = this.recent.get(dedupeKey);
      if (seen && nowMs - seen.lastMs < this.aggregateWindowMs) {
        seen.count += 1;
        seen.lastMs = nowMs;
        await this.core.patchNamespacedEvent(
          { name: seen.name, namespace, body: { count: seen.count, lastTimestamp: now } },
          setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
        );
        return;
      }
      const name = `${object.metadata?.name ?? "object"}.${randomBytes(8).toString("hex")}`;
      const event: CoreV1Event = {
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: object.metadata?.name,
          namespace,
          uid: object.metadata?.uid,
          resourceVersion: object.metadata?.resourceVersion,
        },
        type,
        reason,
        message,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: this.component,
      };
      await this.core.createNamespacedEvent({ namespace, body: event });
      this.recent.set(dedupeKey, { name, count: 1, lastMs: nowMs });
      this.prune(nowMs);
    } catch (error) {
      this.logger.warn(
        { err: error, reason, object: `${namespace}/${object.metadata?.name}` },
        "could not record event",
      );
    }
  }

  private prune(nowMs: number): void {
    if (this.recent.size < 1000) return;
    for (const [key, entry] of this.recent) if (nowMs - entry.lastMs >= this.aggregateWindowMs) this.recent.delete(key);
  }
}
