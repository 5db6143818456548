/** Deadlines for promises the runtime cannot abort (client-node requests without a signal, shutdown steps). */
import type { Clock } from "./clock.js";
import type { Logger } from "./logger.js";

/** A list or watch request the API server did not answer in time. */
export class RequestDeadlineError extends Error {
  constructor(what: string, timeoutMs: number) {
    super(`${what}: no answer within ${timeoutMs} ms`);
    this.name = "RequestDeadlineError";
  }
}

/** `promise`, or a RequestDeadlineError after `timeoutMs` (the request itself cannot be aborted from here). */
export function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string, clock: Clock): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const handle = clock.setTimeout(() => reject(new RequestDeadlineError(what, timeoutMs)), timeoutMs);
    promise.then(
      (value) => {
        clock.clearTimeout(handle);
        resolve(value);
      },
      (error: unknown) => {
        clock.clearTimeout(handle);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/**
 * Waits for `step` at most `timeoutMs`; past that, logs what did not finish and resolves anyway. Shutdown uses it
 * so that one stuck step (a reconcile awaiting a request the API server never answers) cannot hang stop().
 * Resolves true when the step settled in time.
 */
export async function settleWithin(
  step: Promise<unknown>,
  timeoutMs: number,
  what: string,
  clock: Clock,
  logger: Logger,
): Promise<boolean> {
  try {
    await withDeadline(step, timeoutMs, what, clock);
    return true;
  } catch (error) {
    if (error instanceof RequestDeadlineError)
      logger.warn({ step: what, timeoutMs }, "shutdown step did not finish; going on");
    else logger.warn({ step: what, err: error }, "shutdown step failed; going on");
    return !(error instanceof RequestDeadlineError);
  }
}
