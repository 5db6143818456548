/**
 * Simulated serving engine (pure, clock passed in): Poisson arrivals, continuous batching with prefill priority
 * (vLLM's default scheduler: admit waiting requests whenever their KV fits, else run a decode step over the running
 * batch), latencies from a ServingLatencyModel. It yields the load report a real engine would send.
 */
import type { ServingLatencyModel } from "./latency.js";
import { seededRandom } from "../../../../common/src/random.js";

export interface ServingSimOptions {
  requestRatePerSec: number;
  promptTokens: number;
  outputTokens: number;
  maxBatchSequences: number;
  seed: number;
}

export const DEFAULT_SERVING_SIM: ServingSimOptions = { requestRatePerSec: 4, promptTokens: 512, outputTokens: 128, maxBatchSequences: 64, seed: 1 };

interface Running {
  contextTokens: number;
  remainingTokens: number;
}

export interface ServingLoad {
  queueLength: number;
  runningRequests: number;
  kvCacheUsedFraction: number;
  kvCacheUsedBytes: number;
  ttftMs: number;
  tpotMs: number;
  tokensPerSecond: number;
}

export { seededRandom };

export class ServingSim {
  private nowMs: number;
  private nextArrivalMs: number;
  private readonly waiting: number[] = []; // arrival times
  private running: Running[] = [];
  private lastTtftMs = 0;
  private lastTpotMs = 0;
  private tokensSinceReport = 0;
  private lastReportMs: number;
  private readonly random: () => number;
  private accepting = true;

  constructor(private readonly model: ServingLatencyModel, private readonly opts: ServingSimOptions, startMs: number) {
    this.nowMs = startMs;
    this.lastReportMs = startMs;
    this.random = seededRandom(opts.seed);
    this.nextArrivalMs = startMs + this.interArrivalMs();
  }

  private interArrivalMs(): number {
    if (this.opts.requestRatePerSec <= 0) return Infinity;
    return (-Math.log(1 - this.random()) / this.opts.requestRatePerSec) * 1000;
  }

  private kvUsedTokens(): number {
    return this.running.reduce((s, r) => s + r.contextTokens, 0);
  }

  /** Stop admitting new arrivals (drain): running requests finish, the queue empties into nothing new. */
  stopAccepting(): void {
    this.accepting = false;
  }

  advance(toMs: number): void {
    const kvCapacityTokens = Math.floor(this.model.kvCapacityBytes / this.model.kvBytesPerToken);
    while (this.nowMs < toMs) {
      while (this.accepting && this.nextArrivalMs <= this.nowMs) {
        this.waiting.push(this.nextArrivalMs);
        this.nextArrivalMs += this.interArrivalMs();
      }
      // Admit what fits: each admitted request will grow to prompt + output tokens of KV.
      const perRequest = this.opts.promptTokens + this.opts.outputTokens;
      let room = Math.min(this.opts.maxBatchSequences - this.running.length, Math.floor((kvCapacityTokens - this.kvUsedTokens() - this.running.reduce((s, r) => s + r.remainingTokens, 0)) / perRequest));
      const admitted: number[] = [];
      while (room > 0 && this.waiting.length > 0) {
        admitted.push(this.waiting.shift()!);
        room--;
      }
      if (admitted.length > 0) {
        this.nowMs += this.model.prefillBatchMs(admitted.map(() => this.opts.promptTokens));
        this.lastTtftMs = admitted.reduce((s, arrival) => s + (this.nowMs - arrival), 0) / admitted.length;
        for (const _ of admitted) this.running.push({ contextTokens: this.opts.promptTokens + 1, remainingTokens: this.opts.outputTokens - 1 });
        this.tokensSinceReport += admitted.length;
        continue;
      }
      if (this.running.length > 0) {
        const step = this.model.decodeStepMs(this.running.length, this.kvUsedTokens());
        this.nowMs += step;
        this.lastTpotMs = step;
        this.tokensSinceReport += this.running.length;
        for (const r of this.running) {
          r.contextTokens++;
          r.remainingTokens--;
        }
        this.running = this.running.filter((r) => r.remainingTokens > 0);
        continue;
      }
      this.nowMs = Math.min(toMs, this.accepting ? this.nextArrivalMs : toMs);
    }
  }

  report(atMs: number): ServingLoad {
    const windowS = Math.max(1e-3, (atMs - this.lastReportMs) / 1000);
    const tokensPerSecond = this.tokensSinceReport / windowS;
    this.tokensSinceReport = 0;
    this.lastReportMs = atMs;
    const kvCacheUsedBytes = this.kvUsedTokens() * this.model.kvBytesPerToken;
    return {
      queueLength: this.waiting.length,
      runningRequests: this.running.length,
      kvCacheUsedFraction: this.model.kvCapacityBytes > 0 ? Math.min(1, kvCacheUsedBytes / this.model.kvCapacityBytes) : 0,
      kvCacheUsedBytes,
      ttftMs: this.lastTtftMs,
      tpotMs: this.lastTpotMs,
      tokensPerSecond,
    };
  }
}
