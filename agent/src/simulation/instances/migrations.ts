/**
 * The engine API's live-migration messages (docs/engine-api.md "Live migration"): bodies and their validators,
 * the link and lease a destination grants, and the source's client of a destination (HttpMigrationDestination,
 * the MigrationDestination of agent/src/workers/simulated/migration-out.ts over HTTP).
 *
 *   POST   {dst}/gpufleet/v1/migrations              pre-allocate: ReserveBody → 201 ReserveAnswer
 *   POST   {dst}/gpufleet/v1/migrations/<id>/stages  grow the pre-allocation for the next stage: StageBody → 200
 *   POST   {dst}/gpufleet/v1/migrations/<id>/commit  adopt the request: CommitBody → 200
 *   DELETE {dst}/gpufleet/v1/migrations/<id>         abort: free the pre-allocation → 204
 *   GET    {dst}/gpufleet/v1/migrations/<id>/stream?from=N   the request's stream from token N (after a commit)
 *
 * No tensor bytes move in simulation: each stage waits the modelled copy time on the source before the next
 * message, as the decode side waits the prefill hand-off (kv-transfer.ts: the link between the two nodes).
 */
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { migrationPath, EnginePath, type ErrorBody } from "../../../../common/src/engine-api.js";
import type { RefusalCode } from "../../workers/simulated/engine.js";
import { stageMs, type MigrationLink } from "../../workers/simulated/migration.js";
import type { HandedRequest, MigrationDestination, RemoteAnswer } from "../../workers/simulated/migration-out.js";
import type { IncomingMigration } from "../../workers/simulated/engine.js";
import { ErrorCode } from "./errors.js";
import { KvLinkKind, type KvLink, type KvLinkEnd } from "./kv-transfer.js";

const LinkEnd = Type.Object({
  node: Type.String({ minLength: 1 }),
  gpu_model: Type.String({ minLength: 1 }),
  gpus: Type.Integer({ minimum: 1 }),
  nic_gbps_per_gpu: Type.Number({ exclusiveMinimum: 0 }),
});

export const ReserveBody = Type.Object({
  request_id: Type.String({ minLength: 1, maxLength: 200 }),
  model: Type.String({ minLength: 1 }),
  block_size_tokens: Type.Integer({ minimum: 1 }),
  prompt_tokens: Type.Integer({ minimum: 1 }),
  max_output_tokens: Type.Integer({ minimum: 1 }),
  /** KV positions the first stage copies. */
  tokens: Type.Integer({ minimum: 0 }),
  /** Where the source's GPUs are: the destination computes the link between the two from it. */
  source: LinkEnd,
});
export type ReserveBody = Static<typeof ReserveBody>;

export const ReserveAnswer = Type.Object({
  request_id: Type.String(),
  link: Type.Object({
    kind: Type.Union([Type.Literal(KvLinkKind.nvlink), Type.Literal(KvLinkKind.nic)]),
    gbps: Type.Number({ exclusiveMinimum: 0 }),
  }),
  lease_ms: Type.Number({ minimum: 0 }),
});
export type ReserveAnswer = Static<typeof ReserveAnswer>;

export const StageBody = Type.Object({ tokens: Type.Integer({ minimum: 0 }) });
export type StageBody = Static<typeof StageBody>;

export const CommitBody = Type.Object({
  prompt_tokens: Type.Integer({ minimum: 1 }),
  max_output_tokens: Type.Integer({ minimum: 1 }),
  priority: Type.Number(),
  output_tokens: Type.Integer({ minimum: 1 }),
  arrival_ms: Type.Number(),
  first_token_at_ms: Type.Optional(Type.Number()),
});
export type CommitBody = Static<typeof CommitBody>;

function checker<T extends Parameters<typeof TypeCompiler.Compile>[0]>(
  schema: T,
): (value: unknown) => Static<T> | string {
  const compiled = TypeCompiler.Compile(schema);
  return (value) => {
    if (compiled.Check(value)) return value;
    const first = compiled.Errors(value).First();
    return first ? `${first.path || "body"}: ${first.message}` : "invalid body";
  };
}

export const parseReserveBody = checker(ReserveBody);
export const parseStageBody = checker(StageBody);
export const parseCommitBody = checker(CommitBody);
const parseReserveAnswer = checker(ReserveAnswer);

/** The stages' link: the KV link's bandwidth; no modelled message latency (the real HTTP round trips add theirs). */
export function migrationLink(link: KvLink): MigrationLink {
  return { bytesPerSecond: link.GBps * 1e9, latencyMs: 0 };
}

/**
 * How long the destination keeps a pre-allocation of `tokens` positions when it holds `heldTokens` already: the
 * stage that copies the difference, plus `graceMs` for the next message to arrive. Renewed by every stage.
 */
