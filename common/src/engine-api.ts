/**
 * The instance contract: what every serving instance (simulated by the agent, the Python reference worker, or the
 * test instance under test/support/) speaks over HTTP, and what the gateway sends it. docs/engine-api.md is the
 * prose version; this module is the one source for paths, headers, bodies and their validation.
 *
 * Instances take pre-dispatched requests: the gateway has already picked the instance, turned chat messages into a
 * prompt and bounded max_tokens. Bodies use OpenAI's snake_case so a colocated instance is a plain OpenAI
 * completions server.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { EngineKind } from "../../crds/src/serving-deployment.js";

export const EnginePath = {
  health: "/health",
  completions: "/v1/completions",
  prefill: "/gpufleet/v1/prefill",
  decode: "/gpufleet/v1/decode",
  /** GET pulls a prefilled request's KV (decode side calls it on the prefill instance); DELETE frees it. */
  kvPrefix: "/gpufleet/v1/kv/",
  /** Live migration between instances (docs/engine-api.md "Live migration"): POST pre-allocates on the destination. */
  migrations: "/gpufleet/v1/migrations",
} as const;

/** `/gpufleet/v1/migrations/<id>[/<step>]`: stages, commit, stream (the resume stream) or, without a step, DELETE. */
export function migrationPath(requestId: string, step?: "stages" | "commit" | "stream"): string {
  return `${EnginePath.migrations}/${encodeURIComponent(requestId)}${step ? `/${step}` : ""}`;
}

export function kvPath(requestId: string): string {
  return `${EnginePath.kvPrefix}${encodeURIComponent(requestId)}`;
}

export const EngineHeader = {
  /** Set by the gateway on every upstream call; instances echo it and log it. */
  requestId: "x-request-id",
  /** `high` | `normal`; the gateway forwards the client's value so instances can count high-priority load. */
  priority: "x-gpufleet-priority",
} as const;

export const Priority = { high: "high", normal: "normal" } as const;
export type Priority = (typeof Priority)[keyof typeof Priority];

export function parsePriority(value: string | undefined): Priority | undefined {
  if (value === undefined || value === "") return Priority.normal;
  const lower = value.trim().toLowerCase();
  return lower === Priority.high || lower === Priority.normal ? lower : undefined;
}

export const InstanceRole = { colocated: "colocated", prefill: "prefill", decode: "decode" } as const;
export type InstanceRole = (typeof InstanceRole)[keyof typeof InstanceRole];

/** Bytes per token of the stand-in tokenizer that simulated instances and the gateway's dispatch estimate use. */
export const ESTIMATE_BYTES_PER_TOKEN = 4;

/** Prompt length in tokens as estimated before an instance tokenizes it (UTF-8 bytes / 4, at least 1). */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(Buffer.byteLength(text, "utf8") / ESTIMATE_BYTES_PER_TOKEN));
}

const RequestId = Type.String({ minLength: 1, maxLength: 200 });

/** POST /v1/completions on a colocated or decode-capable instance. */
export const EngineCompletionRequest = Type.Object({
  model: Type.String({ minLength: 1 }),
  prompt: Type.String({ minLength: 1 }),
  max_tokens: Type.Integer({ minimum: 1 }),
  stream: Type.Optional(Type.Boolean()),
  temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
  top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  stop: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 4 })])),
  seed: Type.Optional(Type.Integer()),
});
export type EngineCompletionRequest = Static<typeof EngineCompletionRequest>;

/** Where a prefilled request's KV lives, returned by the prefill instance and handed to the decode instance. */
export const KvHandle = Type.Object({
  /** engineUrl of the prefill instance that holds the KV. */
  source_url: Type.String({ minLength: 1 }),
  /** That instance's workerId. */
  source_instance: Type.String({ minLength: 1 }),
  request_id: RequestId,
  blocks: Type.Integer({ minimum: 0 }),
  bytes: Type.Integer({ minimum: 0 }),
  block_size_tokens: Type.Integer({ minimum: 1 }),
});
export type KvHandle = Static<typeof KvHandle>;

