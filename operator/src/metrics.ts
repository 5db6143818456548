/** Every metric the operator exports, in one place. Names: gpufleet_operator_<noun>_<unit>. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ServingDeployment } from "../../crds/src/serving-deployment.js";
import { FaultClasses, type TrainingJob } from "../../crds/src/training-job.js";

/** Where the per-resource gauges read from at scrape time: the informer caches. */
export interface ResourceSources {
  servingDeployments: () => readonly ServingDeployment[];
  trainingJobs: () => readonly TrainingJob[];
}

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
    // Up to 60 s: the soak (bench/soak.ts) saw serving reconciles past 10 s on the 1,000-node profile.
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  readonly workqueueDepth = new Gauge({
    name: "gpufleet_operator_workqueue_depth",
    help: "Keys waiting in a controller's work queue.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });

  readonly apiRequestsTotal = new Counter({
    name: "gpufleet_operator_api_requests_total",
    help: "Requests the operator's API clients sent to the API server (watches aside), by HTTP method.",
    labelNames: ["method"] as const,
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

  // Per-resource gauges, filled from status at scrape time (what the planners promised, for the Fleet dashboard).
  readonly resources = new Gauge({
    name: "gpufleet_operator_resources",
    help: "gpufleet resources by kind (ServingDeployment, TrainingJob) and phase.",
    labelNames: ["kind", "phase"] as const,
    registers: [this.registry],
  });

  readonly servingGoodputPerGpu = new Gauge({
    name: "gpufleet_operator_serving_goodput_per_gpu",
    help: "Planned requests/s per GPU meeting both SLOs, by deployment and plan (chosen, colocated baseline).",
    labelNames: ["namespace", "name", "plan"] as const,
    registers: [this.registry],
  });

  readonly servingInstances = new Gauge({
    name: "gpufleet_operator_serving_instances",
    help: "Serving instances by deployment and state (ready, desired).",
    labelNames: ["namespace", "name", "state"] as const,
    registers: [this.registry],
  });

  readonly servingGpus = new Gauge({
    name: "gpufleet_operator_serving_gpus",
    help: "GPUs the deployment's plan uses.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });

  readonly trainingRestarts = new Gauge({
    name: "gpufleet_operator_training_restarts",
    help: "Whole-gang restarts of a training job so far (never reset).",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });

  readonly trainingPredictedStepSeconds = new Gauge({
    name: "gpufleet_operator_training_predicted_step_seconds",
    help: "Predicted step time of a job's placement (holmes) and of a NIC-oblivious one (oblivious).",
    labelNames: ["namespace", "name", "placement"] as const,
    registers: [this.registry],
  });

  readonly trainingLastCheckpointStep = new Gauge({
    name: "gpufleet_operator_training_last_checkpoint_step",
    help: "Last step a job reported a complete checkpoint for.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });

  // Fault detection (C4D) and isolation of training jobs (operator/src/training/faults/).
  readonly trainingFaultsTotal = new Counter({
    name: "gpufleet_operator_training_faults_total",
    help: "Faults C4D found in training gangs and the operator recorded, by class (hang, unfinished, slow-sender, slow-receiver, slow-link, straggler, job-hang, ambiguous: evidence that blamed no single component, nothing done).",
    labelNames: ["class"] as const,
    registers: [this.registry],
  });

  readonly trainingIsolationsTotal = new Counter({
    name: "gpufleet_operator_training_isolations_total",
    help: "Components isolated by fault detection, by target (node: tainted gpufleet.io/isolated, nic: node condition NicDegraded-<nic>).",
    labelNames: ["target"] as const,
    registers: [this.registry],
  });

  readonly trainingGangRestartsTotal = new Counter({
    name: "gpufleet_operator_training_gang_restarts_total",
    help: "Whole-gang restarts decided, by cause (pod_failed, node_isolated, fault: C4D blamed a NIC or only asked for a restart).",
    labelNames: ["cause"] as const,
    registers: [this.registry],
  });

  readonly trainingFaultDetectionSeconds = new Histogram({
    name: "gpufleet_operator_training_fault_detection_seconds",
    help: "From the start of the first collective a fault affected to the operator acting on it (taint, NIC mark or restart), by class.",
    labelNames: ["class"] as const,
    buckets: [0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 120, 300],
    registers: [this.registry],
  });

  readonly trafficPlansAppliedTotal = new Counter({
    name: "gpufleet_operator_traffic_plans_applied_total",
    help: "C4P node plans sent to agents (ApplyTrafficPlan), by result (applied; invalid: INVALID_ARGUMENT; unimplemented: the node has no executor; error: anything else).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly trafficFlowsPinned = new Gauge({
    name: "gpufleet_operator_traffic_flows_pinned",
    help: "C4P: inter-leaf connections planned on a fabric, and of their QPs those the agents report on their planned path (kind: connections, qps_planned, qps_on_path).",
    labelNames: ["fabric", "kind"] as const,
    registers: [this.registry],
  });

  readonly trafficPredictedMaxLinkUtilization = new Gauge({
    name: "gpufleet_operator_traffic_predicted_max_link_utilization",
    help: "Predicted load (demand ÷ capacity) of a fabric's busiest link: under the C4P plan (plan=c4p) and under ECMP hashing, mean over seeds (plan=ecmp).",
    labelNames: ["fabric", "plan"] as const,
    registers: [this.registry],
  });

  readonly trainingFaultChecksTotal = new Counter({
    name: "gpufleet_operator_training_fault_checks_total",
    help: "Fault monitor checks of running training jobs, by result (ok, error: the check threw and is retried next period).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  // Per rank, only for jobs of at most the fault monitor's maxRanksForRankMetrics ranks (default 64) and at most
  // maxRankSeries series in all (default 2,048): the heatmap needs a row per rank, and a 4,096-rank job must not
  // add 4,096 series per scrape. Larger jobs are still judged by C4D; only their heatmap rows are not exported.
  readonly trainingRankCollectiveSeconds = new Gauge({
    name: "gpufleet_operator_training_rank_collective_seconds",
    help: "Median duration (end - start) of a rank's recent collectives, by job and rank; long on the ranks that wait for a slow peer.",
    labelNames: ["namespace", "name", "rank"] as const,
    registers: [this.registry],
  });

  readonly trainingRankSendSeconds = new Gauge({
    name: "gpufleet_operator_training_rank_send_seconds",
    help: "Median time of a rank's recent sends to its peers, by job and rank; long on the sending end of a slow link.",
    labelNames: ["namespace", "name", "rank"] as const,
    registers: [this.registry],
  });

  // Operator → agent calls (operator/src/agents/).
  readonly agentCallsTotal = new Counter({
    name: "gpufleet_operator_agent_calls_total",
    help: "Calls to node agents by method (GetNodeInfo, ListWorkers, RunDiagnostic, ApplyTrafficPlan, SendWorkerCommand) and final gRPC code (OK, UNAVAILABLE, DEADLINE_EXCEEDED, ...; CIRCUIT_OPEN and NO_ENDPOINT when no call was made).",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });

  readonly agentCallRetriesTotal = new Counter({
    name: "gpufleet_operator_agent_call_retries_total",
    help: "Retries of idempotent agent calls after UNAVAILABLE, by method.",
    labelNames: ["method"] as const,
    registers: [this.registry],
  });

  readonly agentCircuitState = new Gauge({
    name: "gpufleet_operator_agent_circuit_state",
    help: "Circuit state of each node's agent: 0 closed, 1 half-open, 2 open.",
    labelNames: ["node"] as const,
    registers: [this.registry],
  });

  readonly certificateExpiry = new Gauge({
    name: "gpufleet_operator_certificate_expiry_timestamp_seconds",
    help: "notAfter of the certificate in each mTLS Secret (<prefix>-ca, -agent-tls, -operator-tls; with NATS authorization -nats-tls, -gateway-tls), as Unix time.",
    labelNames: ["secret"] as const,
    registers: [this.registry],
  });

  readonly natsAuthorizationWrites = new Counter({
    name: "gpufleet_operator_nats_authorization_writes_total",
    help: "Passes over the NATS authorization ConfigMap (<prefix>-nats-authorization) by outcome: written, unchanged, too_large (kept the last version), error.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly natsAuthorizedNodes = new Gauge({
    name: "gpufleet_operator_nats_authorized_nodes",
    help: "Nodes whose agent the NATS authorization admits, as of the last pass.",
    registers: [this.registry],
  });

  readonly certificatesIssued = new Counter({
    name: "gpufleet_operator_certificates_issued_total",
    help: "Certificates issued (first issue and rotations) by Secret.",
    labelNames: ["secret"] as const,
    registers: [this.registry],
  });

  readonly agentCertificateRequestsTotal = new Counter({
    name: "gpufleet_operator_agent_certificate_requests_total",
    help: "Agents' NATS client-certificate requests (CertificateSigningRequests for gpufleet.io/agent-nats-client) by outcome: signed, denied, failed.",
    labelNames: ["outcome"] as const,
    registers: [this.registry],
  });

  readonly agentCredentialReloadsTotal = new Counter({
    name: "gpufleet_operator_agent_credential_reloads_total",
    help: "Times the agent client pool took a new client certificate and rebuilt its channels.",
    registers: [this.registry],
  });

  // Telemetry from agents through JetStream (operator/src/telemetry/).
  readonly telemetryEnabled = new Gauge({
    name: "gpufleet_operator_telemetry_enabled",
    help: "1 when the operator consumes agent telemetry from JetStream (natsUrl set), 0 when telemetry is off.",
    registers: [this.registry],
  });

  readonly telemetryConsumerPending = new Gauge({
    name: "gpufleet_operator_telemetry_consumer_pending_messages",
    help: "Consumer lag per stream: messages in the stream not yet delivered to the operator's durable consumer (state: pending), or delivered and not yet acknowledged (state: ack_pending).",
    labelNames: ["stream", "state"] as const,
    registers: [this.registry],
  });

  readonly telemetryMessagesTotal = new Counter({
    name: "gpufleet_operator_telemetry_messages_total",
    help: "JetStream messages handled per stream, by result: ack (applied) | nak (will be redelivered: a status write failed) | term (undecodable, never redelivered).",
    labelNames: ["stream", "result"] as const,
    registers: [this.registry],
  });

  readonly telemetryRedeliveriesTotal = new Counter({
    name: "gpufleet_operator_telemetry_redeliveries_total",
    help: "Messages JetStream delivered more than once (an earlier delivery was not acknowledged), per stream.",
    labelNames: ["stream"] as const,
    registers: [this.registry],
  });

  readonly telemetryDecodeErrorsTotal = new Counter({
    name: "gpufleet_operator_telemetry_decode_errors_total",
    help: "Messages that were not valid JSON of their stream's schema, per stream (terminated, not redelivered).",
    labelNames: ["stream"] as const,
    registers: [this.registry],
  });

  readonly telemetryRecordsTotal = new Counter({
    name: "gpufleet_operator_telemetry_records_total",
    help: "Collective records read, by result: accepted | duplicate (a redelivery, not counted again) | stale (older than the read model's window).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly telemetryDroppedTotal = new Counter({
    name: "gpufleet_operator_telemetry_dropped_total",
    help: "Telemetry lost or pushed out, by where: agent (records agents dropped before JetStream, from droppedSincePrevious) | sequence | communicator | load_instance | job | worker | rdma_port (evicted from the bounded read model).",
    labelNames: ["where"] as const,
    registers: [this.registry],
  });

  readonly telemetryCheckpointWritesTotal = new Counter({
    name: "gpufleet_operator_telemetry_checkpoint_writes_total",
    help: "Checkpoint reports handled, by result: written (status.lastCheckpointStep raised) | unchanged (status already at or past the step) | moot (pod or job gone) | conflict (409, retried) | error.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  // Llumnix scheduling of serving instances: migrations and autoscaling (operator/src/serving/scheduler/).
  readonly servingMigrationsTotal = new Counter({
    name: "gpufleet_operator_serving_migrations_total",
    help: "Live migrations the operator ordered, by deployment and outcome: completed (the destination owns the request) | failed (the worker tried; the request stays on its source) | rejected (the worker refused before any effect) | unreachable (the command did not reach the worker).",
    labelNames: ["namespace", "name", "outcome"] as const,
    registers: [this.registry],
  });

  readonly servingMigrationsInFlight = new Gauge({
    name: "gpufleet_operator_serving_migrations_in_flight",
    help: "MigrateOut commands sent and not yet answered, by deployment.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });

  readonly servingMigrationDowntimeSeconds = new Histogram({
    name: "gpufleet_operator_serving_migration_downtime_seconds",
    help: "Downtime of completed migrations as the source worker reported it (the request's stop-and-copy pause).",
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly servingScalingDecisionsTotal = new Counter({
    name: "gpufleet_operator_serving_scaling_decisions_total",
    help: "Autoscaler decisions carried out, by deployment, role and kind (up | down), and bounded holds (kind held_up | held_down: the policy asked, a bound of spec.scaling, capacity or the P:D ratio refused).",
    labelNames: ["namespace", "name", "role", "kind"] as const,
    registers: [this.registry],
  });

  readonly servingDesiredInstances = new Gauge({
    name: "gpufleet_operator_serving_desired_instances",
    help: "Instances wanted per role (status.scaling.desired: the planner's replicas, or the autoscaler's), by deployment and role.",
    labelNames: ["namespace", "name", "role"] as const,
    registers: [this.registry],
  });

  readonly servingDrainingInstances = new Gauge({
    name: "gpufleet_operator_serving_draining_instances",
    help: "Instances leaving by scale-in, by deployment and state (Draining: requests moving out | Drained: its pods going).",
    labelNames: ["namespace", "name", "state"] as const,
    registers: [this.registry],
  });

  // Live load per deployment and role, set by the serving scheduler every period from
  // the instances' latest load reports (what `gpufleet top` shows beside the plan's predictions).
  readonly servingQueuedRequests = new Gauge({
    name: "gpufleet_operator_serving_queued_requests",
    help: "Requests waiting in the instances' queues, by deployment and role (prefill, decode, colocated), from their latest load reports.",
    labelNames: ["namespace", "name", "role"] as const,
    registers: [this.registry],
  });

  readonly servingRunningRequests = new Gauge({
    name: "gpufleet_operator_serving_running_requests",
    help: "Requests running on the instances, by deployment and role, from their latest load reports.",
    labelNames: ["namespace", "name", "role"] as const,
    registers: [this.registry],
  });

  readonly servingSloAttainmentRatio = new Gauge({
    name: "gpufleet_operator_serving_slo_attainment_ratio",
    help: "Share (0..1) of a deployment's recent busy load reports (the scheduler's SLO window) within spec.slo, by deployment, role and slo (ttft: prefill and colocated instances | tpot: decode and colocated). No series while a role has no sample.",
    labelNames: ["namespace", "name", "role", "slo"] as const,
    registers: [this.registry],
  });

  readonly servingSloTargetRatio = new Gauge({
    name: "gpufleet_operator_serving_slo_target_ratio",
    help: "The attainment a deployment's SLO asks for (spec.slo.attainmentPercent / 100), by deployment.",
    labelNames: ["namespace", "name"] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "gpufleet_operator_" });
    // Known label values start at 0, so rate() and increase() have a series before the first fault.
    for (const faultClass of FaultClasses) this.trainingFaultsTotal.inc({ class: faultClass }, 0);
    for (const target of ["node", "nic"]) this.trainingIsolationsTotal.inc({ target }, 0);
    for (const cause of ["pod_failed", "node_isolated", "fault"]) this.trainingGangRestartsTotal.inc({ cause }, 0);
    for (const result of ["ok", "error"]) this.trainingFaultChecksTotal.inc({ result }, 0);
    for (const result of ["applied", "invalid", "unimplemented", "error"])
      this.trafficPlansAppliedTotal.inc({ result }, 0);
  }

  /**
   * Refreshes the per-resource gauges from the caches before every scrape. Reset first: a deleted resource must
   * disappear from the exposition, not keep its last value.
   */
  observeResources(sources: ResourceSources): void {
    const refresh = () => {
      for (const gauge of [
        this.resources,
        this.servingGoodputPerGpu,
        this.servingInstances,
        this.servingGpus,
        this.servingDesiredInstances,
        this.servingDrainingInstances,
        this.trainingRestarts,
        this.trainingPredictedStepSeconds,
        this.trainingLastCheckpointStep,
      ])
        gauge.reset();
      const phases = new Map<string, number>();
      const countPhase = (kind: string, phase: string | undefined) =>
        phases.set(`${kind}|${phase ?? "Unknown"}`, (phases.get(`${kind}|${phase ?? "Unknown"}`) ?? 0) + 1);
      for (const sd of sources.servingDeployments()) {
        countPhase("ServingDeployment", sd.status?.phase);
        const id = { namespace: sd.metadata.namespace ?? "", name: sd.metadata.name ?? "" };
        const plan = sd.status?.plan;
        if (plan) {
          this.servingGoodputPerGpu.set({ ...id, plan: "chosen" }, plan.goodputPerGpu);
          if (plan.colocatedGoodputPerGpu !== undefined)
            this.servingGoodputPerGpu.set({ ...id, plan: "colocated" }, plan.colocatedGoodputPerGpu);
          this.servingGpus.set(id, plan.totalGpus);
        }
        if (sd.status?.readyInstances !== undefined)
          this.servingInstances.set({ ...id, state: "ready" }, sd.status.readyInstances);
        if (sd.status?.desiredInstances !== undefined)
          this.servingInstances.set({ ...id, state: "desired" }, sd.status.desiredInstances);
        for (const [role, count] of Object.entries(sd.status?.scaling?.desired ?? {}))
          this.servingDesiredInstances.set({ ...id, role }, count);
        for (const state of ["Draining", "Drained"])
          this.servingDrainingInstances.set(
            { ...id, state },
            (sd.status?.scaling?.draining ?? []).filter((d) => d.state === state).length,
          );
      }
      for (const job of sources.trainingJobs()) {
        countPhase("TrainingJob", job.status?.phase);
        const id = { namespace: job.metadata.namespace ?? "", name: job.metadata.name ?? "" };
        this.trainingRestarts.set(id, job.status?.restarts ?? 0);
        const placement = job.status?.placement;
        if (placement) {
          this.trainingPredictedStepSeconds.set({ ...id, placement: "holmes" }, placement.predictedStepMs / 1000);
          if (placement.obliviousStepMs !== undefined)
            this.trainingPredictedStepSeconds.set({ ...id, placement: "oblivious" }, placement.obliviousStepMs / 1000);
        }
        if (job.status?.lastCheckpointStep !== undefined)
          this.trainingLastCheckpointStep.set(id, job.status.lastCheckpointStep);
      }
      for (const [key, count] of phases) {
        const [kind = "", phase = ""] = key.split("|");
        this.resources.set({ kind, phase }, count);
      }
    };
    // prom-client awaits every metric's collect() before rendering; one refresh per scrape is enough.
    const original = this.registry.metrics.bind(this.registry);
    this.registry.metrics = async () => {
      refresh();
      return original();
    };
  }
}
