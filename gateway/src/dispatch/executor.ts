/**
 * Runs one completion: picks instances with the dispatch policy (common/src/scheduler/), calls them, retries on
 * another instance when one fails before any token reached the consumer, and yields tokens. Colocated routes use
 * one instance; disaggregated routes prefill on a prefill instance, then decode on a decode instance that pulls
 * the KV from it, in the hand-off of the engine serving them: gpufleet's instance API (docs/engine-api.md), or
 * vLLM's and SGLang's own (common/src/engine-pd.ts, docs/engines.md).
 *
 * Retry rules: an unreachable, timed-out, failing or overloaded instance is skipped and the next best one tried, up
 * to maxAttempts per phase. Once a token has been yielded the stream cannot be replayed elsewhere without duplicating
 * tokens, so a later failure ends the request with an error (the route turns it into an SSE error event). Non-stream
 * colocated requests have sent nothing yet, so they are retried whole (a `reset` event drops the partial text).
 *
 * Live migration (docs/engine-api.md "Live migration"): an instance whose request migrated ends its stream with a
 * `migrated` event naming the destination; the executor then opens the destination's resume stream from the next
 * token it has not relayed (tokens are counted over the whole completion: on disaggregated routes the prefill's
 * first token is index 0, so the decode stream's first token is index 1) and keeps relaying, however many times the
 * request moves. The consumer sees one uninterrupted token sequence.
 */
