/**
 * An engine's own Prometheus metrics as a gpufleet load report (pure): what the gateway's dispatch, the P/D pools
 * and the autoscaler read from every serving instance (worker.proto LoadReport), taken from the metric names vLLM
 * and SGLang document (fixtures with source URLs beside the test):
 *
 *   field                 vLLM (https://docs.vllm.ai/en/stable/usage/metrics/)
 *                         SGLang (https://docs.sglang.io/references/production_metrics.html)
 *   runningRequests       vllm:num_requests_running | sglang:num_running_reqs
 *   queueLength           vllm:num_requests_waiting | sglang:num_queue_reqs
 *   kvCacheUsedFraction   vllm:kv_cache_usage_perc (vllm:gpu_cache_usage_perc before) | sglang:token_usage
 *   kv blocks             vllm:cache_config_info{num_gpu_blocks,block_size}
 *                         | tokens: sglang:num_used_tokens / token_usage (block = 1 token)
 *   ttftMs, tpotMs        vllm:time_to_first_token_seconds, vllm:time_per_output_token_seconds
 *                         (or inter_token_latency_seconds)
 *                         | sglang:time_to_first_token_seconds, sglang:time_per_output_token_seconds
 *   tokensPerSecond       rate of vllm:generation_tokens_total | sglang:gen_throughput
 *   preemptionsTotal      vllm:num_preemptions_total | —
 *
 * Latencies are the mean over the interval since the previous scrape (histogram sum and count deltas), 0 when no
 * request finished in it; a counter reset (engine restart) starts the interval afresh. Labels (model_name,
 * engine) are summed over, as one pod runs one engine.
 */
import type { Sample } from "./prometheus-text.js";

export type EngineMetricsKind = "vllm" | "sglang";

export interface EngineLoad {
  runningRequests: number;
  queueLength: number;
  kvCacheUsedFraction: number;
  kvBlocksTotal: number;
  kvBlocksUsed: number;
  blockSizeTokens: number;
  ttftMs: number;
  tpotMs: number;
  tokensPerSecond: number;
  preemptionsTotal: number;
}

/** What the next reading needs of this one: counters and histogram sums at a time. */
export interface Reading {
  unixMs: number;
  counters: Readonly<Record<string, number>>;
}

export class EngineMetricsError extends Error {
  override name = "EngineMetricsError";
}

interface Names {
  running: string;
  waiting: string;
  kvUsage: readonly string[];
  ttft: string;
  tpot: readonly string[];
  generated?: string;
  throughput?: string;
  preemptions?: string;
}

export const ENGINE_METRIC_NAMES: Readonly<Record<EngineMetricsKind, Names>> = {
  vllm: {
    running: "vllm:num_requests_running",
    waiting: "vllm:num_requests_waiting",
    kvUsage: ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"],
    ttft: "vllm:time_to_first_token_seconds",
    tpot: ["vllm:time_per_output_token_seconds", "vllm:inter_token_latency_seconds"],
    generated: "vllm:generation_tokens_total",
    preemptions: "vllm:num_preemptions_total",
  },
  sglang: {
    running: "sglang:num_running_reqs",
    waiting: "sglang:num_queue_reqs",
    kvUsage: ["sglang:token_usage"],
    ttft: "sglang:time_to_first_token_seconds",
    tpot: ["sglang:time_per_output_token_seconds"],
    throughput: "sglang:gen_throughput",
  },
};

const sum = (samples: readonly Sample[], name: string): number | undefined => {
  const matching = samples.filter((s) => s.name === name && Number.isFinite(s.value));
  return matching.length === 0 ? undefined : matching.reduce((total, s) => total + s.value, 0);
};
const first = (samples: readonly Sample[], names: readonly string[]): number | undefined => {
  for (const name of names) {
    const v = sum(samples, name);
    if (v !== undefined) return v;
  }
  return undefined;
};
const nonNegativeInt = (x: number): number => Math.max(0, Math.round(x));
const clamp01 = (x: number): number => Math.min(1, Math.max(0, x));

/**
 * The load of one engine from its scraped samples, and the reading the next call needs. Throws EngineMetricsError
 * when the page lacks the gauges every report needs (running, waiting, KV usage): the wrong engine kind, or an
 * SGLang started without --enable-metrics, must not look like an idle instance.
 */