/** POST /gpufleet/v1/prefill. */
export const PrefillRequest = Type.Object({
  request_id: RequestId,
  model: Type.String({ minLength: 1 }),
  prompt: Type.String({ minLength: 1 }),
  max_tokens: Type.Integer({ minimum: 1 }),
});
export type PrefillRequest = Static<typeof PrefillRequest>;

export const PrefillResponse = Type.Object({
  request_id: RequestId,
  prompt_tokens: Type.Integer({ minimum: 1 }),
  first_token: Type.Object({ text: Type.String() }),
  /** The first token already ended the request (max_tokens 1 or a stop): no decode needed, KV already freed. */
  finish_reason: Type.Union([Type.Null(), Type.Literal("stop"), Type.Literal("length")]),
  kv: KvHandle,
});
export type PrefillResponse = Static<typeof PrefillResponse>;

/** POST /gpufleet/v1/decode: pulls `kv` from its source, then streams tokens 2..max_tokens. */
export const DecodeRequest = Type.Object({
  request_id: RequestId,
  model: Type.String({ minLength: 1 }),
  prompt_tokens: Type.Integer({ minimum: 1 }),
  max_tokens: Type.Integer({ minimum: 1 }),
  first_token: Type.Object({ text: Type.String() }),
  kv: KvHandle,
  stream: Type.Optional(Type.Boolean()),
});
export type DecodeRequest = Static<typeof DecodeRequest>;

export const FinishReason = { stop: "stop", length: "length" } as const;
export type FinishReason = (typeof FinishReason)[keyof typeof FinishReason];

export const Usage = Type.Object({
  prompt_tokens: Type.Integer({ minimum: 0 }),
  completion_tokens: Type.Integer({ minimum: 0 }),
  total_tokens: Type.Integer({ minimum: 0 }),
});
export type Usage = Static<typeof Usage>;

const FinishReasonSchema = Type.Union([Type.Null(), Type.Literal("stop"), Type.Literal("length")]);

/**
 * One SSE chunk of a streamed completion (`data: <json>`), OpenAI's text_completion chunk. The last chunk carries
 * finish_reason and usage; `data: [DONE]` follows. A failure after the headers is one `data: {"error": ...}` event,
 * then the stream closes without [DONE].
 */
export const EngineChunk = Type.Object({
  id: Type.String(),
  object: Type.Literal("text_completion"),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(Type.Object({ index: Type.Integer(), text: Type.String(), finish_reason: FinishReasonSchema })),
  usage: Type.Optional(Type.Union([Usage, Type.Null()])),
});
export type EngineChunk = Static<typeof EngineChunk>;

/** Non-streamed completion answer (same object with the whole text). */
export const EngineCompletion = EngineChunk;
export type EngineCompletion = EngineChunk;

/** OpenAI's error body, used by instances and the gateway alike. */
export const ErrorBody = Type.Object({
  error: Type.Object({
    message: Type.String(),
    type: Type.String(),
    code: Type.Union([Type.String(), Type.Null()]),
    param: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  }),
});
export type ErrorBody = Static<typeof ErrorBody>;

export const HealthStatus = { ok: "ok", draining: "draining" } as const;
export const HealthResponse = Type.Object({
  status: Type.Union([Type.Literal(HealthStatus.ok), Type.Literal(HealthStatus.draining)]),
  role: Type.Union(Object.values(InstanceRole).map((r) => Type.Literal(r))),
  model: Type.String(),
  instance: Type.String(),
});
export type HealthResponse = Static<typeof HealthResponse>;

/**
 * The fields a serving instance's load report carries beyond today's LoadEntry (common/src/telemetry/subjects.ts),
 * which the gateway needs to route and to compute freeness. The simulated workers add them to their reports; until
 * LoadEntry gains them, the gateway reads them from the same report object (TypeBox objects allow extra keys).
 */
