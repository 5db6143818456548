/**
 * Client bodies of /v1/completions and /v1/chat/completions (an OpenAI-compatible subset), validated at the edge
 * and normalised to one request the executor runs. What the subset leaves out is refused with 400 naming the
 * parameter (n > 1, several prompts, token-id prompts, non-text content parts), never silently ignored.
 */
import { Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { badRequest, type GatewayError } from "./errors.js";
import { chatPrompt, type ChatMessage } from "./chat-template.js";

export const Endpoint = { completions: "completions", chat: "chat" } as const;
export type Endpoint = (typeof Endpoint)[keyof typeof Endpoint];

export interface Sampling {
  temperature?: number;
  top_p?: number;
  stop?: string | string[];
  seed?: number;
}

export interface NormalizedRequest {
  endpoint: Endpoint;
  model: string;
  prompt: string;
  maxTokens: number;
  stream: boolean;
  includeUsage: boolean;
  sampling: Sampling;
}

export interface ValidationLimits {
  maxTokensLimit: number;
  defaultMaxTokens: number;
}

const Common = {
  model: Type.String({ minLength: 1 }),
  stream: Type.Optional(Type.Union([Type.Boolean(), Type.Null()])),
  stream_options: Type.Optional(
    Type.Union([Type.Null(), Type.Object({ include_usage: Type.Optional(Type.Boolean()) })]),
  ),
  temperature: Type.Optional(Type.Union([Type.Null(), Type.Number({ minimum: 0, maximum: 2 })])),
  top_p: Type.Optional(Type.Union([Type.Null(), Type.Number({ exclusiveMinimum: 0, maximum: 1 })])),
  stop: Type.Optional(Type.Union([Type.Null(), Type.String(), Type.Array(Type.String(), { maxItems: 4 })])),
  seed: Type.Optional(Type.Union([Type.Null(), Type.Integer()])),
  n: Type.Optional(Type.Union([Type.Null(), Type.Literal(1)])),
  max_tokens: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 1 })])),
};

const CompletionBody = Type.Object({
  ...Common,
  prompt: Type.Union([Type.String({ minLength: 1 }), Type.Tuple([Type.String({ minLength: 1 })])]),
});

const ContentPart = Type.Object({ type: Type.Literal("text"), text: Type.String() });
const ChatBody = Type.Object({
  ...Common,
  max_completion_tokens: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 1 })])),
  messages: Type.Array(
    Type.Object({
      role: Type.Union([
        Type.Literal("system"),
        Type.Literal("developer"),
        Type.Literal("user"),
        Type.Literal("assistant"),
      ]),
      content: Type.Union([Type.String(), Type.Array(ContentPart, { minItems: 1 })]),
    }),
    { minItems: 1 },
  ),
});

const checkers = { completions: TypeCompiler.Compile(CompletionBody), chat: TypeCompiler.Compile(ChatBody) };

export type Parsed = { ok: true; request: NormalizedRequest } | { ok: false; error: GatewayError };

function firstError(endpoint: Endpoint, body: unknown): GatewayError {
  const first = checkers[endpoint].Errors(body).First();
  if (!first) return badRequest("invalid request body");
  const param = first.path.replace(/^\//, "").replaceAll("/", ".");
  return badRequest(`${param || "body"}: ${first.message}`, param || null);
}

function sampling(body: {
  temperature?: number | null;
  top_p?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
}): Sampling {
  const out: Sampling = {};
  if (body.temperature != null) out.temperature = body.temperature;
  if (body.top_p != null) out.top_p = body.top_p;
  if (body.stop != null) out.stop = body.stop;
  if (body.seed != null) out.seed = body.seed;
  return out;
}

function maxTokens(
  requested: number | null | undefined,
  param: string,
  limits: ValidationLimits,
): number | GatewayError {
  const value = requested ?? limits.defaultMaxTokens;
  if (value > limits.maxTokensLimit)
    return badRequest(`${param} must be at most ${limits.maxTokensLimit} (got ${value})`, param);
  return value;
}

export function parseRequest(endpoint: Endpoint, body: unknown, limits: ValidationLimits): Parsed {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return { ok: false, error: badRequest("the body must be a JSON object") };
  if (endpoint === Endpoint.completions) {
    if (!checkers.completions.Check(body)) return { ok: false, error: firstError(endpoint, body) };
    const tokens = maxTokens(body.max_tokens, "max_tokens", limits);
    if (typeof tokens !== "number") return { ok: false, error: tokens };
    const prompt = typeof body.prompt === "string" ? body.prompt : body.prompt[0];
    return {
      ok: true,
      request: {
        endpoint,
        model: body.model,
        prompt,
        maxTokens: tokens,
        stream: body.stream === true,
        includeUsage: body.stream_options?.include_usage === true,
        sampling: sampling(body),
      },
    };
  }
  if (!checkers.chat.Check(body)) return { ok: false, error: firstError(endpoint, body) };
  const param = body.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
  const tokens = maxTokens(body.max_completion_tokens ?? body.max_tokens, param, limits);
  if (typeof tokens !== "number") return { ok: false, error: tokens };
  const messages: ChatMessage[] = body.messages.map((m) => ({
    role: m.role,
    content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join("\n"),
  }));
  return {
    ok: true,
    request: {
      endpoint,
      model: body.model,
      prompt: chatPrompt(messages),
      maxTokens: tokens,
      stream: body.stream === true,
      includeUsage: body.stream_options?.include_usage === true,
      sampling: sampling(body),
    },
  };
}
