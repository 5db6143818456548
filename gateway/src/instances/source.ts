/**
 * Where the gateway learns its instances: a small interface, so the JetStream consumer used now
 * (nats-source.ts) could become the telemetry read model without touching dispatch.
 */
import type { InstanceRole } from "../../../common/src/engine-api.js";
import type { EngineKind } from "../../../crds/src/serving-deployment.js";
import type { InstanceLoad } from "../../../common/src/scheduler/freeness.js";

/** One serving instance as its latest load report describes it. */
export interface InstanceReport {
  /** The worker's id (unique across the fleet). */
  id: string;
  model: string;
  role: InstanceRole;
  /** What serves it: which P/D hand-off the gateway speaks to it (common/src/engine-pd.ts). */
  engine: EngineKind;
  engineUrl: string;
  /** SGLang prefill instances: their KV bootstrap server's port (absent otherwise). */
  disaggregationBootstrapPort?: number;
  /** `namespace/name` of the ServingDeployment. */
  servingDeployment: string;
  podNamespace: string;
  podName: string;
  load: InstanceLoad;
  /** When the instance generated the report (its clock). */
  reportedUnixMs: number;
}

/** `ageMs`: how long ago the report reached the transport (0 when it arrives live; more for a replayed one). */
export type InstanceListener = (report: InstanceReport, ageMs: number) => void;

export interface InstanceSource {
  /** Calls `listener` with every report as it arrives; returns an unsubscribe function. */
  subscribe(listener: InstanceListener): () => void;
  /** Calls `listener` when the source loses its transport (NATS disconnected), where the source can tell. */
  onDisconnect?(listener: () => void): void;
  close(): Promise<void>;
}

/** Reports pushed by hand: the benchmark's fixed instances and pure tests of the view. */
export class StaticInstanceSource implements InstanceSource {
  private readonly listeners = new Set<InstanceListener>();

  publish(report: InstanceReport): void {
    for (const listener of this.listeners) listener(report, 0);
  }

  subscribe(listener: InstanceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
