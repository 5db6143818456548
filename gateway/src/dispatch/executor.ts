/**
 * Runs one completion: picks instances with the dispatch policy (common/src/scheduler/), calls them, retries on
 * another instance when one fails before any token reached the consumer, and yields tokens. Colocated routes use
 * one instance; disaggregated routes prefill on a prefill instance, then decode on a decode instance that pulls
 * the KV from it (docs/engine-api.md).
 *
 * Retry rules: an unreachable, timed-out, failing or overloaded instance is skipped and the next best one tried, up
 * to maxAttempts per phase. Once a token has been yielded the stream cannot be replayed elsewhere without duplicating
 * tokens, so a later failure ends the request with an error (the route turns it into an SSE error event). Non-stream
 * colocated requests have sent nothing yet, so they are retried whole (a `reset` event drops the partial text).
 */
import { EnginePath, validateEngineChunk, validatePrefillResponse, type EngineChunk, type FinishReason, type InstanceRole, type PrefillResponse, type Priority, type Usage } from "../../../common/src/engine-api.js";
import type { Candidate, DispatchPolicyName } from "../../../common/src/scheduler/dispatch.js";
import type { FreenessConfig } from "../../../common/src/scheduler/freeness.js";
import { ErrorCode, GatewayError } from "../openai/errors.js";
import type { Sampling } from "../openai/validation.js";
import type { InstanceView } from "../instances/view.js";
import type { GatewayMetrics } from "../metrics.js";
import { Dispatcher } from "./dispatcher.js";
import { CallCancelledError, postEngine, UpstreamError, UpstreamFailure, type UpstreamTimeouts } from "./upstream.js";

export interface ExecutorConfig {
  dispatchPolicy: DispatchPolicyName;
  freeness: FreenessConfig;
  maxAttempts: number;
  maxQueuedPerInstance: number;
  retryAfterS: number;
  timeouts: UpstreamTimeouts;
}

export interface Completion {
  requestId: string;
  model: string;
  prompt: string;
  promptTokens: number;
  maxTokens: number;
  priority: Priority;
  sampling: Sampling;
  /** Whether tokens go to the client as they come (then no retry after the first token). */
  stream: boolean;
}

export type CompletionEvent =
  | { type: "instance"; role: InstanceRole; instanceId: string }
  | { type: "token"; text: string }
  | { type: "reset" }
  | { type: "done"; finishReason: FinishReason; usage: Usage };

export class DispatchExecutor {
  private readonly dispatcher: Dispatcher;

  constructor(private readonly deps: { view: InstanceView; config: ExecutorConfig; metrics: GatewayMetrics; now: () => number }) {
    this.dispatcher = new Dispatcher({ view: deps.view, config: deps.config, metrics: deps.metrics });
  }

  /** The instance for the next attempt, reserved; undefined when every live instance was tried. */
  private choose(c: Completion, role: InstanceRole, tried: ReadonlySet<string>): Candidate | undefined {
    return this.dispatcher.choose(c, role, tried, this.deps.now());
  }

  private overloaded(message: string): GatewayError {
    return new GatewayError(429, ErrorCode.overloaded, message, { retryAfterS: this.deps.config.retryAfterS });
  }

  private unavailable(message: string, cause?: unknown): GatewayError {
    return new GatewayError(503, ErrorCode.noInstances, message, { retryAfterS: this.deps.config.retryAfterS }, { cause });
  }

  private url(instanceId: string, path: string): string {
    const report = this.deps.view.report(instanceId);
    if (!report) throw new UpstreamError(UpstreamFailure.unreachable, instanceId, "instance left the view");
    return `${report.engineUrl}${path}`;
  }

  /** After a failed attempt: remember the instance, count the retry, and say whether to try another. */
  private onAttemptFailed(c: Completion, role: InstanceRole, instanceId: string, error: unknown): UpstreamError {
    if (error instanceof CallCancelledError) throw error;
    const upstream = error instanceof UpstreamError ? error : new UpstreamError(UpstreamFailure.failed, instanceId, "bad answer", undefined, { cause: error });
    if (upstream.reason === UpstreamFailure.rejected) throw new GatewayError(400, ErrorCode.invalidRequest, `the instance refused the request: ${upstream.message}`, {}, { cause: upstream });
    if (upstream.reason !== UpstreamFailure.overloaded) this.deps.view.markSuspect(instanceId, this.deps.now());
    this.deps.metrics.upstreamRetriesTotal.inc({ model: c.model, role, reason: upstream.reason === UpstreamFailure.kvGone ? UpstreamFailure.failed : upstream.reason });
    return upstream;
  }

  private exhausted(c: Completion, role: InstanceRole, failures: UpstreamError[]): GatewayError {
    if (failures.length === 0) return this.unavailable(`no live ${role} instance serves '${c.model}'`);
    if (failures.every((f) => f.reason === UpstreamFailure.overloaded)) return this.overloaded(`every ${role} instance of '${c.model}' tried is overloaded`);
    const last = failures[failures.length - 1]!;
    return new GatewayError(503, ErrorCode.upstreamFailed, `${failures.length} ${role} instance(s) of '${c.model}' failed; last: ${last.message}`, { retryAfterS: this.deps.config.retryAfterS }, { cause: last });
  }

  async *run(c: Completion, signal: AbortSignal, mode: "colocated" | "disaggregated"): AsyncGenerator<CompletionEvent> {
    try {
      if (mode === "colocated") yield* this.colocated(c, signal);
      else yield* this.disaggregated(c, signal);
    } finally {
      this.dispatcher.release(c.requestId);
    }
  }