import {
  EnginePath,
  isMigratedEvent,
  migrationPath,
  validateEngineChunk,
  validateMigratedEvent,
  validatePrefillResponse,
  type EngineChunk,
  type FinishReason,
  type InstanceRole,
  type MigratedEvent,
  type PrefillResponse,
  type Priority,
  type Usage,
} from "../../../common/src/engine-api.js";
import type { Candidate, DispatchPolicyName } from "../../../common/src/scheduler/dispatch.js";
import { EngineKind } from "../../../crds/src/serving-deployment.js";
import type { FreenessConfig } from "../../../common/src/scheduler/freeness.js";
import { ErrorCode, GatewayError } from "../openai/errors.js";
import type { Sampling } from "../openai/validation.js";
import type { InstanceView } from "../instances/view.js";
import type { GatewayMetrics } from "../metrics.js";
import { Dispatcher } from "./dispatcher.js";
import {
  kvTransferParamsOf,
  randomBootstrapRoom,
  sglangBodyJson,
  sglangBootstrap,
  vllmDecodeBody,
  vllmPrefillBody,
} from "./engine-handoff.js";
import {
  CallCancelledError,
  getEngineStream,
  postEngine,
  UpstreamError,
  UpstreamFailure,
  type UpstreamCall,
  type UpstreamTimeouts,
} from "./upstream.js";

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

  constructor(
    private readonly deps: { view: InstanceView; config: ExecutorConfig; metrics: GatewayMetrics; now: () => number },
  ) {
    this.dispatcher = new Dispatcher({ view: deps.view, config: deps.config, metrics: deps.metrics });
  }

  /** The instance for the next attempt, reserved; undefined when every live instance (of `engine`) was tried. */
  private choose(
    c: Completion,
    role: InstanceRole,
    tried: ReadonlySet<string>,
    engine?: EngineKind,
  ): Candidate | undefined {
    return this.dispatcher.choose(c, role, tried, this.deps.now(), engine);
  }

  /**
   * The instances one phase tries in turn: `first` (already chosen), then the next best of the same engine that
   * was not tried, up to maxAttempts. Lazy: the next one is chosen (and reserved) only once the caller asks.
   */
  private *inTurn(
    c: Completion,
    role: InstanceRole,
    engine: EngineKind,
    tried: Set<string>,
    first?: Candidate,
  ): Generator<Candidate> {
    let next = first ?? this.choose(c, role, tried, engine);
    while (next && tried.size < this.deps.config.maxAttempts) {
      tried.add(next.id);
      yield next;
      next = tried.size < this.deps.config.maxAttempts ? this.choose(c, role, tried, engine) : undefined;
    }
  }

  /**
   * Prefill on the first instance that answers: `attempt` on each prefill instance of `engine` in turn (nothing was
   * sent to the client yet, so any failure may be retried elsewhere), or the error that says why none did.
   */
  private async prefillInTurn<T>(
    c: Completion,
    engine: EngineKind,
    first: Candidate,
    attempt: (instanceId: string) => Promise<T>,
  ): Promise<{ instanceId: string; value: T }> {
    const failures: UpstreamError[] = [];
    for (const chosen of this.inTurn(c, "prefill", engine, new Set(), first)) {
      try {
        return { instanceId: chosen.id, value: await attempt(chosen.id) };
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        failures.push(this.onAttemptFailed(c, "prefill", chosen.id, error));
      }
    }
    throw this.exhausted(c, "prefill", failures);
  }

  private engineCall(c: Completion, instanceId: string, signal: AbortSignal, body: unknown): Promise<UpstreamCall> {
    return postEngine({
      url: this.url(instanceId, EnginePath.completions),
      body,
      requestId: c.requestId,
      priority: c.priority,
      signal,
      timeouts: this.deps.config.timeouts,
    });
  }

  private overloaded(message: string): GatewayError {
    return new GatewayError(429, ErrorCode.overloaded, message, { retryAfterS: this.deps.config.retryAfterS });
  }

  private unavailable(message: string, cause?: unknown): GatewayError {
    return new GatewayError(
      503,
      ErrorCode.noInstances,
      message,
      { retryAfterS: this.deps.config.retryAfterS },
      { cause },
    );
  }

  private url(instanceId: string, path: string): string {
    const report = this.deps.view.report(instanceId);
    if (!report) throw new UpstreamError(UpstreamFailure.unreachable, instanceId, "instance left the view");
    return `${report.engineUrl}${path}`;
  }

  /** After a failed attempt: remember the instance, count the retry, and say whether to try another. */
  private onAttemptFailed(c: Completion, role: InstanceRole, instanceId: string, error: unknown): UpstreamError {
    if (error instanceof CallCancelledError) throw error;
    const upstream =
      error instanceof UpstreamError
        ? error
        : new UpstreamError(UpstreamFailure.failed, instanceId, "bad answer", undefined, { cause: error });
    if (upstream.reason === UpstreamFailure.rejected)
      throw new GatewayError(
        400,
        ErrorCode.invalidRequest,
        `the instance refused the request: ${upstream.message}`,
        {},
        { cause: upstream },
      );
    if (upstream.reason !== UpstreamFailure.overloaded) this.deps.view.markSuspect(instanceId, this.deps.now());
    this.deps.metrics.upstreamRetriesTotal.inc({
      model: c.model,
      role,
      reason: upstream.reason === UpstreamFailure.kvGone ? UpstreamFailure.failed : upstream.reason,
    });
    return upstream;
  }

  private exhausted(c: Completion, role: InstanceRole, failures: UpstreamError[]): GatewayError {
    if (failures.length === 0) return this.unavailable(`no live ${role} instance serves '${c.model}'`);
    if (failures.every((f) => f.reason === UpstreamFailure.overloaded))
      return this.overloaded(`every ${role} instance of '${c.model}' tried is overloaded`);
    const last = failures[failures.length - 1]!;
    return new GatewayError(
      503,
      ErrorCode.upstreamFailed,
      `${failures.length} ${role} instance(s) of '${c.model}' failed; last: ${last.message}`,
      { retryAfterS: this.deps.config.retryAfterS },
      { cause: last },
    );
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
      const relayed = { tokens: 0 };
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
        yield* this.follow(c, role, call, signal, relayed);
        return;
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        const failure = this.onAttemptFailed(c, role, chosen.id, error);
        failures.push(failure);
        if (relayed.tokens > 0 && c.stream) throw midStream(c, failure);
        if (relayed.tokens > 0) yield { type: "reset" };
      }
    }
    throw this.exhausted(c, role, failures);
  }

  /**
   * Relays one instance's stream and, whenever it ends with a `migrated` event, the destination's resume stream
   * from the next token not yet relayed. `relayed.tokens` counts the completion's tokens relayed so far (the
   * caller's retry rules read it).
   */
  private async *follow(
    c: Completion,
    role: InstanceRole,
    first: UpstreamCall,
    signal: AbortSignal,
    relayed: { tokens: number },
  ): AsyncGenerator<CompletionEvent> {
    let call = first;
    for (;;) {
      let migrated: MigratedEvent | undefined;
      for await (const event of relay(call.events())) {
        if (event.type === "migrated") {
          migrated = event.to;
          break;
        }
        if (event.type === "token") relayed.tokens += 1;
        yield event;
      }
      if (!migrated) return;
      call = await this.resume(c, role, migrated, signal, relayed.tokens);
      yield { type: "instance", role, instanceId: migrated.instance };
    }
  }

  /** Opens the destination's resume stream from token `from` (the first one the consumer does not have). */
  private async resume(
    c: Completion,
    role: InstanceRole,
    to: MigratedEvent,
    signal: AbortSignal,
    from: number,
  ): Promise<UpstreamCall> {
    const failed = (message: string, cause?: unknown) => {
      this.deps.metrics.migrationsFollowedTotal.inc({ model: c.model, role, outcome: "failed" });
      return new UpstreamError(UpstreamFailure.failed, to.engine_url, message, undefined, { cause });
    };
    // The source says where the request went; the gateway follows only to the instance the view knows by that id.
    const known = this.deps.view.report(to.instance);
    if (known && known.engineUrl !== to.engine_url)
      throw failed(`migrated to ${to.instance}, whose engine URL is ${known.engineUrl}, not ${to.engine_url}`);
    // The source stops right after its last token: the destination continues at exactly the tokens relayed.
    if (to.next_token_index !== from)
      throw failed(`the request migrated at token ${to.next_token_index}, but ${from} tokens were relayed`);
    try {
      const call = await getEngineStream({
        url: `${to.engine_url}${migrationPath(c.requestId, "stream")}?from=${from}`,
        requestId: c.requestId,
        priority: c.priority,
        signal,
        timeouts: this.deps.config.timeouts,
      });
      this.deps.metrics.migrationsFollowedTotal.inc({ model: c.model, role, outcome: "followed" });
      return call;
    } catch (error) {
      if (error instanceof CallCancelledError) throw error;
      throw failed(`the resume stream did not open: ${(error as Error).message}`, error);
    }
  }

  /**
   * A disaggregated request speaks the hand-off of the engine serving the prefill instance dispatch picks first;
   * every other instance of the request is of the same engine.
   */
  private async *disaggregated(c: Completion, signal: AbortSignal): AsyncGenerator<CompletionEvent> {
    const first = this.choose(c, "prefill", new Set());
    if (!first) throw this.exhausted(c, "prefill", []);
    const engine = this.deps.view.report(first.id)?.engine ?? EngineKind.reference;
    if (engine === EngineKind.vllm) yield* this.vllmDisaggregated(c, signal, first);
    else if (engine === EngineKind.sglang) yield* this.sglangDisaggregated(c, signal, first);
    else yield* this.referenceDisaggregated(c, signal, first);
  }

  /**
   * vLLM with NixlConnector, as its proxy does it (common/src/engine-pd.ts): a one-token prefill keeps the KV and
   * says where (kv_transfer_params); the decode instance, given them, reads the KV and streams the whole
   * completion. Nothing reaches the consumer before the decode's first token, so a failed prefill is retried on
   * another prefill instance and a decode that failed before its first token on another decode instance (the KV
   * stays on the prefill instance until a decode reads it, or vLLM's abort timeout frees it).
   */
  private async *vllmDisaggregated(
    c: Completion,
    signal: AbortSignal,
    first: Candidate,
  ): AsyncGenerator<CompletionEvent> {
    const prefilled = await this.prefillInTurn(c, EngineKind.vllm, first, async (instanceId) => {
      const call = await this.engineCall(c, instanceId, signal, vllmPrefillBody(c));
      const params = kvTransferParamsOf(await call.json());
      if (!params.ok)
        throw new UpstreamError(UpstreamFailure.failed, instanceId, `bad prefill answer: ${params.message}`);
      return params.value;
    });
    yield { type: "instance", role: "prefill", instanceId: prefilled.instanceId };
    this.dispatcher.release(c.requestId);
    const body = vllmDecodeBody(c, prefilled.value);
    const decodeFailures: UpstreamError[] = [];
    for (const chosen of this.inTurn(c, "decode", EngineKind.vllm, new Set())) {
      const relayed = { tokens: 0 };
      try {
        const call = await this.engineCall(c, chosen.id, signal, body);
        yield { type: "instance", role: "decode", instanceId: chosen.id };
        yield* this.follow(c, "decode", call, signal, relayed);
        return;
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        const failure = this.onAttemptFailed(c, "decode", chosen.id, error);
        decodeFailures.push(failure);
        if (relayed.tokens > 0) throw midStream(c, failure);
      }
    }
    throw this.exhausted(c, "decode", decodeFailures);
  }

  /**
   * SGLang PD disaggregation, as mini_lb and sgl-router do it (common/src/engine-pd.ts): one body, carrying the
   * prefill instance's bootstrap host and port and a fresh room, goes to a prefill and a decode instance at once;
   * the decode instance fetches the KV through the bootstrap server and streams the completion. The prefill half's
   * own answer is read and dropped. Until the decode's first token a failure of either half ends both, and the
   * request is tried again on another pair with a new room (a failed prefill: another prefill instance; a failed
   * decode: another decode instance), up to maxAttempts pairs.
   */
  private async *sglangDisaggregated(
    c: Completion,
    signal: AbortSignal,
    first: Candidate,
  ): AsyncGenerator<CompletionEvent> {
    const failures: { role: "prefill" | "decode"; failure: UpstreamError }[] = [];
    const triedDecode = new Set<string>();
    let noDecode = false;
    for (const prefill of this.inTurn(c, "prefill", EngineKind.sglang, new Set(), first)) {
      const decode = this.choose(c, "decode", triedDecode, EngineKind.sglang);
      if (!decode) {
        noDecode = true;
        break;
      }
      const report = this.deps.view.report(prefill.id);
      if (!report) continue; // left the view since it was chosen
      const body = sglangBodyJson(
        c,
        sglangBootstrap(report.engineUrl, report.disaggregationBootstrapPort, randomBootstrapRoom()),
      );
      // Ends whichever half is still open: the attempt failed, or the decode half finished.
      const halves = new AbortController();
      const both = AbortSignal.any([signal, halves.signal]);
      let decodeStarted = false;
      let prefillFailure: UpstreamError | undefined;
      const prefillHalf = this.drain(c, prefill.id, both, body).then((failure) => {
        // A prefill that fails before the decode produced anything leaves the decode waiting for KV: end it now.
        if (failure && !decodeStarted) {
          prefillFailure = failure;
          halves.abort();
        }
      });
      const relayed = { tokens: 0 };
      try {
        const call = await this.engineCall(c, decode.id, both, body);
        yield { type: "instance", role: "prefill", instanceId: prefill.id };
        yield { type: "instance", role: "decode", instanceId: decode.id };
        for await (const event of this.follow(c, "decode", call, both, relayed)) {
          if (event.type === "token") decodeStarted = true;
          yield event;
        }
        return;
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        if (error instanceof CallCancelledError && prefillFailure && !signal.aborted) {
          failures.push({ role: "prefill", failure: this.onAttemptFailed(c, "prefill", prefill.id, prefillFailure) });
          continue;
        }
        const failure = this.onAttemptFailed(c, "decode", decode.id, error);
        failures.push({ role: "decode", failure });
        triedDecode.add(decode.id);
        if (relayed.tokens > 0) throw midStream(c, failure);
      } finally {
        halves.abort();
        await prefillHalf;
      }
    }
    const last = failures[failures.length - 1];
    if (!last) throw this.exhausted(c, noDecode ? "decode" : "prefill", []);
    throw this.exhausted(
      c,
      last.role,
      failures.filter((f) => f.role === last.role).map((f) => f.failure),
    );
  }

  /** Sends the prefill half of a SGLang pair and reads its answer to the end; resolves with its failure, if any. */
  private async drain(
    c: Completion,
    instanceId: string,
    signal: AbortSignal,
    body: string,
  ): Promise<UpstreamError | undefined> {
    try {
      const call = await this.engineCall(c, instanceId, signal, body);
      for await (const _ of call.events()) {
        // The prefill's own token: the decode half streams the completion.
      }
      return undefined;
    } catch (error) {
      if (error instanceof CallCancelledError) return undefined;
      return error instanceof UpstreamError
        ? error
        : new UpstreamError(UpstreamFailure.failed, instanceId, "bad prefill answer", undefined, { cause: error });
    }
  }

  private async *referenceDisaggregated(
    c: Completion,
    signal: AbortSignal,
    first: Candidate,
  ): AsyncGenerator<CompletionEvent> {
    // Phase 1: prefill, retried on another prefill instance on any failure (nothing was sent yet).
    const prefilled = await this.prefillInTurn(c, EngineKind.reference, first, async (instanceId) => {
      const call = await postEngine({
        url: this.url(instanceId, EnginePath.prefill),
        body: { request_id: c.requestId, model: c.model, prompt: c.prompt, max_tokens: c.maxTokens },
        requestId: c.requestId,
        priority: c.priority,
        signal,
        timeouts: this.deps.config.timeouts,
      });
      const parsed = validatePrefillResponse(await call.json());
      if (!parsed.ok)
        throw new UpstreamError(UpstreamFailure.failed, instanceId, `bad prefill answer: ${parsed.message}`);
      return parsed.value;
    });
    const response: PrefillResponse = prefilled.value;
    yield { type: "instance", role: "prefill", instanceId: prefilled.instanceId };
    yield { type: "token", text: response.first_token.text };
    if (response.finish_reason !== null) {
      yield {
        type: "done",
        finishReason: response.finish_reason,
        usage: {
          prompt_tokens: response.prompt_tokens,
          completion_tokens: 1,
          total_tokens: response.prompt_tokens + 1,
        },
      };
      return;
    }
    // Phase 2: decode. Another decode instance is tried only while no decode token was yielded and the KV is
    // still on the prefill instance (a 410 means it is gone: nothing left to decode from).
    this.dispatcher.release(c.requestId);
    const decodeFailures: UpstreamError[] = [];
    for (const chosen of this.inTurn(c, "decode", EngineKind.reference, new Set())) {
      // The prefill's first token is index 0 of the completion: the decode stream's tokens start at 1.
      const relayed = { tokens: 1 };
      try {
        const call = await postEngine({
          url: this.url(chosen.id, EnginePath.decode),
          body: {
            request_id: c.requestId,
            model: c.model,
            prompt_tokens: response.prompt_tokens,
            max_tokens: c.maxTokens,
            first_token: response.first_token,
            kv: response.kv,
            stream: true,
          },
          requestId: c.requestId,
          priority: c.priority,
          signal,
          timeouts: this.deps.config.timeouts,
        });
        yield { type: "instance", role: "decode", instanceId: chosen.id };
        yield* this.follow(c, "decode", call, signal, relayed);
        return;
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        const failure = this.onAttemptFailed(c, "decode", chosen.id, error);
        decodeFailures.push(failure);
        if (relayed.tokens > 1 || failure.reason === UpstreamFailure.kvGone) throw midStream(c, failure);
      }
    }
    const final = this.exhausted(c, "decode", decodeFailures);
    // The first token is out: the client must learn the request failed after it.
    throw c.stream ? midStream(c, final) : final;
  }
}

