/**
 * The JetStream streams gpufleet's telemetry lives in, defined once for the agent (which publishes with
 * acknowledgements) and the operator (whose durable consumers read them). `ensureStreams()` adds a missing stream
 * and updates an existing one to this definition; both sides call it at start-up, so whichever comes first creates
 * them and a changed limit takes effect on the next start of either.
 *
 * One stream per kind of telemetry, each capturing `gpufleet.v1.<stream>.*` (see subjects.ts). All streams are file
 * backed (a NATS restart keeps what was acknowledged) with limits retention, one replica (the chart runs one server),
 * and a 2-minute duplicate window: the agent publishes every batch with a message id and retries a batch whose
 * acknowledgement did not come with the same id, so a retry of a batch the server had in fact stored is dropped by
 * the server instead of counted twice.
 *
 * | stream | why it exists | max age | max bytes | per subject | when full |
 * | --- | --- | --- | --- | --- | --- |
 * | collectives | C4D fault detection: every record counts | 1 h | 1 GiB | - | discard new |
 * | worker-events | checkpoint reports, each one acted on | 7 d | 64 MiB | - | discard new |
 * | workers | supervision events (registered, missing) | 24 h | 64 MiB | - | discard new |
 * | load | latest-wins serving load (autoscaling, dispatch) | 5 min | 256 MiB | 64 msgs per node | discard old |
 * | rdma | latest-wins NIC rates and error deltas | 10 min | 256 MiB | 120 msgs per node | discard old |
 *
 * "Discard new" for the streams where a lost record could hide a fault or a checkpoint: when the stream is full the
 * server refuses the publish, the agent keeps the batch and retries with backoff, and only when the agent's bounded
 * buffer is full too does it drop, counted (gpufleet_agent_telemetry_dropped_total, and droppedSincePrevious in the
 * next collectives message). Loss is therefore never silent. "Discard old" for the latest-wins streams, where a
 * newer sample replaces an older one anyway; max msgs per subject keeps a few recent messages per node (a message
 * batches the reports of several pods of a node, so keeping only the last one would lose pods).
 * One hour of collectives covers an operator outage far longer than a failover (seconds); the records of a large
 * job (~100k records/s at ~42 bytes each, measured with one peer transfer per record) would fill 1 GiB in about 4
 * minutes, after which agents buffer and then drop, counted: the byte limit, not the age, is the one that binds at
 * scale.
 */
import { DiscardPolicy, nanos, RetentionPolicy, StorageType, type JetStreamManager, type StreamConfig } from "nats";
import { Stream, subscriptionFor } from "./subjects.js";

const MiB = 1024 * 1024;
const MINUTE_MS = 60_000;

export interface StreamDefinition {
  /** The telemetry stream (subject token). */
  stream: Stream;
  /** JetStream stream name (no dots allowed). */
  name: string;
  subjects: string[];
  maxAgeMs: number;
  maxBytes: number;
  /** -1: unlimited. */
  maxMsgsPerSubject: number;
  discard: DiscardPolicy;
  duplicateWindowMs: number;
}

const DUPLICATE_WINDOW_MS = 2 * MINUTE_MS;

function definition(
  stream: Stream,
  limits: Pick<StreamDefinition, "maxAgeMs" | "maxBytes" | "maxMsgsPerSubject" | "discard">,
): StreamDefinition {
  return {
    stream,
    name: streamName(stream),
    subjects: [subscriptionFor(stream)],
    duplicateWindowMs: DUPLICATE_WINDOW_MS,
    ...limits,
  };
}

/** `worker-events` -> `GPUFLEET_WORKER_EVENTS`. */
export function streamName(stream: Stream): string {
  return `GPUFLEET_${stream.replace(/-/g, "_").toUpperCase()}`;
}

