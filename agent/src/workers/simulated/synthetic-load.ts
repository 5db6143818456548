/**
 * Synthetic client of a simulated serving worker (pure, seeded): Poisson arrivals at a fixed rate with fixed
 * prompt and output lengths, submitted through the same submit() the gateway uses. Off by default (the instances
 * serve the gateway's requests); pod annotation gpufleet.io/sim-request-rate, or the agent's
 * GPUFLEET_AGENT_SIM_REQUEST_RATE for pods without it, turns it on to show load without a gateway.
 */
import { seededRandom } from "../../../../common/src/random.js";
import type { ServingRequest } from "./sequence.js";

export interface SyntheticLoadOptions {
  requestRatePerSec: number;
  promptTokens: number;
  outputTokens: number;
  seed: number;
}

export const DEFAULT_SYNTHETIC_LOAD: Omit<SyntheticLoadOptions, "seed"> = {
  requestRatePerSec: 0,
  promptTokens: 512,
  outputTokens: 128,
};

export class PoissonArrivals {
  private readonly random: () => number;
  private nextMs: number;
  private count = 0;

  constructor(
    private readonly opts: SyntheticLoadOptions,
    startMs: number,
    private readonly idPrefix: string,
  ) {
    this.random = seededRandom(opts.seed);
    this.nextMs = startMs + this.gapMs();
  }

  private gapMs(): number {
    if (!(this.opts.requestRatePerSec > 0)) return Infinity;
    return (-Math.log(1 - this.random()) / this.opts.requestRatePerSec) * 1000;
  }

  /** Requests arriving up to `toMs`, each with its arrival time. */
  until(toMs: number): { atMs: number; request: ServingRequest }[] {
    const out: { atMs: number; request: ServingRequest }[] = [];
    while (this.nextMs <= toMs) {
      out.push({
        atMs: this.nextMs,
        request: {
          requestId: `${this.idPrefix}-${this.count++}`,
          promptTokens: this.opts.promptTokens,
          maxOutputTokens: this.opts.outputTokens,
          priority: 0,
        },
      });
      this.nextMs += this.gapMs();
    }
    return out;
  }
}
