/**
 * Calls to instances (docs/engine-api.md), every one bounded: time to the response headers, time between two
 * chunks, and the whole call. Closing the call (the consumer stops reading, or the client's signal fires) aborts
 * the HTTP request, which is how an instance learns of a cancellation.
 */
import { EngineHeader, type ErrorBody } from "../../../common/src/engine-api.js";
import { SseParser } from "../openai/sse.js";

export const UpstreamFailure = {
  unreachable: "unreachable",
  timeout: "timeout",
  overloaded: "overloaded",
  failed: "failed",
  /** The instance refused the request as invalid (4xx other than 429/410): retrying elsewhere would not help. */
  rejected: "rejected",
  /** The KV a decode needed is gone from its prefill instance (410). */
  kvGone: "kv_gone",
} as const;
export type UpstreamFailure = (typeof UpstreamFailure)[keyof typeof UpstreamFailure];

export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(
    readonly reason: UpstreamFailure,
    readonly url: string,
    message: string,
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(`${url}: ${message}`, options);
  }
}

/** The client went away (or the gateway is shutting down): nobody to answer. */
export class CallCancelledError extends Error {
  override name = "CallCancelledError";
}

export interface UpstreamTimeouts {
  headersMs: number;
  idleMs: number;
  totalMs: number;
}

export interface UpstreamCall {
  /** JSON payloads of the SSE `data:` events until [DONE]. Throws UpstreamError when the stream breaks. */
  events(): AsyncGenerator<unknown>;
  json(): Promise<unknown>;
  close(): void;
}

function reasonForStatus(status: number): UpstreamFailure {
  if (status === 429 || status === 503) return UpstreamFailure.overloaded;
  if (status === 410) return UpstreamFailure.kvGone;
  if (status >= 400 && status < 500) return UpstreamFailure.rejected;
  return UpstreamFailure.failed;
}

function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as Partial<ErrorBody> & { message?: unknown };
    if (typeof body.error?.message === "string") return body.error.message;
    // vLLM's and SGLang's ErrorResponse: {"object": "error", "message", "type", "code"}.
    if (typeof body.message === "string") return body.message;
  } catch {
    // not JSON: use the text
  }
  return text.slice(0, 200);
}

export interface EngineCallOptions {
  url: string;
  requestId: string;
  priority: string;
  signal: AbortSignal;
  timeouts: UpstreamTimeouts;
}

/** POST of a JSON body: an object (serialized here), or JSON text already (a body JSON.stringify cannot write). */
export function postEngine(opts: EngineCallOptions & { body: unknown }): Promise<UpstreamCall> {
  return callEngine({ ...opts, method: "POST" });
}

/** GET of a stream (a migrated request's resume stream), with the same bounds as every call. */
export function getEngineStream(opts: EngineCallOptions): Promise<UpstreamCall> {
  return callEngine({ ...opts, method: "GET" });
}

async function callEngine(opts: EngineCallOptions & { method: "GET" | "POST"; body?: unknown }): Promise<UpstreamCall> {
  const controller = new AbortController();
  let cause: "timeout" | "cancelled" | undefined;
  const abort = (why: "timeout" | "cancelled") => {
    cause ??= why;
    controller.abort();
  };
  const onCancel = () => abort("cancelled");
  if (opts.signal.aborted) throw new CallCancelledError("cancelled before the call");
  opts.signal.addEventListener("abort", onCancel, { once: true });
  const total = setTimeout(() => abort("timeout"), opts.timeouts.totalMs);
  let idle = setTimeout(() => abort("timeout"), opts.timeouts.headersMs);
  const cleanup = () => {
    clearTimeout(total);
    clearTimeout(idle);
    opts.signal.removeEventListener("abort", onCancel);
  };
  const fail = (error: unknown, what: string): Error => {
    if (cause === "cancelled") return new CallCancelledError(`${what} cancelled`, { cause: error });
    if (cause === "timeout")
      return new UpstreamError(UpstreamFailure.timeout, opts.url, `${what} timed out`, undefined, { cause: error });
    if (error instanceof UpstreamError) return error;
    return new UpstreamError(
      UpstreamFailure.unreachable,
      opts.url,
      `${what} failed: ${error instanceof Error ? ((error.cause as Error | undefined)?.message ?? error.message) : String(error)}`,
      undefined,
      { cause: error },
    );
  };

  let response: Response;
  try {
    const headers = {
      accept: "text/event-stream, application/json",
      [EngineHeader.requestId]: opts.requestId,
      [EngineHeader.priority]: opts.priority,
    };
    response = await fetch(opts.url, {
      method: opts.method,
      ...(opts.method === "POST"
        ? {
            headers: { ...headers, "content-type": "application/json" },
            body: typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body),
          }
        : { headers }),
      signal: controller.signal,
    });
  } catch (error) {
    cleanup();
    throw fail(error, "request");
  }
  if (response.status !== 200) {
    let text = "";
    try {
      text = await response.text();
    } catch {
      // the status is enough
    }
    cleanup();
    controller.abort();
    throw new UpstreamError(
      reasonForStatus(response.status),
      opts.url,
      `answered ${response.status}: ${errorMessage(text)}`,
      response.status,
    );
  }
  const resetIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort("timeout"), opts.timeouts.idleMs);
  };
  resetIdle();
  const body = response.body;
  return {
    async *events() {
      if (!body) throw new UpstreamError(UpstreamFailure.failed, opts.url, "no response body");
      const reader = body.getReader();
      const parser = new SseParser();
      let done = false;
      try {
        for (;;) {
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (error) {
            throw fail(error, "stream");
          }
          if (chunk.done)
            throw fail(new UpstreamError(UpstreamFailure.failed, opts.url, "stream ended before [DONE]"), "stream");
          resetIdle();
          for (const data of parser.push(chunk.value)) {
            if (data === "[DONE]") {
              done = true;
              return;
            }
            let payload: unknown;
            try {
              payload = JSON.parse(data);
            } catch (error) {
              throw new UpstreamError(UpstreamFailure.failed, opts.url, "stream event is not JSON", undefined, {
                cause: error,
              });
            }
            const error = (payload as Partial<ErrorBody>).error;
            if (error && typeof error === "object")
              throw new UpstreamError(UpstreamFailure.failed, opts.url, `stream error: ${String(error.message)}`);
            yield payload;
          }
        }
      } finally {
        cleanup();
        // Not read to [DONE]: close the connection so the instance cancels the request.
        if (!done) controller.abort();
        reader.releaseLock();
      }
    },
    async json() {
      try {
        return await response.json();
      } catch (error) {
        throw fail(error, "response");
      } finally {
        cleanup();
      }
    },
    close() {
      cleanup();
      controller.abort();
    },
  };
}
