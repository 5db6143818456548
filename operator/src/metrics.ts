/** Every metric the operator exports, in one place. Names: gpufleet_operator_<noun>_<unit>. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class OperatorMetrics {
  readonly registry = new Registry();

  /** Reconciles by controller and result (success | error | conflict). */
  readonly reconcileTotal = new Counter({
    name: "gpufleet_operator_reconcile_total",
    help: "Reconciles by controller and result (success, error, conflict).",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });

  readonly reconcileErrorsTotal = new Counter({
    name: "gpufleet_operator_reconcile_errors_total",
    help: "Reconciles that threw and were retried with backoff, by controller.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });

  readonly reconcileDurationSeconds = new Histogram({
    name: "gpufleet_operator_reconcile_duration_seconds",
    help: "Reconcile wall time by controller.",
    labelNames: ["controller"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly workqueueDepth = new Gauge({
    name: "gpufleet_operator_workqueue_depth",
    help: "Keys waiting in a controller's work queue.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });

  readonly informerRestartsTotal = new Counter({
    name: "gpufleet_operator_informer_restarts_total",
    help: "Watch restarts after errors, by resource.",
    labelNames: ["resource"] as const,
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: "gpufleet_operator_leader",
    help: "1 while this replica holds the leader Lease, else 0.",
    registers: [this.registry],
  });

  readonly eventsTotal = new Counter({
    name: "gpufleet_operator_events_total",
    help: "Kubernetes Events recorded, by type (Normal, Warning) and reason.",
    labelNames: ["type", "reason"] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: "gpufleet_operator_" });
  }
}