export function leaseMs(
  tokens: number,
  heldTokens: number,
  kvBytesPerToken: number,
  link: KvLink,
  graceMs: number,
): number {
  return stageMs(Math.max(0, tokens - heldTokens), kvBytesPerToken, migrationLink(link)) + graceMs;
}

export function linkEndBody(end: KvLinkEnd): ReserveBody["source"] {
  return { node: end.nodeName, gpu_model: end.gpuModel, gpus: end.gpus, nic_gbps_per_gpu: end.nicGBpsPerGpu };
}

export function linkEndOf(body: ReserveBody["source"]): KvLinkEnd {
  return { nodeName: body.node, gpuModel: body.gpu_model, gpus: body.gpus, nicGBpsPerGpu: body.nic_gbps_per_gpu };
}

/** The engine refusal an error code of this API stands for (the source maps it to its abort code). */
export function refusalOf(code: string | undefined): RefusalCode | "unreachable" {
  switch (code) {
    case ErrorCode.outOfMemory:
      return "out-of-memory";
    case ErrorCode.migrationBusy:
      return "migration-busy";
    case ErrorCode.notMigratable:
    case ErrorCode.migrationNotFound:
      return "not-migratable";
    case ErrorCode.incompatibleKv:
      return "incompatible-kv";
    case ErrorCode.draining:
      return "draining";
    case ErrorCode.duplicateRequest:
      return "duplicate";
    case ErrorCode.contextLengthExceeded:
      return "too-large";
    case ErrorCode.instanceNotFound:
    case ErrorCode.unavailable:
      // The destination instance is not there (its pod went) or its worker is gone.
      return "unreachable";
    default:
      return "invalid";
  }
}

/** The source's client of one destination instance (engineUrl `baseUrl`). Every call is bounded by `timeoutMs`. */
export class HttpMigrationDestination implements MigrationDestination {
  constructor(
    private readonly baseUrl: string,
    private readonly source: KvLinkEnd,
    private readonly timeoutMs = 5_000,
  ) {}

  async reserve(spec: IncomingMigration): Promise<RemoteAnswer<{ link: MigrationLink }>> {
    const body: ReserveBody = {
      request_id: spec.requestId,
      model: spec.model,
      block_size_tokens: spec.blockSizeTokens,
      prompt_tokens: spec.promptTokens,
      max_output_tokens: spec.maxOutputTokens,
      tokens: spec.tokens,
      source: linkEndBody(this.source),
    };
    const answer = await this.call("POST", EnginePath.migrations, body, 201);
    if (!answer.accepted) return answer;
    const parsed = parseReserveAnswer(answer.value);
    if (typeof parsed === "string")
      return { accepted: false, reason: `bad pre-allocation answer: ${parsed}`, code: "invalid" };
    return { accepted: true, link: migrationLink({ kind: parsed.link.kind, GBps: parsed.link.gbps }) };
  }

  async grow(requestId: string, tokens: number): Promise<RemoteAnswer> {
    const body: StageBody = { tokens };
    const answer = await this.call("POST", migrationPath(requestId, "stages"), body, 200);
    return answer.accepted ? { accepted: true } : answer;
  }

  async commit(h: HandedRequest): Promise<RemoteAnswer> {
    const body: CommitBody = {
      prompt_tokens: h.promptTokens,
      max_output_tokens: h.maxOutputTokens,
      priority: h.priority,
      output_tokens: h.outputTokens,
      arrival_ms: h.arrivalMs,
      ...(h.firstTokenAtMs !== undefined ? { first_token_at_ms: h.firstTokenAtMs } : {}),
    };
    const answer = await this.call("POST", migrationPath(h.requestId, "commit"), body, 200);
    return answer.accepted ? { accepted: true } : answer;
  }

  async release(requestId: string): Promise<void> {
    await this.call("DELETE", migrationPath(requestId), undefined, 204);
  }

  private async call(
    method: string,
    path: string,
    body: unknown,
    expect: number,
  ): Promise<RemoteAnswer<{ value: unknown }>> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: JSON.stringify(body) } : {}),
      });
    } catch (err) {
      return {
        accepted: false,
        reason: `${method} ${this.baseUrl}${path} failed: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`,
        code: "unreachable",
      };
    }
    const text = await response.text().catch(() => "");
    let value: unknown;
    try {
      value = text ? JSON.parse(text) : undefined;
    } catch {
      value = undefined;
    }
    if (response.status === expect) return { accepted: true, value };
    const error = (value as Partial<ErrorBody> | undefined)?.error;
    return {
      accepted: false,
      reason: `${method} ${path} answered ${response.status}: ${error?.message ?? text.slice(0, 200)}`,
      code: refusalOf(error?.code ?? undefined),
    };
  }
}
