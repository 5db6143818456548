/**
 * Every Prometheus metric of the node agent, in one module (gpufleet_agent_*). A Registry is passed in so tests and
 * the benchmark get their own; main.ts passes the one it serves on /metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from "prom-client";

/**
 * prom-client's Node.js process metrics, as gpufleet_agent_process_* and gpufleet_agent_nodejs_*: its names already
 * start with process_ / nodejs_, so the prefix is the component's alone.
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, prefix: "gpufleet_agent_" });
}

export class AgentMetrics {
  readonly rdmaTransmittedBytes: Counter<"node" | "device" | "port">;
  readonly rdmaReceivedBytes: Counter<"node" | "device" | "port">;
  readonly rdmaTransmitBytesPerSecond: Gauge<"node" | "device" | "port">;
  readonly rdmaReceiveBytesPerSecond: Gauge<"node" | "device" | "port">;
  readonly rdmaErrors: Counter<"node" | "device" | "port" | "counter">;
  readonly rdmaCounterEvents: Counter<"node" | "device" | "port" | "event">;
  readonly collectiveRecords: Counter<"node" | "collective">;
  readonly collectiveBytes: Counter<"node" | "collective">;
  readonly collectiveDuration: Histogram<"collective">;
  readonly collectivesInFlight: Gauge<"node">;
  readonly rejectedRecords: Counter<"reason">;
  readonly undecodableMessages: Counter<"method">;
  readonly telemetryPublished: Counter<"stream">;
  readonly telemetryPublishedBytes: Counter<"stream">;
  readonly telemetryDropped: Counter<"stream" | "reason">;
  readonly telemetryBuffered: Gauge<"stream">;
  readonly telemetryPublishRetries: Counter<"stream">;
  readonly workers: Gauge<"node" | "kind" | "state">;
  readonly workerMissedHeartbeats: Counter<"node">;
  readonly workerQueueLength: Gauge<"node" | "pod">;
  readonly workerRunningRequests: Gauge<"node" | "pod">;
  readonly workerKvCacheUsedRatio: Gauge<"node" | "pod">;
  readonly workerTimePerOutputToken: Gauge<"node" | "pod">;
  readonly workerTimeToFirstToken: Gauge<"node" | "pod">;
  readonly grpcRequests: Counter<"service" | "method" | "code">;
  readonly labelApplies: Counter<"node" | "result">;
  readonly simulatedWorkers: Gauge<"kind">;

  constructor(registry: Registry) {
    const registers = [registry];
    const nodePort = ["node", "device", "port"] as const;
    this.rdmaTransmittedBytes = new Counter({
      name: "gpufleet_agent_rdma_transmitted_bytes_total",
      help: "Bytes sent by an RDMA port (port_xmit_data x 4).",
      labelNames: nodePort,
      registers,
    });
    this.rdmaReceivedBytes = new Counter({
      name: "gpufleet_agent_rdma_received_bytes_total",
      help: "Bytes received by an RDMA port (port_rcv_data x 4).",
      labelNames: nodePort,
      registers,
    });
    this.rdmaTransmitBytesPerSecond = new Gauge({
      name: "gpufleet_agent_rdma_transmit_bytes_per_second",
      help: "Send rate of an RDMA port over the last sampling interval.",
      labelNames: nodePort,
      registers,
    });
    this.rdmaReceiveBytesPerSecond = new Gauge({
      name: "gpufleet_agent_rdma_receive_bytes_per_second",
      help: "Receive rate of an RDMA port over the last sampling interval.",
      labelNames: nodePort,
      registers,
    });
    this.rdmaErrors = new Counter({
      name: "gpufleet_agent_rdma_errors_total",
      help: "Increments of RDMA error counters; counter: the sysfs counter name (symbol_error, port_rcv_errors, link_downed, out_of_sequence, np_cnp_sent, ...).",
      labelNames: [...nodePort, "counter"],
      registers,
    });
    this.rdmaCounterEvents = new Counter({
      name: "gpufleet_agent_rdma_counter_events_total",
      help: "Counter anomalies seen while sampling; event: wrapped | reset | saturated.",
      labelNames: [...nodePort, "event"],
      registers,
    });
    this.collectiveRecords = new Counter({
      name: "gpufleet_agent_collective_records_total",
      help: "Collective records received from workers; collective: AllReduce | AllGather | ReduceScatter | Broadcast | Reduce | AllToAll | Send | Recv.",
      labelNames: ["node", "collective"],
      registers,
    });
    this.collectiveBytes = new Counter({
      name: "gpufleet_agent_collective_bytes_total",
      help: "Bytes moved by completed collectives, per collective.",
      labelNames: ["node", "collective"],
      registers,
    });
    this.collectiveDuration = new Histogram({
      name: "gpufleet_agent_collective_duration_seconds",
      help: "Duration of completed collectives (end - start) as reported by a rank.",
      labelNames: ["collective"],
      buckets: [1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.collectivesInFlight = new Gauge({
      name: "gpufleet_agent_collectives_incomplete",
      help: "Records of the last batch whose end time had not come (a hung rank shows here).",
      labelNames: ["node"],
      registers,
    });
    this.rejectedRecords = new Counter({
      name: "gpufleet_agent_rejected_records_total",
      help: "Records refused at the gRPC edge; reason: invalid | unknown_worker.",
      labelNames: ["reason"],
      registers,
    });
    this.undecodableMessages = new Counter({
      name: "gpufleet_agent_undecodable_messages_total",
      help: "Worker gRPC messages that were not valid protobuf of their type (the call fails, nothing of it is accepted); method: ReportCollectives.",
      labelNames: ["method"],
      registers,
    });
    this.telemetryPublished = new Counter({
      name: "gpufleet_agent_telemetry_published_total",
      help: "Items published to JetStream and acknowledged by the stream; stream: collectives | rdma | load | workers | worker-events.",
      labelNames: ["stream"],
      registers,
    });
    this.telemetryPublishedBytes = new Counter({
      name: "gpufleet_agent_telemetry_published_bytes_total",
      help: "Encoded bytes published to NATS per stream.",
      labelNames: ["stream"],
      registers,
    });
    this.telemetryDropped = new Counter({
      name: "gpufleet_agent_telemetry_dropped_total",
      help: "Items dropped before JetStream stored them; reason: buffer_full (NATS away or slower than producers: the bounded buffer was full) | shutdown (still unacknowledged when the agent stopped) | too_large (one item larger than a message may be) | no_transport (telemetry off: no NATS URL).",
      labelNames: ["stream", "reason"],
      registers,
    });
    this.telemetryBuffered = new Gauge({
      name: "gpufleet_agent_telemetry_buffered_items",
      help: "Items waiting in the bounded publish buffers per stream.",
      labelNames: ["stream"],
      registers,
    });
    this.telemetryPublishRetries = new Counter({
      name: "gpufleet_agent_telemetry_publish_retries_total",
      help: "JetStream publishes that failed or timed out and were retried with backoff (same message id; nothing dropped).",
      labelNames: ["stream"],
      registers,
    });
    this.workers = new Gauge({
      name: "gpufleet_agent_workers",
      help: "Registered workers; kind: serving | serving-prefill | serving-decode | training; state: healthy | missing.",
      labelNames: ["node", "kind", "state"],
      registers,
    });
    this.workerMissedHeartbeats = new Counter({
      name: "gpufleet_agent_worker_missing_total",
      help: "Times a worker was declared missing after missed heartbeats.",
      labelNames: ["node"],
      registers,
    });
    this.workerQueueLength = new Gauge({
      name: "gpufleet_agent_worker_queue_length",
      help: "Requests waiting in a serving worker's queue.",
      labelNames: ["node", "pod"],
      registers,
    });
    this.workerRunningRequests = new Gauge({
      name: "gpufleet_agent_worker_running_requests",
      help: "Requests a serving worker is running.",
      labelNames: ["node", "pod"],
      registers,
    });
    this.workerKvCacheUsedRatio = new Gauge({
      name: "gpufleet_agent_worker_kv_cache_used_ratio",
      help: "Fraction of a serving worker's KV cache in use.",
      labelNames: ["node", "pod"],
      registers,
    });
    this.workerTimePerOutputToken = new Gauge({
      name: "gpufleet_agent_worker_time_per_output_token_seconds",
      help: "Last decode step latency of a serving worker.",
      labelNames: ["node", "pod"],
      registers,
    });
    this.workerTimeToFirstToken = new Gauge({
      name: "gpufleet_agent_worker_time_to_first_token_seconds",
      help: "Last prefill latency of a serving worker.",
      labelNames: ["node", "pod"],
      registers,
    });
    this.grpcRequests = new Counter({
      name: "gpufleet_agent_grpc_requests_total",
      help: "gRPC calls served; service: NodeAgent | WorkerAgent; code: grpc status name (OK, NOT_FOUND, INVALID_ARGUMENT, ...).",
      labelNames: ["service", "method", "code"],
      registers,
    });
    this.labelApplies = new Counter({
      name: "gpufleet_agent_label_applies_total",
      help: "Server-side applies of node topology labels; result: ok | error | invalid_facts.",
      labelNames: ["node", "result"],
      registers,
    });
    this.simulatedWorkers = new Gauge({
      name: "gpufleet_agent_simulated_workers",
      help: "Simulated workers running in this agent; kind as for gpufleet_agent_workers.",
      labelNames: ["kind"],
      registers,
    });
  }
}
