/**
 * The agent's NATS wire protocol, in one place: subjects, versioned message schemas (TypeBox, so the operator side
 * validates at its edge) and the encoders/decoders.
 *
 * Subjects: `gpufleet.v1.<stream>.<node>`; subscribers use `gpufleet.v1.<stream>.*`.
 * Collective records travel columnar: one message carries a batch, each record a fixed-order tuple (see
 * COLLECTIVE_FIELDS) and peers as flat [peerRank, bytes, startUnixUs, endUnixUs] quadruples. This is ~3x cheaper
 * to encode and decode than one JSON object per record and halves the bytes (field names are not repeated).
 * A breaking change bumps the schema string and the subject version together.
 */
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { JsonBytesWriter, jsonBytes, MAX_NUMBER_BYTES } from "./json-bytes.js";
import type { Collective, CollectiveRecord } from "./records.js";

export const SUBJECT_PREFIX = "gpufleet.v1";

export const Stream = {
  collectives: "collectives",
  rdma: "rdma",
  load: "load",
  workers: "workers",
  /** Individual events of one worker that the operator acts on (checkpoint reports). */
  workerEvents: "worker-events",
} as const;
export type Stream = (typeof Stream)[keyof typeof Stream];

/** NATS subject tokens may not contain '.', '*', '>' or whitespace; node names may contain dots. */
export function subjectToken(name: string): string {
  return name.replace(/[.*>\s]/g, "_");
}

export function subjectFor(stream: Stream, nodeName: string): string {
  return `${SUBJECT_PREFIX}.${stream}.${subjectToken(nodeName)}`;
}

export function subscriptionFor(stream: Stream): string {
  return `${SUBJECT_PREFIX}.${stream}.*`;
}

export const Schema = {
  collectives: "gpufleet.collectives/v1",
  rdma: "gpufleet.rdma/v1",
  load: "gpufleet.load/v1",
  workers: "gpufleet.workers/v1",
  workerEvents: "gpufleet.worker-events/v1",
} as const;

export const COLLECTIVE_FIELDS = [
  "communicator",
  "rank",
  "nRanks",
  "collective",
  "sequence",
  "bytes",
  "startUnixUs",
  "endUnixUs",
  "peers",
] as const;

const CollectiveTuple = Type.Tuple([
  Type.String(),
  Type.Integer(),
  Type.Integer(),
  Type.String(),
  Type.Number(),
  Type.Number(),
  Type.Number(),
  Type.Number(),
  Type.Array(Type.Number()),
]);

export const CollectivesMessage = Type.Object({
  schema: Type.Literal(Schema.collectives),
  node: Type.String(),
  sentUnixMs: Type.Number(),
  /** Records dropped on this node since the previous message (bounded buffers). */
  droppedSincePrevious: Type.Integer({ minimum: 0 }),
  /** The pod whose worker reported these records (the operator maps it to its TrainingJob); absent if unknown. */
  podNamespace: Type.Optional(Type.String()),
  podName: Type.Optional(Type.String()),
  records: Type.Array(CollectiveTuple),
});
export type CollectivesMessage = Static<typeof CollectivesMessage>;

export const RdmaMessage = Type.Object({
  schema: Type.Literal(Schema.rdma),
  node: Type.String(),
  sentUnixMs: Type.Number(),
  ports: Type.Array(
    Type.Object({
      device: Type.String(),
      port: Type.Integer(),
      intervalMs: Type.Number(),
      transmitBytesPerSec: Type.Number(),
      receiveBytesPerSec: Type.Number(),
      transmitPacketsPerSec: Type.Number(),
      receivePacketsPerSec: Type.Number(),
      errorDeltas: Type.Record(Type.String(), Type.Number()),
      resets: Type.Array(Type.String()),
      wraps: Type.Array(Type.String()),
      saturated: Type.Array(Type.String()),
    }),
  ),
});
export type RdmaMessage = Static<typeof RdmaMessage>;

