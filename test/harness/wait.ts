/**
 * Bounded polling on observable state: the only way harness and tests wait (never fixed sleeps).
 */

export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
  constructor(
    readonly description: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    const last = options?.cause instanceof Error ? `; last error: ${options.cause.message}` : "";
    super(`timed out after ${timeoutMs} ms waiting for ${description}${last}`, options);
  }
}

export interface WaitOptions {
  /** What is awaited, for the timeout message ("node h100-ib-0 Ready"). */
  description: string;
  timeoutMs?: number;
  intervalMs?: number;
  /**
   * Called before each attempt; an error it throws ends the wait at once (e.g. "the server process exited"),
   * whereas errors from the probe itself are retried until the deadline.
   */
  abortIf?: () => void;
}

/**
 * Calls probe until it returns a value other than undefined, null or false, and returns that value. Errors thrown
 * by probe count as "not yet" (the last one becomes the timeout error's cause).
 */
export async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  opts: WaitOptions,
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const intervalMs = opts.intervalMs ?? 200;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    opts.abortIf?.();
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0)
      throw new WaitTimeoutError(
        opts.description,
        timeoutMs,
        lastError === undefined ? undefined : { cause: lastError },
      );
    await new Promise((resolve) => setTimeout(resolve, Math.min(intervalMs, left)));
  }
}