export const InstanceLoadFields = Type.Object({
  /**
   * Base URL the gateway calls, the contract's paths appended (http://host:port, optionally with a path prefix such
   * as the simulated instances' /instances/<pod uid>; no trailing slash, query or fragment).
   */
  engineUrl: Type.String({ pattern: "^https?://[^/?#]+(/[^/?#]+)*$" }),
  /** Served model name: the gateway's model route. */
  model: Type.String({ minLength: 1 }),
  role: Type.Union(Object.values(InstanceRole).map((r) => Type.Literal(r))),
  /** `namespace/name` of the ServingDeployment the pod belongs to. */
  servingDeployment: Type.String({ pattern: "^[^/]+/[^/]+$" }),
  kvBlocksTotal: Type.Integer({ minimum: 1 }),
  kvBlocksUsed: Type.Integer({ minimum: 0 }),
  blockSizeTokens: Type.Integer({ minimum: 1 }),
  /** KV demand of the request at the head of the instance's waiting queue (0 when none). */
  headOfLineDemandBlocks: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Running requests that came with priority high. */
  highPriorityRunning: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Set while the instance is being drained (scale-in, rollout): it takes no new requests. */
  draining: Type.Optional(Type.Boolean()),
  /** Prompt tokens waiting or being prefilled (prefill instances; colocated ones may report it too). */
  outstandingPromptTokens: Type.Optional(Type.Integer({ minimum: 0 })),
  /**
   * The engine serving the instance (spec.engine.kind): it decides which P/D hand-off the gateway speaks
   * (common/src/engine-pd.ts). Absent: `reference`, this contract.
   */
  engine: Type.Optional(Type.Union(Object.values(EngineKind).map((k) => Type.Literal(k)))),
  /** SGLang prefill instances: the port of their KV bootstrap server (`--disaggregation-bootstrap-port`). */
  disaggregationBootstrapPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
});
export type InstanceLoadFields = Static<typeof InstanceLoadFields>;

export type Validation<T> = { ok: true; value: T } | { ok: false; message: string; param: string | null };

function validator<T extends TSchema>(schema: T): (value: unknown) => Validation<Static<T>> {
  const checker = TypeCompiler.Compile(schema);
  return (value) => {
    if (checker.Check(value)) return { ok: true, value };
    const first = checker.Errors(value).First();
    const param = first ? first.path.replace(/^\//, "").replaceAll("/", ".") : "";
    return {
      ok: false,
      message: first ? `${param || "body"}: ${first.message}` : "invalid body",
      param: param || null,
    };
  };
}

export const validateEngineCompletionRequest = validator(EngineCompletionRequest);
export const validatePrefillRequest = validator(PrefillRequest);
export const validatePrefillResponse = validator(PrefillResponse);
export const validateDecodeRequest = validator(DecodeRequest);
export const validateEngineChunk = validator(EngineChunk);
export const validateInstanceLoadFields = validator(InstanceLoadFields);
export const validateErrorBody = validator(ErrorBody);

/**
 * The control event a source instance sends on a request's stream when a live migration committed: the request is
 * now owned by `instance` at `engine_url`, which produces token `next_token_index` (0-based over the whole
 * completion) next; the source then ends its stream without [DONE]. The client of the stream (the gateway) opens
 * `GET {engine_url}` + migrationPath(request_id, "stream") + `?from=<tokens it has>` and continues there.
 */
export const MIGRATED_OBJECT = "gpufleet.migrated";
export const MigratedEvent = Type.Object({
  object: Type.Literal(MIGRATED_OBJECT),
  request_id: RequestId,
  instance: Type.String({ minLength: 1 }),
  engine_url: Type.String({ pattern: "^https?://[^/?#]+(/[^/?#]+)*$" }),
  next_token_index: Type.Integer({ minimum: 1 }),
});
export type MigratedEvent = Static<typeof MigratedEvent>;
export const validateMigratedEvent = validator(MigratedEvent);

/** True for a stream payload that is a migration control event (validate it with validateMigratedEvent). */
export function isMigratedEvent(payload: unknown): boolean {
  return (
    typeof payload === "object" && payload !== null && (payload as { object?: unknown }).object === MIGRATED_OBJECT
  );
}

/** SSE framing shared by instances and the gateway: one `data:` line per event, blank line after. */
export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}
export const SSE_DONE = "data: [DONE]\n\n";