export const LoadMessage = Type.Object({
  schema: Type.Literal(Schema.load),
  node: Type.String(),
  sentUnixMs: Type.Number(),
  reports: Type.Array(
    Type.Object({
      workerId: Type.String(),
      podNamespace: Type.String(),
      podName: Type.String(),
      unixMs: Type.Number(),
      queueLength: Type.Integer({ minimum: 0 }),
      runningRequests: Type.Integer({ minimum: 0 }),
      kvCacheUsedFraction: Type.Number({ minimum: 0, maximum: 1 }),
      kvCacheUsedBytes: Type.Number({ minimum: 0 }),
      ttftMs: Type.Number({ minimum: 0 }),
      tpotMs: Type.Number({ minimum: 0 }),
      tokensPerSecond: Type.Number({ minimum: 0 }),
      // Optional so messages from agents and workers that predate them still decode (see worker.proto LoadReport).
      kvBlocksTotal: Type.Optional(Type.Integer({ minimum: 0 })),
      kvBlocksUsed: Type.Optional(Type.Integer({ minimum: 0 })),
      blockSizeTokens: Type.Optional(Type.Integer({ minimum: 0 })),
      waitingDemandBlocks: Type.Optional(Type.Integer({ minimum: 0 })),
      headOfLineDemandBlocks: Type.Optional(Type.Integer({ minimum: 0 })),
      role: Type.Optional(Type.String()),
      model: Type.Optional(Type.String()),
      tp: Type.Optional(Type.Integer({ minimum: 0 })),
      pp: Type.Optional(Type.Integer({ minimum: 0 })),
      gpuModel: Type.Optional(Type.String()),
      preemptionsTotal: Type.Optional(Type.Integer({ minimum: 0 })),
      heldKvBlocks: Type.Optional(Type.Integer({ minimum: 0 })),
      outstandingPromptTokens: Type.Optional(Type.Integer({ minimum: 0 })),
      draining: Type.Optional(Type.Boolean()),
      // Serving instances with an engine endpoint (names as in common/src/engine-api.ts InstanceLoadFields).
      engineUrl: Type.Optional(Type.String()),
      servingDeployment: Type.Optional(Type.String()),
      highPriorityRunning: Type.Optional(Type.Integer({ minimum: 0 })),
      // Live migration (worker.proto LoadReport 27-28; the operator's migration policy reads them).
      migrationCandidates: Type.Optional(
        Type.Array(
          Type.Object({
            requestId: Type.String(),
            blocks: Type.Integer({ minimum: 0 }),
            priority: Type.Number(),
            outputTokens: Type.Integer({ minimum: 0 }),
          }),
        ),
      ),
      migrating: Type.Optional(Type.Union([Type.Literal("in"), Type.Literal("out")])),
      // The serving engine and its P/D hand-off (worker.proto LoadReport 29-30; absent: the reference instance API).
      engine: Type.Optional(Type.String()),
      disaggregationBootstrapPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    }),
  ),
});
export type LoadMessage = Static<typeof LoadMessage>;
export type LoadEntry = LoadMessage["reports"][number];

export const WorkerEvent = {
  registered: "registered",
  missing: "missing",
  recovered: "recovered",
  removed: "removed",
} as const;
export type WorkerEvent = (typeof WorkerEvent)[keyof typeof WorkerEvent];

export const WorkersMessage = Type.Object({
  schema: Type.Literal(Schema.workers),
  node: Type.String(),
  sentUnixMs: Type.Number(),
  event: Type.Union(Object.values(WorkerEvent).map((e) => Type.Literal(e))),
  workerId: Type.String(),
  podNamespace: Type.String(),
  podName: Type.String(),
  lastHeartbeatUnixMs: Type.Number(),
});
export type WorkersMessage = Static<typeof WorkersMessage>;

export const WorkerEventKind = { checkpoint: "checkpoint" } as const;
export type WorkerEventKind = (typeof WorkerEventKind)[keyof typeof WorkerEventKind];

/**
 * One event of one worker, one message each. `checkpoint`: the worker's checkpoint of `step` became durable at
 * `unixMs` under `path`; the operator raises the TrainingJob's status.lastCheckpointStep to it.
 */
export const CheckpointEvent = Type.Object({
  kind: Type.Literal(WorkerEventKind.checkpoint),
  workerId: Type.String({ minLength: 1 }),
  podNamespace: Type.String({ minLength: 1 }),
  podName: Type.String({ minLength: 1 }),
  /** Training rank of the reporting worker (-1 when it has none). */
  rank: Type.Integer({ minimum: -1 }),
  step: Type.Integer({ minimum: 0 }),
  unixMs: Type.Integer({ minimum: 0 }),
  path: Type.String(),
});
export type CheckpointEvent = Static<typeof CheckpointEvent>;

export const WorkerEventsMessage = Type.Object({
  schema: Type.Literal(Schema.workerEvents),
  node: Type.String(),
  sentUnixMs: Type.Number(),
  event: CheckpointEvent,
});
export type WorkerEventsMessage = Static<typeof WorkerEventsMessage>;

const checkers = {
  collectives: TypeCompiler.Compile(CollectivesMessage),
  rdma: TypeCompiler.Compile(RdmaMessage),
  load: TypeCompiler.Compile(LoadMessage),
  workers: TypeCompiler.Compile(WorkersMessage),
  workerEvents: TypeCompiler.Compile(WorkerEventsMessage),
};

/** Why a message was refused: above the size bound, not JSON, another schema (version), or a shape mismatch. */
export const DecodeFailure = {
  tooLarge: "too_large",
  notJson: "not_json",
  wrongSchema: "wrong_schema",
  invalid: "invalid",
} as const;
export type DecodeFailure = (typeof DecodeFailure)[keyof typeof DecodeFailure];