export const STREAMS: readonly StreamDefinition[] = [
  definition(Stream.collectives, {
    maxAgeMs: 60 * MINUTE_MS,
    maxBytes: 1024 * MiB,
    maxMsgsPerSubject: -1,
    discard: DiscardPolicy.New,
  }),
  definition(Stream.workerEvents, {
    maxAgeMs: 7 * 24 * 60 * MINUTE_MS,
    maxBytes: 64 * MiB,
    maxMsgsPerSubject: -1,
    discard: DiscardPolicy.New,
  }),
  definition(Stream.workers, {
    maxAgeMs: 24 * 60 * MINUTE_MS,
    maxBytes: 64 * MiB,
    maxMsgsPerSubject: -1,
    discard: DiscardPolicy.New,
  }),
  definition(Stream.load, {
    maxAgeMs: 5 * MINUTE_MS,
    maxBytes: 256 * MiB,
    maxMsgsPerSubject: 64,
    discard: DiscardPolicy.Old,
  }),
  definition(Stream.rdma, {
    maxAgeMs: 10 * MINUTE_MS,
    maxBytes: 256 * MiB,
    maxMsgsPerSubject: 120,
    discard: DiscardPolicy.Old,
  }),
];

export function streamDefinition(stream: Stream): StreamDefinition {
  const found = STREAMS.find((s) => s.stream === stream);
  if (!found) throw new Error(`no JetStream stream is defined for ${stream}`);
  return found;
}

export function streamConfig(d: StreamDefinition): Partial<StreamConfig> {
  return {
    name: d.name,
    subjects: d.subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: 1,
    max_age: nanos(d.maxAgeMs),
    max_bytes: d.maxBytes,
    max_msgs_per_subject: d.maxMsgsPerSubject,
    discard: d.discard,
    duplicate_window: nanos(d.duplicateWindowMs),
  };
}

export class StreamSetupError extends Error {
  override name = "StreamSetupError";
  constructor(
    readonly streamName: string,
    options: ErrorOptions,
  ) {
    super(
      `setting up JetStream stream ${streamName} failed${options.cause instanceof Error ? `: ${options.cause.message}` : ""}`,
      options,
    );
  }
}

const STREAM_NOT_FOUND = 10059;

/** Adds each missing stream and updates each existing one to its definition; safe to call from many processes. */
export async function ensureStreams(
  jsm: JetStreamManager,
  streams: readonly StreamDefinition[] = STREAMS,
): Promise<void> {
  for (const d of streams) {
    const config = streamConfig(d);
    try {
      await addOrUpdate(jsm, d.name, config);
    } catch (err) {
      throw new StreamSetupError(d.name, { cause: err });
    }
  }
}

/**
 * Waits until every stream exists, reading only its info: for a component that may not create streams (an agent
 * under NATS authorization, common/src/nats/authorization.ts), whose streams the operator sets up. Errors other than
 * "stream not found" (a refused permission, say) fail at once; `onWaiting` hears each stream still missing.
 */
export async function awaitStreams(
  jsm: JetStreamManager,
  options: { retryMs?: number; onWaiting?: (stream: string) => void; signal?: AbortSignal } = {},
  streams: readonly StreamDefinition[] = STREAMS,
): Promise<void> {
  const retryMs = options.retryMs ?? 1000;
  for (const d of streams) {
    for (;;) {
      try {
        await jsm.streams.info(d.name);
        break;
      } catch (err) {
        if (apiErrorCode(err) !== STREAM_NOT_FOUND) throw new StreamSetupError(d.name, { cause: err });
      }
      options.onWaiting?.(d.name);
      if (options.signal?.aborted) throw new StreamSetupError(d.name, { cause: options.signal.reason });
      await new Promise((resolve) => setTimeout(resolve, retryMs));
    }
  }
}

async function addOrUpdate(jsm: JetStreamManager, name: string, config: Partial<StreamConfig>): Promise<void> {
  try {
    await jsm.streams.info(name);
  } catch (err) {
    if (apiErrorCode(err) !== STREAM_NOT_FOUND) throw err;
    try {
      await jsm.streams.add(config);
      return;
    } catch (addErr) {
      // Another process added it between our info and add: fall through to update.
      if (!/already in use/i.test(String(addErr))) throw addErr;
    }
  }
  await jsm.streams.update(name, config);
}

function apiErrorCode(err: unknown): number | undefined {
  const apiError = (err as { api_error?: { err_code?: number } } | undefined)?.api_error;
  return apiError?.err_code;
}