export function engineLoad(
  kind: EngineMetricsKind,
  samples: readonly Sample[],
  unixMs: number,
  previous?: Reading,
): { load: EngineLoad; reading: Reading } {
  const names = ENGINE_METRIC_NAMES[kind];
  const running = sum(samples, names.running);
  const waiting = sum(samples, names.waiting);
  const kvUsage = first(samples, names.kvUsage);
  const missing = [
    running === undefined && names.running,
    waiting === undefined && names.waiting,
    kvUsage === undefined && names.kvUsage.join(" or "),
  ].filter(Boolean);
  if (missing.length > 0) throw new EngineMetricsError(`${kind} metrics lack ${missing.join(", ")}`);

  const counters: Record<string, number> = {};
  const histogram = (base: string): { sum: number; count: number } | undefined => {
    const s = sum(samples, `${base}_sum`);
    const c = sum(samples, `${base}_count`);
    if (s === undefined || c === undefined) return undefined;
    counters[`${base}_sum`] = s;
    counters[`${base}_count`] = c;
    return { sum: s, count: c };
  };
  /** Mean of a histogram over the interval since `previous`, in ms; 0 when nothing was observed in it. */
  const intervalMeanMs = (bases: readonly string[]): number => {
    for (const base of bases) {
      const now = histogram(base);
      if (!now) continue;
      const before =
        previous && previous.counters[`${base}_count`] !== undefined && previous.counters[`${base}_count`]! <= now.count
          ? { sum: previous.counters[`${base}_sum`] ?? 0, count: previous.counters[`${base}_count`]! }
          : { sum: 0, count: 0 };
      const n = now.count - before.count;
      return n > 0 ? ((now.sum - before.sum) / n) * 1000 : 0;
    }
    return 0;
  };

  let tokensPerSecond = 0;
  if (names.throughput) tokensPerSecond = sum(samples, names.throughput) ?? 0;
  else if (names.generated) {
    const generated = sum(samples, names.generated);
    if (generated !== undefined) {
      counters[names.generated] = generated;
      const before = previous?.counters[names.generated];
      const seconds = previous ? (unixMs - previous.unixMs) / 1000 : 0;
      if (before !== undefined && before <= generated && seconds > 0) tokensPerSecond = (generated - before) / seconds;
    }
  }

  const blocks = kvBlocks(kind, samples, clamp01(kvUsage!));
  const load: EngineLoad = {
    runningRequests: nonNegativeInt(running!),
    queueLength: nonNegativeInt(waiting!),
    kvCacheUsedFraction: clamp01(kvUsage!),
    ...blocks,
    ttftMs: intervalMeanMs([names.ttft]),
    tpotMs: intervalMeanMs(names.tpot),
    tokensPerSecond: Math.max(0, tokensPerSecond),
    preemptionsTotal: names.preemptions ? nonNegativeInt(sum(samples, names.preemptions) ?? 0) : 0,
  };
  return { load, reading: { unixMs, counters } };
}

/** Paged KV in blocks, as Llumnix's freeness wants it; zeros when the engine does not tell. */
function kvBlocks(
  kind: EngineMetricsKind,
  samples: readonly Sample[],
  usedFraction: number,
): Pick<EngineLoad, "kvBlocksTotal" | "kvBlocksUsed" | "blockSizeTokens"> {
  if (kind === "vllm") {
    // vllm:cache_config_info is an info metric: the cache config is in its labels.
    const info = samples.find((s) => s.name === "vllm:cache_config_info");
    const total = Number(info?.labels["num_gpu_blocks"]);
    const blockSize = Number(info?.labels["block_size"]);
    if (Number.isInteger(total) && total > 0 && Number.isInteger(blockSize) && blockSize > 0) {
      return { kvBlocksTotal: total, kvBlocksUsed: Math.round(total * usedFraction), blockSizeTokens: blockSize };
    }
    return { kvBlocksTotal: 0, kvBlocksUsed: 0, blockSizeTokens: 0 };
  }
  // SGLang's radix cache is token-granular: a block is one token; the pool size follows from used / usage.
  const used = sum(samples, "sglang:num_used_tokens");
  if (used !== undefined && usedFraction > 0) {
    return { kvBlocksTotal: Math.round(used / usedFraction), kvBlocksUsed: nonNegativeInt(used), blockSizeTokens: 1 };
  }
  return { kvBlocksTotal: 0, kvBlocksUsed: 0, blockSizeTokens: 0 };
}