export class TelemetryDecodeError extends Error {
  override name = "TelemetryDecodeError";
  constructor(
    readonly subject: string,
    message: string,
    readonly reason: DecodeFailure = DecodeFailure.invalid,
    options?: ErrorOptions,
  ) {
    super(`message on ${subject}: ${message}`, options);
  }
}

/**
 * The largest message any reader parses. Agents publish at most NATS' max_payload (1 MiB by default; the
 * publisher splits batches below it), so this leaves room for a server configured with up to 8 MiB. A bigger
 * message is refused before JSON.parse, whose memory is several times the input: a reader's memory per message
 * stays bounded whatever a publisher sends.
 */
export const MAX_TELEMETRY_MESSAGE_BYTES = 8 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(message: object): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

function parse(subject: string, data: Uint8Array, maxBytes: number): unknown {
  if (data.byteLength > maxBytes) {
    throw new TelemetryDecodeError(
      subject,
      `is ${data.byteLength} bytes, more than the ${maxBytes}-byte limit`,
      DecodeFailure.tooLarge,
    );
  }
  try {
    return JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new TelemetryDecodeError(subject, "is not JSON", DecodeFailure.notJson, { cause: err });
  }
}

interface Messages {
  collectives: CollectivesMessage;
  rdma: RdmaMessage;
  load: LoadMessage;
  workers: WorkersMessage;
  workerEvents: WorkerEventsMessage;
}

function decodeWith<K extends keyof Messages>(
  kind: K,
  subject: string,
  data: Uint8Array,
  maxBytes: number,
): Messages[K] {
  const value = parse(subject, data, maxBytes);
  const checker = checkers[kind];
  if (!checker.Check(value)) {
    // Another version of the message says so by name, rather than by the first field that happens to differ.
    const schema =
      value !== null && typeof value === "object" && !Array.isArray(value)
        ? (value as { schema?: unknown }).schema
        : undefined;
    if (typeof schema === "string" && schema !== Schema[kind]) {
      throw new TelemetryDecodeError(
        subject,
        `has schema ${JSON.stringify(schema.slice(0, 64))}, this reader understands ${Schema[kind]}`,
        DecodeFailure.wrongSchema,
      );
    }
    const first = checker.Errors(value).First();
    throw new TelemetryDecodeError(
      subject,
      `does not match ${Schema[kind]}: ${first ? `${first.path} ${first.message}` : "invalid"}`,
      DecodeFailure.invalid,
    );
  }
  return value as Messages[K];
}

export const decodeRdma = (subject: string, data: Uint8Array, maxBytes = MAX_TELEMETRY_MESSAGE_BYTES): RdmaMessage =>
  decodeWith("rdma", subject, data, maxBytes);
export const decodeLoad = (subject: string, data: Uint8Array, maxBytes = MAX_TELEMETRY_MESSAGE_BYTES): LoadMessage =>
  decodeWith("load", subject, data, maxBytes);
export const decodeWorkers = (
  subject: string,
  data: Uint8Array,
  maxBytes = MAX_TELEMETRY_MESSAGE_BYTES,
): WorkersMessage => decodeWith("workers", subject, data, maxBytes);
export const decodeWorkerEvents = (
  subject: string,
  data: Uint8Array,
  maxBytes = MAX_TELEMETRY_MESSAGE_BYTES,
): WorkerEventsMessage => decodeWith("workerEvents", subject, data, maxBytes);

type CollectiveTuple = Static<typeof CollectiveTuple>;

export function collectiveToTuple(r: CollectiveRecord): CollectiveTuple {
  const peers: number[] = [];
  for (const p of r.peers) peers.push(p.peerRank, p.bytes, p.startUnixUs, p.endUnixUs);
  return [r.communicator, r.rank, r.nRanks, r.collective, r.sequence, r.bytes, r.startUnixUs, r.endUnixUs, peers];
}

export function tupleToCollective(t: CollectiveTuple): CollectiveRecord {
  const [communicator, rank, nRanks, collective, sequence, bytes, startUnixUs, endUnixUs, flat] = t;
  const peers = [];
  for (let i = 0; i + 3 < flat.length; i += 4) {
    peers.push({ peerRank: flat[i]!, bytes: flat[i + 1]!, startUnixUs: flat[i + 2]!, endUnixUs: flat[i + 3]! });
  }
  return {
    communicator,
    rank,
    nRanks,
    collective: collective as Collective,
    sequence,
    bytes,
    startUnixUs,
    endUnixUs,
    peers,
  };
}

export interface PodRef {
  podNamespace: string;
  podName: string;
}

