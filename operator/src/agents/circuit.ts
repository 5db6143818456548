/**
 * Per-node circuit breaker (closed → open → half-open → closed), pure: time comes in as arguments.
 *
 * closed: calls go through; `failureThreshold` consecutive failures open the circuit.
 * open: calls fail fast (no connection attempt) for `openMs`; then the circuit is half-open.
 * half-open: one trial call goes through (others fail fast); its success closes the circuit, its failure opens it
 * again for another `openMs`.
 */
export const CircuitState = { closed: "closed", open: "open", halfOpen: "half-open" } as const;
export type CircuitState = (typeof CircuitState)[keyof typeof CircuitState];

/** Gauge values for gpufleet_operator_agent_circuit_state. */
export const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = { closed: 0, "half-open": 1, open: 2 };

export interface CircuitPolicy {
  failureThreshold: number;
  openMs: number;
}

export class CircuitBreaker {
  private current: CircuitState = CircuitState.closed;
  private failures = 0;
  private openedAtMs = 0;
  private trialInFlight = false;

  constructor(private readonly policy: CircuitPolicy) {}

  /** The state at `nowMs` (an open circuit whose cool-down passed reads as half-open). */
  state(nowMs: number): CircuitState {
    if (this.current === CircuitState.open && nowMs - this.openedAtMs >= this.policy.openMs) {
      this.current = CircuitState.halfOpen;
      this.trialInFlight = false;
    }
    return this.current;
  }

  /** Whether a call may start now; in half-open, true once (the trial) until its result is recorded. */
  tryAcquire(nowMs: number): boolean {
    const state = this.state(nowMs);
    if (state === CircuitState.closed) return true;
    if (state === CircuitState.open || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  onSuccess(): void {
    this.current = CircuitState.closed;
    this.failures = 0;
    this.trialInFlight = false;
  }

  onFailure(nowMs: number): void {
    this.failures++;
    this.trialInFlight = false;
    if (this.current === CircuitState.halfOpen || this.failures >= this.policy.failureThreshold) {
      this.current = CircuitState.open;
      this.openedAtMs = nowMs;
    }
  }

  /** Milliseconds until an open circuit lets a trial through (0 when not open). */
  retryInMs(nowMs: number): number {
    return this.state(nowMs) === CircuitState.open ? this.policy.openMs - (nowMs - this.openedAtMs) : 0;
  }
}
