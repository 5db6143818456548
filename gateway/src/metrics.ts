/** Every metric the gateway exports, in one place. Names: gpufleet_gateway_<noun>_<unit>. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface InstanceCounts {
  /** Live (fresh, not draining) instances by model and role. */
  instances(): { model: string; role: string; count: number }[];
  /** How long the view has been held through a source outage (0: the source delivers). */
  viewHeldMs?(): number;
}

const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const TPOT_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28];

export class GatewayMetrics {
  readonly registry = new Registry();

  readonly requestsTotal = new Counter({
    name: "gpufleet_gateway_requests_total",
    help: "Client requests answered, by model, endpoint (completions, chat, models) and HTTP code (200, 400, 404, 429, 499 client closed, 502, 503, ...).",
    labelNames: ["model", "endpoint", "code"] as const,
    registers: [this.registry],
  });

  readonly errorsTotal = new Counter({
    name: "gpufleet_gateway_errors_total",
    help: "Failed requests by model and error code (invalid_request, invalid_json, model_not_found, overloaded, no_instances, upstream_failed, upstream_timeout, client_closed, shutting_down, internal_error); mid-stream failures included.",
    labelNames: ["model", "code"] as const,
    registers: [this.registry],
  });

  readonly ttftSeconds = new Histogram({
    name: "gpufleet_gateway_ttft_seconds",
    help: "Time from the request's arrival to its first token leaving the gateway, by model.",
    labelNames: ["model"] as const,
    buckets: LATENCY_BUCKETS_S,
    registers: [this.registry],
  });

  readonly tpotSeconds = new Histogram({
    name: "gpufleet_gateway_tpot_seconds",
    help: "Mean time per output token after the first, per completed request, by model.",
    labelNames: ["model"] as const,
    buckets: TPOT_BUCKETS_S,
    registers: [this.registry],
  });

  readonly inFlight = new Gauge({
    name: "gpufleet_gateway_in_flight_requests",
    help: "Completions being served now, by model.",
    labelNames: ["model"] as const,
    registers: [this.registry],
  });

  readonly dispatchDecisionsTotal = new Counter({
    name: "gpufleet_gateway_dispatch_decisions_total",
    help: "Instances chosen, by model, policy (freeness, round-robin) and role (colocated, prefill, decode).",
    labelNames: ["model", "policy", "role"] as const,
    registers: [this.registry],
  });

  readonly upstreamRetriesTotal = new Counter({
    name: "gpufleet_gateway_upstream_retries_total",
    help: "Upstream calls retried on another instance, by model, role and reason (unreachable, timeout, overloaded, failed).",
    labelNames: ["model", "role", "reason"] as const,
    registers: [this.registry],
  });

  readonly migrationsFollowedTotal = new Counter({
    name: "gpufleet_gateway_migrations_followed_total",
    help: "Live migrations of a streaming request that the gateway followed to the destination instance, by model, role and outcome (followed: the destination's resume stream opened; failed: it could not be opened or did not match the tokens relayed).",
    labelNames: ["model", "role", "outcome"] as const,
    registers: [this.registry],
  });

  readonly loadReportsTotal = new Counter({
    name: "gpufleet_gateway_load_reports_total",
    help: "Instance load reports read, by result (accepted, invalid, not_serving: a report without the serving fields).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly admissionRefusedTotal = new Counter({
    name: "gpufleet_gateway_admission_refused_total",
    help: "Requests refused before any work (gateway/src/admission), by reason: queue_full (429), queue_timeout (503), missing_key, invalid_key (401).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly admissionSlots = new Gauge({
    name: "gpufleet_gateway_admission_requests",
    help: "Completions admitted by this replica, by state: in_flight (holding a slot) or queued (waiting for one).",
    labelNames: ["state"] as const,
    registers: [this.registry],
  });

  readonly slowClientsClosedTotal = new Counter({
    name: "gpufleet_gateway_slow_clients_closed_total",
    help: "Responses closed because the client read nothing for the write stall timeout (their upstream calls cancelled).",
    registers: [this.registry],
  });

  readonly loadSourceDisconnectsTotal = new Counter({
    name: "gpufleet_gateway_load_source_disconnects_total",
    help: "Times the load source (NATS) disconnected; the view then holds its last state (GPUFLEET_GATEWAY_SOURCE_OUTAGE_HOLD_MS).",
    registers: [this.registry],
  });

  readonly instances: Gauge<"model" | "role">;
  readonly viewHeldSeconds: Gauge;

  constructor(counts: InstanceCounts = { instances: () => [] }) {
    collectDefaultMetrics({ register: this.registry, prefix: "gpufleet_gateway_process_" });
    // Filled at scrape time from the instance view, so the gauge never drifts from what dispatch sees.
    this.instances = new Gauge({
      name: "gpufleet_gateway_instances",
      help: "Live instances the gateway can dispatch to, by model and role (colocated, prefill, decode).",
      labelNames: ["model", "role"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const row of counts.instances()) this.set({ model: row.model, role: row.role }, row.count);
      },
    });
    this.viewHeldSeconds = new Gauge({
      name: "gpufleet_gateway_view_held_seconds",
      help: "How long the instance view has been held since the load source (NATS) disconnected and no report arrived; 0 while reports arrive. Beyond GPUFLEET_GATEWAY_SOURCE_OUTAGE_HOLD_MS the instances go stale.",
      registers: [this.registry],
      collect() {
        this.set((counts.viewHeldMs?.() ?? 0) / 1000);
      },
    });
  }
}
