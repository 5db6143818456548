/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): the n-th retry
 * waits a uniform random time in [0, min(maxMs, baseMs * 2^n)), so callers that failed together do not retry
 * together. Pure: the random source is passed in.
 */
export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** Delay before retry number `retry` (0 for the first retry). */
export function backoffDelayMs(retry: number, policy: BackoffPolicy, random: () => number): number {
  const ceilingMs = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry));
  return Math.floor(random() * ceilingMs);
}
