/**
 * The request bodies of the real engines' prefill→decode hand-off (pure; the protocols are described in
 * common/src/engine-pd.ts, the documented shapes with their sources in fixtures/engine-pd-requests.json). The
 * executor (executor.ts) sends them; both engines take them on their OpenAI `POST /v1/completions`.
 *
 * Every body starts from the client's completion (model, prompt, max_tokens, sampling), as the upstream proxies
 * forward the client's request. The decode half always streams, with `stream_options.include_usage` so its last
 * chunk carries the usage the gateway reports (a whole answer is assembled by the route, as for every instance).
 */
import { randomBytes } from "node:crypto";
import type { Validation } from "../../../common/src/engine-api.js";
import {
  SGLANG_BOOTSTRAP_ROOM_MAX,
  SGLANG_DEFAULT_BOOTSTRAP_PORT,
  VLLM_PREFILL_KV_TRANSFER_PARAMS,
} from "../../../common/src/engine-pd.js";
import type { Sampling } from "../openai/validation.js";

/** What the hand-off needs of a completion. */
export interface HandoffCompletion {
  model: string;
  prompt: string;
  maxTokens: number;
  sampling: Sampling;
}

export type KvTransferParams = Record<string, unknown>;

const completionBody = (c: HandoffCompletion): Record<string, unknown> => ({
  model: c.model,
  prompt: c.prompt,
  max_tokens: c.maxTokens,
  ...c.sampling,
});

const STREAM_WITH_USAGE = { stream: true, stream_options: { include_usage: true } } as const;

/** vLLM prefill half: one token, not streamed, asking the instance to keep the KV for a remote decode. */
export function vllmPrefillBody(c: HandoffCompletion): Record<string, unknown> {
  return { ...completionBody(c), max_tokens: 1, stream: false, kv_transfer_params: VLLM_PREFILL_KV_TRANSFER_PARAMS };
}

/**
 * `kv_transfer_params` of a vLLM prefill answer: where its KV waits (passed to the decode half unchanged), or
 * undefined when the instance gave none; then, as the toy proxy does, the decode half runs the whole request.
 */
export function kvTransferParamsOf(answer: unknown): Validation<KvTransferParams | undefined> {
  if (typeof answer !== "object" || answer === null || Array.isArray(answer))
    return { ok: false, message: "the answer is not a JSON object", param: null };
  const params = (answer as { kv_transfer_params?: unknown }).kv_transfer_params;
  if (params === undefined || params === null) return { ok: true, value: undefined };
  if (typeof params !== "object" || Array.isArray(params))
    return { ok: false, message: "kv_transfer_params is not an object", param: "kv_transfer_params" };
  return { ok: true, value: params as KvTransferParams };
}

/** vLLM decode half: the client's request with the prefill's kv_transfer_params. */
export function vllmDecodeBody(c: HandoffCompletion, params: KvTransferParams | undefined): Record<string, unknown> {
  return { ...completionBody(c), ...STREAM_WITH_USAGE, ...(params ? { kv_transfer_params: params } : {}) };
}

/** Where a SGLang decode instance fetches a request's KV: the prefill instance's bootstrap server, and the room. */
export interface SglangBootstrap {
  host: string;
  port: number;
  room: bigint;
}

/** A bootstrap room as mini_lb draws it: uniform in [0, 2^63 - 1]. */
export function randomBootstrapRoom(bytes: Buffer = randomBytes(8)): bigint {
  return bytes.readBigUInt64BE() & SGLANG_BOOTSTRAP_ROOM_MAX;
}

/**
 * The bootstrap of a request prefilled at `prefillEngineUrl`: its host as mini_lb takes it from the prefill URL
 * (an IPv6 address in brackets), the reported bootstrap port (SGLang's default when the report has none).
 */
export function sglangBootstrap(prefillEngineUrl: string, port: number | undefined, room: bigint): SglangBootstrap {
  return { host: new URL(prefillEngineUrl).hostname, port: port ?? SGLANG_DEFAULT_BOOTSTRAP_PORT, room };
}

/**
 * The one body both SGLang halves get, as JSON text: JSON.stringify has no 64-bit integers, and a Number would
 * round the room, so it is written as its exact digits.
 */
export function sglangBodyJson(c: HandoffCompletion, b: SglangBootstrap): string {
  const json = JSON.stringify({
    ...completionBody(c),
    ...STREAM_WITH_USAGE,
    bootstrap_host: b.host,
    bootstrap_port: b.port,
  });
  return `${json.slice(0, -1)},"bootstrap_room":${b.room.toString()}}`;
}