  private async *colocated(c: Completion, signal: AbortSignal): AsyncGenerator<CompletionEvent> {
    const role = "colocated";
    const tried = new Set<string>();
    const failures: UpstreamError[] = [];
    while (tried.size < this.deps.config.maxAttempts) {
      const chosen = this.choose(c, role, tried);
      if (!chosen) break;
      tried.add(chosen.id);
      let yielded = 0;
      try {
        const call = await postEngine({
          url: this.url(chosen.id, EnginePath.completions),
          body: { model: c.model, prompt: c.prompt, max_tokens: c.maxTokens, stream: true, ...c.sampling },
          requestId: c.requestId,
          priority: c.priority,
          signal,
          timeouts: this.deps.config.timeouts,
        });
        yield { type: "instance", role, instanceId: chosen.id };
        for await (const event of relay(call.events())) {
          if (event.type === "token") yielded += 1;
          yield event;
        }
        return;
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        const failure = this.onAttemptFailed(c, role, chosen.id, error);
        failures.push(failure);
        if (yielded > 0 && c.stream) throw midStream(c, failure);
        if (yielded > 0) yield { type: "reset" };
      }
    }
    throw this.exhausted(c, role, failures);
  }

  private async *disaggregated(c: Completion, signal: AbortSignal): AsyncGenerator<CompletionEvent> {
    // Phase 1: prefill, retried on another prefill instance on any failure (nothing was sent yet).
    const tried = new Set<string>();
    const failures: UpstreamError[] = [];
    let prefilled: { instanceId: string; response: PrefillResponse } | undefined;
    while (!prefilled && tried.size < this.deps.config.maxAttempts) {
      const chosen = this.choose(c, "prefill", tried);
      if (!chosen) break;
      tried.add(chosen.id);
      try {
        const call = await postEngine({
          url: this.url(chosen.id, EnginePath.prefill),
          body: { request_id: c.requestId, model: c.model, prompt: c.prompt, max_tokens: c.maxTokens },
          requestId: c.requestId,
          priority: c.priority,
          signal,
          timeouts: this.deps.config.timeouts,
        });
        const parsed = validatePrefillResponse(await call.json());
        if (!parsed.ok) throw new UpstreamError(UpstreamFailure.failed, chosen.id, `bad prefill answer: ${parsed.message}`);
        prefilled = { instanceId: chosen.id, response: parsed.value };
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        failures.push(this.onAttemptFailed(c, "prefill", chosen.id, error));
      }
    }
    if (!prefilled) throw this.exhausted(c, "prefill", failures);
    const { response } = prefilled;
    yield { type: "instance", role: "prefill", instanceId: prefilled.instanceId };
    yield { type: "token", text: response.first_token.text };
    if (response.finish_reason !== null) {
      yield { type: "done", finishReason: response.finish_reason, usage: { prompt_tokens: response.prompt_tokens, completion_tokens: 1, total_tokens: response.prompt_tokens + 1 } };
      return;
    }
    // Phase 2: decode. Another decode instance is tried only while no decode token was yielded and the KV is
    // still on the prefill instance (a 410 means it is gone: nothing left to decode from).
    this.dispatcher.release(c.requestId);
    const triedDecode = new Set<string>();
    const decodeFailures: UpstreamError[] = [];
    while (triedDecode.size < this.deps.config.maxAttempts) {
      const chosen = this.choose(c, "decode", triedDecode);
      if (!chosen) break;
      triedDecode.add(chosen.id);
      let yielded = 0;
      try {
        const call = await postEngine({
          url: this.url(chosen.id, EnginePath.decode),
          body: { request_id: c.requestId, model: c.model, prompt_tokens: response.prompt_tokens, max_tokens: c.maxTokens, first_token: response.first_token, kv: response.kv, stream: true },
          requestId: c.requestId,
          priority: c.priority,
          signal,
          timeouts: this.deps.config.timeouts,
        });
        yield { type: "instance", role: "decode", instanceId: chosen.id };
        for await (const event of relay(call.events())) {
          if (event.type === "token") yielded += 1;
          yield event;
        }
        return;
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        const failure = this.onAttemptFailed(c, "decode", chosen.id, error);
        decodeFailures.push(failure);
        if (yielded > 0 || failure.reason === UpstreamFailure.kvGone) throw midStream(c, failure);
      }
    }
    const final = this.exhausted(c, "decode", decodeFailures);
    // The first token is out: the client must learn the request failed after it.
    throw c.stream ? midStream(c, final) : final;
  }
}

function midStream(c: Completion, cause: Error): GatewayError {
  return new GatewayError(502, ErrorCode.upstreamFailed, `the instance serving '${c.model}' failed after the response started: ${cause.message}`, {}, { cause });
}

/** Engine chunks to token and done events; a stream that ends without a finish_reason and usage is a failure. */
async function* relay(payloads: AsyncGenerator<unknown>): AsyncGenerator<CompletionEvent> {
  let finished: { finishReason: FinishReason; usage: Usage } | undefined;
  let tokens = 0;
  for await (const payload of payloads) {
    const chunk = validateEngineChunk(payload);
    if (!chunk.ok) throw new UpstreamError(UpstreamFailure.failed, "instance", `bad stream chunk: ${chunk.message}`);
    const choice: EngineChunk["choices"][number] | undefined = chunk.value.choices[0];
    if (choice && choice.text !== "") {
      tokens += 1;
      yield { type: "token", text: choice.text };
    }
    if (choice?.finish_reason) finished = { finishReason: choice.finish_reason, usage: chunk.value.usage ?? { prompt_tokens: 0, completion_tokens: tokens, total_tokens: tokens } };
    else if (chunk.value.usage && finished) finished.usage = chunk.value.usage;
  }
  if (!finished) throw new UpstreamError(UpstreamFailure.failed, "instance", "stream ended without a finish_reason");
  yield { type: "done", ...finished };
}
