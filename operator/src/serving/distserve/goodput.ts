/**
 * Goodput search and the queueing formula it is checked against.
 *
 * Goodput (DistServe, Zhong et al. OSDI 2024, §2): the highest request rate at which at least the attainment
 * target of requests meet both TTFT and TPOT SLOs. Attainment falls as the rate rises, so the highest such rate
 * is found by bisection (DistServe §4.1 "binary search on the rate"), starting from an analytic capacity hint.
 *
 * M/D/1 TTFT (DistServe §3.1, eqs. 1–3): with Poisson arrivals at λ and one request per batch taking D to
 * prefill, the mean TTFT is D + λD²/(2(1−λD)). A pipeline that accepts a new request every stage time Dₛ
 * (2-way PP: Dₛ ≈ D/2, eq. 2) waits λDₛ²/(2(1−λDₛ)) on average and still takes D to finish; TP shortens D itself
 * (eq. 3). meanTtftMdOneMs covers all three with (serviceMs, stageMs).
 */

/** Mean TTFT of an M/D/1 prefill queue; Infinity at or past saturation. */
export function meanTtftMdOneMs(ratePerSec: number, serviceMs: number, stageMs: number = serviceMs): number {
  const lambdaPerMs = ratePerSec / 1000;
  const rho = lambdaPerMs * stageMs;
  if (rho >= 1) return Infinity;
  return serviceMs + (lambdaPerMs * stageMs * stageMs) / (2 * (1 - rho));
}

export interface RateSearchOptions {
  /** Attainment target, 0–1. */
  target: number;
  /**
   * Service capacity (req/s): the throughput bound of the configuration. Above it the queue grows without
   * limit (ρ ≥ 1), which a finite simulated run can hide, so the search never goes past it.
   */
  capacityRatePerSec: number;
  /** Bisection steps; each halves the bracket. Default 8 (0.4% of capacity). */
  iterations?: number;
}

/**
 * Highest rate ≤ capacity whose attainment meets the target, for an attainment function that falls with the
 * rate. Returns 0 when even a trickle (capacity/256) misses the target: the SLO is out of reach for the config.
 */
export function maxRateMeeting(attainmentAt: (ratePerSec: number) => number, options: RateSearchOptions): number {
  const { target } = options;
  const cap = options.capacityRatePerSec;
  if (!(cap > 0 && Number.isFinite(cap))) return 0;
  let lo = cap / 256;
  if (attainmentAt(lo) < target) return 0;
  let hi = cap;
  if (attainmentAt(hi) >= target) return hi;
  for (let i = 0; i < (options.iterations ?? 8); i++) {
    const mid = (lo + hi) / 2;
    if (attainmentAt(mid) >= target) lo = mid;
    else hi = mid;
  }
  return lo;
}