/** The CollectivesMessage for these records, as an object (what encodeCollectives writes, byte for byte, as JSON). */
export function collectivesMessage(
  node: string,
  records: readonly CollectiveRecord[],
  sentUnixMs: number,
  droppedSincePrevious: number,
  source?: PodRef,
): CollectivesMessage {
  return {
    schema: Schema.collectives,
    node,
    sentUnixMs,
    droppedSincePrevious,
    ...(source ? { podNamespace: source.podNamespace, podName: source.podName } : {}),
    records: records.map(collectiveToTuple),
  };
}

const collectivesWriter = new JsonBytesWriter();
const COMMA = 0x2c;
const OPEN = 0x5b;
const CLOSE = 0x5d;

/**
 * Writes the same bytes as `encodeJson(collectivesMessage(...))` (subjects.test.ts checks it) without building the
 * tuples and one big string first: the agent encodes every collective record it publishes. Strings are escaped by
 * JSON.stringify once per distinct value in a row (a batch is mostly one communicator and one collective).
 */
export function encodeCollectives(
  node: string,
  records: readonly CollectiveRecord[],
  sentUnixMs: number,
  droppedSincePrevious: number,
  source?: PodRef,
): Uint8Array {
  const w = collectivesWriter;
  w.bytes(
    encoder.encode(`{"schema":${JSON.stringify(Schema.collectives)},"node":${JSON.stringify(node)},"sentUnixMs":`),
  );
  w.reserve(MAX_NUMBER_BYTES);
  w.number(sentUnixMs);
  w.bytes(DROPPED_KEY);
  w.reserve(MAX_NUMBER_BYTES);
  w.number(droppedSincePrevious);
  if (source)
    w.bytes(
      encoder.encode(
        `,"podNamespace":${JSON.stringify(source.podNamespace)},"podName":${JSON.stringify(source.podName)}`,
      ),
    );
  w.bytes(RECORDS_KEY);
  let lastCommunicator: string | undefined;
  let communicatorJson: Uint8Array = new Uint8Array(0);
  let lastCollective: string | undefined;
  let collectiveJson: Uint8Array = new Uint8Array(0);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.communicator !== lastCommunicator) {
      lastCommunicator = r.communicator;
      communicatorJson = jsonBytes(r.communicator);
    }
    if (r.collective !== lastCollective) {
      lastCollective = r.collective;
      collectiveJson = jsonBytes(r.collective);
    }
    const peers = r.peers;
    // Every byte of the record but its two strings: 8 numbers, 4 per peer, brackets and commas.
    w.reserve(communicatorJson.length + collectiveJson.length + (8 + 4 * peers.length) * (MAX_NUMBER_BYTES + 1) + 8);
    if (i > 0) w.byte(COMMA);
    w.byte(OPEN);
    w.bytes(communicatorJson);
    w.byte(COMMA);
    w.number(r.rank);
    w.byte(COMMA);
    w.number(r.nRanks);
    w.byte(COMMA);
    w.bytes(collectiveJson);
    w.byte(COMMA);
    w.number(r.sequence);
    w.byte(COMMA);
    w.number(r.bytes);
    w.byte(COMMA);
    w.number(r.startUnixUs);
    w.byte(COMMA);
    w.number(r.endUnixUs);
    w.byte(COMMA);
    w.byte(OPEN);
    for (let j = 0; j < peers.length; j++) {
      const p = peers[j]!;
      if (j > 0) w.byte(COMMA);
      w.number(p.peerRank);
      w.byte(COMMA);
      w.number(p.bytes);
      w.byte(COMMA);
      w.number(p.startUnixUs);
      w.byte(COMMA);
      w.number(p.endUnixUs);
    }
    w.byte(CLOSE);
    w.byte(CLOSE);
  }
  w.reserve(2);
  w.byte(CLOSE);
  w.byte(0x7d);
  return w.take();
}

const DROPPED_KEY = encoder.encode(`,"droppedSincePrevious":`);
const RECORDS_KEY = encoder.encode(`,"records":[`);

export interface DecodedCollectives {
  node: string;
  sentUnixMs: number;
  droppedSincePrevious: number;
  source: PodRef | undefined;
  records: CollectiveRecord[];
}

export function decodeCollectives(
  subject: string,
  data: Uint8Array,
  maxBytes = MAX_TELEMETRY_MESSAGE_BYTES,
): DecodedCollectives {
  const message = decodeWith("collectives", subject, data, maxBytes);
  const source =
    message.podNamespace !== undefined && message.podName !== undefined
      ? { podNamespace: message.podNamespace, podName: message.podName }
      : undefined;
  return {
    node: message.node,
    sentUnixMs: message.sentUnixMs,
    droppedSincePrevious: message.droppedSincePrevious,
    source,
    records: message.records.map(tupleToCollective),
  };
}