function midStream(c: Completion, cause: Error): GatewayError {
  return new GatewayError(
    502,
    ErrorCode.upstreamFailed,
    `the instance serving '${c.model}' failed after the response started: ${cause.message}`,
    {},
    { cause },
  );
}

/**
 * Engine chunks to token and done events; a stream that ends without a finish_reason and usage is a failure. A
 * `migrated` control event ends the relay of this stream with a `migrated` event (the caller follows it).
 */
async function* relay(
  payloads: AsyncGenerator<unknown>,
): AsyncGenerator<CompletionEvent | { type: "migrated"; to: MigratedEvent }> {
  let finished: { finishReason: FinishReason; usage: Usage } | undefined;
  let tokens = 0;
  for await (const payload of payloads) {
    if (isMigratedEvent(payload)) {
      const event = validateMigratedEvent(payload);
      if (!event.ok)
        throw new UpstreamError(UpstreamFailure.failed, "instance", `bad migrated event: ${event.message}`);
      yield { type: "migrated", to: event.value };
      return;
    }
    const chunk = validateEngineChunk(payload);
    if (!chunk.ok) throw new UpstreamError(UpstreamFailure.failed, "instance", `bad stream chunk: ${chunk.message}`);
    const choice: EngineChunk["choices"][number] | undefined = chunk.value.choices[0];
    if (choice && choice.text !== "") {
      tokens += 1;
      yield { type: "token", text: choice.text };
    }
    if (choice?.finish_reason)
      finished = {
        finishReason: choice.finish_reason,
        usage: chunk.value.usage ?? { prompt_tokens: 0, completion_tokens: tokens, total_tokens: tokens },
      };
    else if (chunk.value.usage && finished) finished.usage = chunk.value.usage;
  }
  if (!finished) throw new UpstreamError(UpstreamFailure.failed, "instance", "stream ended without a finish_reason");
  yield { type: "done", ...finished };
}
